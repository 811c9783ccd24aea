"""Kill real `vfbot worker` processes with SIGKILL at random points of a request split over two
hypervisor groups, against a panel that answers 5xx, hangs and fails after committing, then let
a last worker finish; check exactly-once, placement, milestones and how fast work is taken over.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from bot.factories import utcnow
from bot.provisioning import events
from bot.provisioning.model import InstanceState, RequestState
from bot.sandbox import BuildTiming, PanelState, ScriptedFault, running_sandbox
from bot.store.sql import Database
from tests.provisioning.conftest import (
    creates,
    owner_servers,
    submit_over_http,
    undelivered,
    vfbot_env,
)

PER_GROUP = 6
REQUEST: dict[str, object] = {
    "project_name": "crash-test",
    "instances": [
        {
            "name": f"node-{suffix}",
            "number_of_instances": PER_GROUP,
            "hypervisor_group": group,
            "template": "debian-12",
            "resources": {"memory": 1024, "disk": 25},  # the same size in both groups
            "network": {"public_ip": False},
        }
        for suffix, group in (("prg", "Prague"), ("ams", "Amsterdam"))
    ],
}
SERVERS = 2 * PER_GROUP
LEASE_S = 1.5  # one create call with its retries at VIRTFUSION_TIMEOUT=0.5
SEED = 15  # kill points and faults are drawn from it (seeds 1-11 and 21-30 pass too)


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


async def _leased_by(db: Database, worker: str, now: datetime) -> set[int]:
    async with db.uow() as uow:
        rows = await uow.instances.list_by_states(list(InstanceState))
    return {
        i.id
        for i in rows
        if i.lease_owner == worker and i.lease_until is not None and i.lease_until > now
    }


async def test_sigkills_and_panel_faults_over_two_groups_still_build_each_server_once(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    panel = PanelState(seed=SEED, timing=BuildTiming(queued_s=0.1, build_s=0.3))
    db = Database(f"sqlite:///{tmp_path / 'crash.db'}")
    await db.upgrade()
    await db.start()
    async with running_sandbox(panel) as sandbox:
        record = await submit_over_http(db, sandbox.api_url, REQUEST)

        faults = panel.faults
        faults.latency_s = 0.03  # calls take a moment, so kills land mid-call
        faults.server_error_ratio = 0.08  # 500/502/503 on any call
        faults.hang_ratio = 0.03  # no answer within VIRTFUSION_TIMEOUT
        faults.hang_s = 1.0
        faults.commit_then_fail, faults.commit_then_fail_count = "500", 3  # created, then 500
        faults.script.append(ScriptedFault("POST", r"^/servers/\d+/build$", "commit_then_hang"))
        faults.script.append(ScriptedFault("POST", r"^/servers/\d+/build$", "500"))

        def env(worker: str) -> dict[str, str]:
            return vfbot_env(
                sandbox.url,
                tmp_path / "crash.db",
                VIRTFUSION_CONCURRENCY="3",
                VIRTFUSION_RATE_LIMIT="200",
                VIRTFUSION_TIMEOUT="0.5",
                VF_POLL_INTERVAL="0.2",
                VF_LEASE=f"{LEASE_S:g}",
                VF_CREATE_GRACE="2",
                VF_WORKER_ID=worker,
            )

        async def worker(name: str) -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "worker",
                "--until-idle",
                cwd=tmp_path,
                env=env(name),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )

        def builds() -> int:
            return panel.count("POST", r"^/servers/\d+/build$")

        printed: list[bytes] = []
        kills: list[tuple[str, set[int], float]] = []
        # Kill points drawn from a seeded RNG: after some creates, then after some builds.
        after_creates, after_builds = rng.randint(2, 5), rng.randint(2, 6)
        points: list[tuple[str, Callable[[], bool]]] = [
            ("w1", lambda: creates(panel) >= after_creates),
            ("w2", lambda: builds() >= after_builds),
        ]
        for name, condition in points:
            process = await worker(name)
            await _until(condition, timeout_s=40, what=f"the kill of {name}", process=process)
            await asyncio.sleep(rng.uniform(0, 0.2))
            process.kill()  # SIGKILL: no cleanup, no flush, leases left behind
            out, _ = await process.communicate()
            printed.append(out)
            killed_at = time.monotonic()
            kills.append((name, await _leased_by(db, name, utcnow()), killed_at))
        assert creates(panel) < 2 * SERVERS, "the kills came too late to test anything"

        last = await worker("w3")
        started = time.monotonic()
        # Rows the last killed worker held are free once their lease runs out, and taken over
        # within a few seconds of that (a short lease, as an operator may set).
        name, held, killed_at = kills[-1]
        await _until(
            lambda: not held or time.monotonic() - killed_at > LEASE_S + 0.5,
            timeout_s=10,
            what="the dead worker's leases to run out",
            process=last,
        )
        took_over = 0.0
        while held and await _leased_by(db, name, utcnow()):
            took_over = time.monotonic() - killed_at
            assert took_over < LEASE_S + 3, f"{name}'s rows {held} were not taken over"
            await asyncio.sleep(0.05)
        try:
            out, err = await asyncio.wait_for(last.communicate(), timeout=45)
        except TimeoutError:
            last.kill()
            _, err = await last.communicate()
            async with db.uow() as uow:
                rows = await uow.instances.list_for_request(record.id)
            states = [(i.name, i.state.value, i.error, i.lease_owner) for i in rows]
            raise AssertionError(f"w3 did not finish: {states}\n{err.decode()[-4000:]}") from None
        printed.append(out)
        assert last.returncode == 0, err.decode()
        assert time.monotonic() - started < 45

    async with db.uow() as uow:
        final = await uow.requests.get(record.id)
        instances = await uow.instances.list_for_request(record.id)
        all_events = await uow.events.list_for_request(record.id)
        left = await undelivered(uow, "cli", utcnow() + timedelta(seconds=1))
    await db.stop()

    assert final is not None and final.state is RequestState.COMPLETED
    assert all(i.state is InstanceState.BUILT for i in instances)
    # Exactly once: one panel server per row, none left over, each built by one accepted call.
    server_ids = [i.server_id for i in instances]
    assert len(set(server_ids)) == SERVERS and None not in server_ids
    assert sorted(s.id for s in owner_servers(panel)) == sorted(server_ids)  # type: ignore[type-var]
    accepted = Counter(
        call.api_path for call in panel.calls("POST", r"^/servers/\d+/build$") if call.status == 200
    )
    assert all(n == 1 for n in accepted.values()), accepted
    # Every server is recorded in the group the panel reports, and the user was told that one.
    created = {e.instance_id: e for e in all_events if e.kind == events.INSTANCE_CREATED}
    for instance in instances:
        assert instance.server_id is not None
        on_panel = panel.servers[instance.server_id]
        group = panel.groups[panel.hypervisors[on_panel.hypervisor_id].group_id]
        assert instance.group_id == group.id == instance.plan.group_id, instance.name
        assert created[instance.id].payload["group"] == group.name
    # Every milestone once per server, in order.
    for instance in instances:
        kinds = [e.kind for e in all_events if e.instance_id == instance.id]
        milestones = [k for k in kinds if k in events.MILESTONES]
        assert milestones == [
            events.INSTANCE_CREATED,
            events.INSTANCE_BUILD_STARTED,
            events.INSTANCE_BUILT,
        ], (instance.name, kinds)
    assert Counter(e.kind for e in all_events)[events.REQUEST_FINISHED] == 1
    assert left == []  # every event delivered to the CLI
    # What the workers printed: nothing is missing (a line may repeat once per kill).
    lines = b"".join(printed).decode().splitlines()
    for event in all_events:
        if event.kind in events.MILESTONES:
            name = str(event.payload.get("name"))
            assert any(name in line for line in lines), f"nothing printed for {name}"
    built_lines = Counter(line for line in lines if ": built (" in line)
    assert sum(built_lines.values()) - len(built_lines) <= len(kills)
    assert b"Traceback" not in err
