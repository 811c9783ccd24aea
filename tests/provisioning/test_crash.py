"""Kill a real `vfbot worker` process with SIGKILL mid-request, start it again, check the result."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bot.app import utcnow
from bot.provisioning import events
from bot.provisioning.model import InstanceState, RequestState
from bot.sandbox import BuildTiming, PanelState, running_sandbox
from bot.store.sql import Database
from tests.provisioning.conftest import creates, owner_servers, submit_over_http, undelivered

REQUEST: dict[str, object] = {
    "project_name": "crash-test",
    "instances": [
        {
            "name": "node",
            "number_of_instances": 10,
            "template": "debian-12",
            "ssh_key_name": "default",
        }
    ],
}


async def _until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    process: asyncio.subprocess.Process,
) -> None:
    """Wait for an observable condition (not for luck): bounded, checked every 20 ms; a worker
    that exits meanwhile fails the test with what it printed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.returncode is not None:
            _, err = await process.communicate()
            raise AssertionError(f"the worker exited {process.returncode}:\n{err.decode()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_sigkill_mid_request_then_restart_builds_all_ten_once(tmp_path: Path) -> None:
    panel = PanelState(timing=BuildTiming(queued_s=0.2, build_s=0.4))
    panel.faults.latency_s = 0.05  # creates take a moment, so the kill lands mid-request
    db = Database(f"sqlite:///{tmp_path / 'crash.db'}")
    await db.upgrade()
    await db.start()
    async with running_sandbox(panel) as sandbox:
        record = await submit_over_http(db, sandbox.api_url, REQUEST)

        env = {
            **os.environ,
            "VIRTFUSION_HOST": sandbox.url,
            "VIRTFUSION_API_TOKEN": "sandbox-token",
            "VIRTFUSION_USER_ID": "1",
            "VIRTFUSION_PACKAGE_ID": "1",
            "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
            "VIRTFUSION_CONCURRENCY": "2",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}",
            "VF_POLL_INTERVAL": "0.1",
            "VF_LEASE": "1",
            "VF_CREATE_GRACE": "5",
            "PYTHONUNBUFFERED": "1",
        }

        async def worker() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "worker",
                "--until-idle",
                cwd=tmp_path,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )

        first = await worker()
        await _until(lambda: creates(panel) >= 4, timeout_s=30, what="four creates", process=first)
        first.kill()  # SIGKILL: no cleanup, no flush, leases left behind
        out1, _ = await first.communicate()
        created_at_kill = creates(panel)
        assert created_at_kill < 10, "the kill came too late to test anything"

        second = await worker()
        out2, err2 = await asyncio.wait_for(second.communicate(), timeout=90)
        assert second.returncode == 0, err2.decode()

    async with db.uow() as uow:
        final = await uow.requests.get(record.id)
        instances = await uow.instances.list_for_request(record.id)
        all_events = await uow.events.list_for_request(record.id)
        left = await undelivered(uow, "cli", utcnow())
    await db.stop()

    assert final is not None and final.state is RequestState.COMPLETED
    assert all(i.state is InstanceState.BUILT for i in instances)
    server_ids = [i.server_id for i in instances]
    assert len(set(server_ids)) == 10
    assert len(owner_servers(panel)) == 10  # none twice
    assert panel.count("POST", r"^/servers/\d+/build$") == 10

    kinds = Counter(e.kind for e in all_events)
    assert kinds[events.INSTANCE_CREATED] == 10
    assert kinds[events.INSTANCE_BUILT] == 10
    assert kinds[events.REQUEST_FINISHED] == 1
    assert left == []  # every event delivered, and the store records each once

    # What the CLI subscriber printed: nothing is missing; at most the one line that was
    # being printed when the process died can appear twice.
    printed = (out1 + out2).decode().splitlines()
    milestones = [e for e in all_events if e.kind in events.MILESTONES]
    for event in milestones:
        name = str(event.payload.get("name"))
        assert any(name in line for line in printed), f"nothing printed for {event.kind} {name}"
    built_lines = Counter(line for line in printed if ": built (" in line)
    assert sum(built_lines.values()) - len(built_lines) <= 1
    assert b"Traceback" not in err2
