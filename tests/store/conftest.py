"""Store fixtures: every contract test runs on the memory store, SQLite and PostgreSQL.

``store`` gives a test a unit-of-work factory and the Slack store of one kind; ``db`` gives the
SQL-only tests a started `Database` (SQLite file, or a fresh PostgreSQL schema).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.provisioning.ports import UnitOfWork
from bot.slack.threads import SlackStore
from bot.store.memory import MemoryStore
from bot.store.sql import Database
from tests.databases import open_database

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

__all__ = ["NOW", "StoreUnderTest", "db", "store"]


@dataclass(frozen=True)
class StoreUnderTest:
    """One store kind as the contract sees it: units of work and the Slack store."""

    kind: str  # "memory", "sqlite" or "postgresql"
    uow: Callable[[], UnitOfWork]
    slack: SlackStore


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    """An empty store of each kind; PostgreSQL gets its own schema per test."""
    if request.param == "memory":
        memory = MemoryStore()
        yield StoreUnderTest("memory", memory.uow, memory.slack_store())
        return
    async with open_database(request.param, tmp_path) as database:
        yield StoreUnderTest(request.param, database.uow, database.slack_store())


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A started, empty database on each engine, for tests of SQL-only behaviour."""
    async with open_database(request.param, tmp_path) as database:
        yield database
