"""The record of handled webhook deliveries (`webhook_events`) on memory, SQLite and PostgreSQL:
the first to remember an id wins, also when several replicas try at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from bot.store.memory import MemoryStore
from bot.webhook import HookStore
from tests.databases import open_database
from tests.store.conftest import NOW


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def hooks(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HookStore]:
    if request.param == "memory":
        yield MemoryStore().hook_store()
        return
    async with open_database(request.param, tmp_path) as database:
        yield database.hook_store()


async def test_an_id_is_remembered_once(hooks: HookStore) -> None:
    assert await hooks.remember_hook("1001", NOW) is True
    assert await hooks.remember_hook("1001", NOW + timedelta(seconds=1)) is False
    assert await hooks.remember_hook("1002", NOW) is True


async def test_replicas_remembering_at_once_agree_on_one_winner(hooks: HookStore) -> None:
    results = await asyncio.gather(*(hooks.remember_hook("2001", NOW) for _ in range(6)))
    assert sorted(results) == [False] * 5 + [True]


async def test_old_ids_are_forgotten(hooks: HookStore) -> None:
    await hooks.remember_hook("old", NOW - timedelta(days=2))
    await hooks.remember_hook("new", NOW)
    assert await hooks.forget_hooks(NOW - timedelta(days=1)) == 1
    assert await hooks.remember_hook("old", NOW) is True  # a repeat after that is one more hint
    assert await hooks.remember_hook("new", NOW) is False


async def test_naive_times_are_refused(hooks: HookStore) -> None:
    with pytest.raises((ValueError, StatementError)) as info:
        await hooks.remember_hook("3001", NOW.replace(tzinfo=None))
    error = info.value  # SQLAlchemy wraps the store's ValueError in a StatementError
    assert "naive" in str(error.orig if isinstance(error, StatementError) else error)
