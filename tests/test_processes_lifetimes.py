"""Two real `vfbot worker` processes on one PostgreSQL database: a server with a two-second
lifetime is built, reminded once and deleted on the sandbox panel exactly once, whichever
worker gets there first (the claims are compare-and-sets in the database)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bot.provisioning import events
from bot.sandbox import BuildTiming, PanelState, running_sandbox
from bot.store.sql import Database
from tests.databases import PG_HOST, PG_PORT, postgres_reachable
from tests.test_processes import _assert_clean, _env, _kill_leftovers, _sigterm, _start, _submit

__all__ = ["_kill_leftovers"]  # the autouse fixture: no worker outlives a failed test


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of its own (the workers only take a DATABASE_URL)."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    name = f"vfbot_life_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(user="postgres", host=PG_HOST, port=PG_PORT, database="test")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_two_workers_remind_once_and_delete_once(tmp_path: Path, pg_url: str) -> None:
    panel = PanelState(timing=BuildTiming(queued_s=0.1, build_s=0.3))
    db = Database(pg_url)
    await db.upgrade()
    await db.start()
    try:
        async with running_sandbox(panel) as sandbox:
            request = {
                "project_name": "life",
                "expires_in": "2s",
                "instances": [{"name": "short", "template": "debian-12"}],
            }
            request_id = await _submit(db, sandbox, request)
            env = {
                "DATABASE_URL": pg_url,
                "VF_EXPIRY_WARNING": "1s",
                "VF_LEASE": "2m",
            }
            workers = [
                await _start(
                    tmp_path, _env(tmp_path, sandbox, VF_WORKER_ID=f"life-{n}", **env), "worker"
                )
                for n in (1, 2)
            ]
            deletes = r"^/servers/\d+$"
            await workers[0].until(lambda: panel.count("DELETE", deletes) >= 1, "the delete")
            # A negative check needs time: five more poll intervals of each worker, in which a
            # second reminder or delete would have happened.
            await asyncio.sleep(1.0)
            for worker in workers:
                await _sigterm(worker)
                _assert_clean(worker)
            assert panel.count("DELETE", deletes) == 1
            assert not panel.servers
            async with db.uow() as uow:
                kinds = [e.kind for e in await uow.events.list_for_request(request_id)]
            assert kinds.count(events.INSTANCE_EXPIRY_WARNING) == 1
            assert kinds.count(events.INSTANCE_EXPIRED) == 1
            assert kinds.count(events.INSTANCE_DELETED) == 1
            assert kinds.index(events.INSTANCE_EXPIRY_WARNING) < kinds.index(
                events.INSTANCE_EXPIRED
            )
    finally:
        await db.stop()
