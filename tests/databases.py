"""Real databases for tests: a SQLite file, or a fresh schema on the local PostgreSQL."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.sql import Database

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_URL = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/test"


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@asynccontextmanager
async def open_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A started, empty database of ``kind`` (``"sqlite"``, or ``"postgresql"``/``"postgres"``);
    PostgreSQL gets its own schema, dropped afterwards, and the test is skipped without it."""
    if kind not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"unknown database kind {kind!r}")
    if kind == "sqlite":
        database = Database(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}")
        await database.start()
        try:
            yield database
        finally:
            await database.stop()
        return
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} (CI starts it)")
    schema = f"t_{uuid.uuid4().hex}"
    database = Database(PG_URL, schema=schema)
    await database.start()
    try:
        yield database
    finally:
        await database.stop()
        admin = create_async_engine(PG_URL)
        try:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await admin.dispose()
