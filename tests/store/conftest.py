"""Store fixtures: a started `Database` on SQLite (temp file) and PostgreSQL (fresh schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store.sql import Database
from tests.databases import PG_HOST, PG_PORT, PG_URL, open_database

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

__all__ = ["NOW", "PG_HOST", "PG_PORT", "PG_URL", "db"]


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A started database, empty, on each engine; PostgreSQL gets its own schema per test."""
    async with open_database(request.param, tmp_path) as database:
        yield database
