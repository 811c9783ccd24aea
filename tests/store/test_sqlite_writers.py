"""SQLite under concurrent writers: units that read, then write, queue for the lock instead of
failing with "database is locked" (every transaction begins IMMEDIATE)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.provisioning.model import InstanceState
from bot.provisioning.ports import InstanceChange
from bot.store.sql import Database
from tests.databases import new_sqlite_file
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_instances, add_request


async def test_concurrent_read_then_write_units_of_two_processes_all_commit(
    tmp_path: Path,
) -> None:
    path = new_sqlite_file(tmp_path / "writers.db")
    # Two engines (two pools), as two vfbot processes on one file would have.
    first, second = Database(f"sqlite:///{path}"), Database(f"sqlite:///{path}")
    await first.start()
    await second.start()
    try:
        store = StoreUnderTest("sqlite", first.uow, first.slack_store())
        request = await add_request(store)
        instances = await add_instances(store, request.id, 40)

        async def bump(db: Database, instance_id: int) -> None:
            async with db.uow() as uow:
                # A read first: a deferred transaction's snapshot would now be stale once the
                # other process commits, and its write below would fail at once.
                row = await uow.instances.get(instance_id)
                await asyncio.sleep(0)
                assert row is not None
                change = InstanceChange(attempts=row.attempts + 1)
                await uow.instances.update(instance_id, now=NOW, change=change)
                await uow.commit()

        await asyncio.gather(*(bump(db, i.id) for i in instances for db in (first, second)))
        async with first.uow() as uow:
            rows = await uow.instances.list_for_request(request.id)
        assert [r.attempts for r in rows] == [2] * 40
        assert all(r.state is InstanceState.PLANNED for r in rows)
    finally:
        await first.stop()
        await second.stop()
