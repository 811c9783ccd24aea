"""Real databases for tests: a SQLite file, or a fresh schema on the local PostgreSQL.

Both start at the newest schema revision, made the fast way: SQLite files are copies of one
file migrated once per test session; PostgreSQL schemas get the models' ``create_all`` and the
head revision stamped. `tests/store/test_migrations.py` proves the migrations and the models
agree, so the shortcut tests the same schema.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.sql import Database
from bot.store.sql.schema import MIGRATIONS
from bot.store.sql.tables import Base

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_URL = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/test"


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@cache
def _migrated_sqlite() -> Path:
    """One SQLite file upgraded by the real migrations, for this test session (copied per test).

    Made on a thread of its own, so that sync fixtures and running event loops may both ask.
    """
    folder = Path(tempfile.mkdtemp(prefix="vfbot-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "template.db"
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, Database(f"sqlite:///{path}").upgrade()).result()
    return path


def create_schema(conn: Connection) -> None:
    """The models' tables and the head revision stamped: a schema `Database.start()` accepts."""
    Base.metadata.create_all(conn)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(config), "heads")


def new_sqlite_file(path: Path) -> Path:
    """`path` made a SQLite database at the newest schema revision (as `vfbot db upgrade`)."""
    shutil.copyfile(_migrated_sqlite(), path)
    return path


def delete_sqlite_files(path: Path) -> None:
    """Delete a SQLite database as an operator's `rm vfbot.db*` would (file, -wal, -shm)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def sqlite_files(path: Path) -> list[str]:
    """Which of the database's files exist (to prove none was created again)."""
    return [name for name in (path.name, f"{path.name}-wal") if (path.parent / name).exists()]


@asynccontextmanager
async def open_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A started, empty database of ``kind`` (``"sqlite"``, or ``"postgresql"``/``"postgres"``);
    PostgreSQL gets its own schema, dropped afterwards, and the test is skipped without it."""
    if kind not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"unknown database kind {kind!r}")
    if kind == "sqlite":
        database = Database(f"sqlite:///{new_sqlite_file(tmp_path / f'{uuid.uuid4().hex[:8]}.db')}")
        await database.start()
        try:
            yield database
        finally:
            await database.stop()
        return
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} (CI starts it)")
    schema = f"t_{uuid.uuid4().hex}"
    admin = create_async_engine(PG_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
            await conn.run_sync(create_schema)
        database = Database(PG_URL, schema=schema)
        await database.start()
        try:
            yield database
        finally:
            await database.stop()
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()
