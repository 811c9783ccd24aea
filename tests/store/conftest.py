"""Store fixtures: a started `Database` on SQLite (temp file) and PostgreSQL (fresh schema)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.sql import Database

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_DB = "test"
PG_URL = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A started database, empty, on each engine; PostgreSQL gets its own schema per test."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'store.db'}")
        await database.start()
        try:
            yield database
        finally:
            await database.stop()
        return

    if not _postgres_reachable():
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
