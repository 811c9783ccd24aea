"""The 61aa0d7 databases (README.md beside this file): copies to upgrade, and schema snapshots."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from tests.databases import PG_HOST, PG_PORT

LEGACY = Path(__file__).parent
SQLITE = LEGACY / "vfbot-61aa0d7.sqlite"
DUMP = LEGACY / "vfbot-61aa0d7.sql"
SUMMARY: dict[str, Any] = json.loads((LEGACY / "summary-61aa0d7.json").read_text())

_PUBLIC = re.compile(r"(?<![\w\"])public\.")


def legacy_sqlite(folder: Path) -> Path:
    """A writable copy of the 61aa0d7 SQLite file in `folder`."""
    path = folder / "vfbot.db"
    shutil.copyfile(SQLITE, path)
    return path


def dump_into(schema: str) -> str:
    """The pg_dump, made to restore into `schema` instead of ``public``: psql meta-commands
    (``\\restrict``) and the ``public`` schema's own lines go; every ``public.`` name is
    qualified with `schema` instead."""
    lines = []
    for line in DUMP.read_text().splitlines():
        if line.startswith("\\") or line in ("CREATE SCHEMA public;",):
            continue
        if line.startswith("COMMENT ON SCHEMA public "):
            continue
        lines.append(_PUBLIC.sub(f'"{schema}".', line))
    return "\n".join(lines)


@asynccontextmanager
async def legacy_postgres(schema: str) -> AsyncIterator[None]:
    """The 61aa0d7 PostgreSQL data restored into the new schema `schema` (dropped afterwards)."""
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="test")
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(dump_into(schema))
        yield
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def _default(value: object) -> str | None:
    # Sequence defaults name the schema they were made in: compare the sequence name only.
    return None if value is None else re.sub(r"'[^']*?(\w+_seq)'", r"'\1'", str(value))


def snapshot(conn: Connection) -> dict[str, Any]:
    """Every vfbot table's columns (in order), keys, constraints and indexes, by name."""
    found = inspect(conn)
    tables: dict[str, Any] = {}
    for table in sorted(set(found.get_table_names()) - {"alembic_version"}):
        pk = found.get_pk_constraint(table)
        tables[table] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], _default(c.get("default")))
                for c in found.get_columns(table)
            ],
            "primary_key": (pk.get("name"), pk["constrained_columns"]),
            "unique": sorted(
                (str(u["name"]), u["column_names"]) for u in found.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (str(i["name"]), i["column_names"], i["unique"]) for i in found.get_indexes(table)
            ),
            "foreign_keys": sorted(
                (
                    str(fk["name"]),
                    fk["constrained_columns"],
                    fk["referred_table"],
                    fk["referred_columns"],
                    fk["options"].get("ondelete"),
                )
                for fk in found.get_foreign_keys(table)
            ),
        }
    return tables
