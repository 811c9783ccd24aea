"""The engine under faults: adoption rules, unclear builds, milestones once, leases, fair
tracking, and loops that outlive a database or panel outage."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter

import pytest
from rich.console import Console

from bot.app import Core, build_core, worker_ops
from bot.cli.requests import CLI_SUBSCRIBER, _cli_consumer, _servers_table, _wait, _work
from bot.config import load_settings
from bot.provisioning import events
from bot.provisioning.model import InstanceState, RequestState
from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.provisioning.request import RequestLimits
from bot.sandbox import BuildTiming, ScriptedFault
from bot.store.sql import Database
from bot.virtfusion import VirtFusionError
from tests.provisioning.conftest import (
    Harness,
    MakeHarness,
    Sleeps,
    creates,
    owner_servers,
    two_groups,
)

S = InstanceState


async def _milestones(h: Harness, request_id: int) -> Counter[tuple[int | None, str]]:
    return Counter(
        (e.instance_id, e.kind) for e in await h.events(request_id) if e.kind in events.MILESTONES
    )


# -- adoption ----------------------------------------------------------------------------------


async def test_an_unclear_create_never_adopts_a_server_of_another_group(harness: Harness) -> None:
    record = await harness.submit_json(two_groups(1, public_ip=False))
    (instance,) = (await harness.requests.get(record.id))[1]
    # The create answers 500 without creating anything: its outcome is unclear to vfbot.
    harness.panel.faults.script.append(ScriptedFault("POST", r"^/servers$", "500"))
    await harness.engine.run_once()
    (unknown,) = (await harness.requests.get(record.id))[1]
    assert unknown.state is S.CREATE_UNKNOWN
    assert "looking for the server on the panel until" in (unknown.error or "")
    # Meanwhile an unnamed server of the same size appears for the same owner, in Amsterdam.
    body = instance.plan.create_body.model_copy(update={"hypervisor_group_id": 2})
    decoy = await harness.client.create_server(body)

    final = await harness.run_until_done(record.id)

    assert final.state is RequestState.COMPLETED
    (built,) = (await harness.requests.get(record.id))[1]
    assert built.server_id != decoy.id  # created again in Prague after the grace
    assert built.group_id == 1
    assert harness.panel.servers[decoy.id].name == ""  # left alone
    assert len(owner_servers(harness.panel)) == 2


async def test_an_unclear_create_adopts_its_own_server_and_records_the_panels_group(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(0, 1, public_ip=False))
    harness.panel.faults.commit_then_fail, harness.panel.faults.commit_then_fail_count = "500", 1
    final = await harness.run_until_done(record.id)

    assert final.state is RequestState.COMPLETED
    (built,) = (await harness.requests.get(record.id))[1]
    assert len(owner_servers(harness.panel)) == 1 and creates(harness.panel) == 1
    on_panel = harness.panel.servers[built.server_id or 0]
    assert built.group_id == harness.panel.hypervisors[on_panel.hypervisor_id].group_id == 2
    created = [e for e in await harness.events(record.id) if e.kind == events.INSTANCE_CREATED]
    assert [(e.payload["group"], e.payload["reconciled"]) for e in created] == [("Amsterdam", True)]


# -- unclear builds and milestones -------------------------------------------------------------


async def test_a_5xx_on_a_build_asks_the_panel_and_builds_again_without_the_grace(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(1, public_ip=False))
    harness.panel.faults.script.append(ScriptedFault("POST", r"^/servers/\d+/build$", "500"))
    await harness.engine.run_once()

    (instance,) = (await harness.requests.get(record.id))[1]
    assert instance.state is S.CREATED  # the panel shows it unbuilt: the answer is clear
    assert instance.error is not None and "did not build it" in instance.error
    final = await harness.run_until_done(record.id, max_ticks=20)  # grace is 30 ticks

    assert final.state is RequestState.COMPLETED
    assert harness.panel.count("POST", r"^/servers/\d+/build$") == 2
    kinds = [e.kind for e in await harness.events(record.id)]
    assert kinds.count(events.INSTANCE_WAITING) == 1
    assert kinds.count(events.INSTANCE_BUILD_STARTED) == 1


async def test_a_build_committed_before_a_5xx_is_followed_at_once(harness: Harness) -> None:
    record = await harness.submit_json(two_groups(1, public_ip=False))
    script = ScriptedFault("POST", r"^/servers/\d+/build$", "commit_then_500")
    harness.panel.faults.script.append(script)
    report = await harness.engine.run_once()

    (instance,) = (await harness.requests.get(record.id))[1]
    assert instance.state is S.BUILDING and instance.error is None  # confirmed by reading it
    assert report.builds_started == 1
    await harness.run_until_done(record.id)
    assert harness.panel.count("POST", r"^/servers/\d+/build$") == 1
    assert set((await _milestones(harness, record.id)).values()) == {1}


async def test_a_build_without_an_answer_gets_its_milestone_once_from_tracking(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(timeout_s=0.3)
    h.panel.faults.hang_s = 1
    record = await h.submit_json(two_groups(2, public_ip=False))
    h.panel.faults.script.append(ScriptedFault("POST", r"^/servers/\d+/build$", "commit_then_hang"))
    final = await h.run_until_done(record.id)

    assert final.state is RequestState.COMPLETED
    waits = [e for e in await h.events(record.id) if e.kind == events.INSTANCE_WAITING]
    assert len(waits) == 1 and "build answer lost" in str(waits[0].payload["reason"])
    milestones = await _milestones(h, record.id)
    assert len(milestones) == 6 and set(milestones.values()) == {1}
    assert h.panel.count("POST", r"^/servers/\d+/build$") == 2  # one per server


# -- leases ------------------------------------------------------------------------------------


async def test_only_the_rows_being_worked_on_are_leased_and_a_stop_frees_them(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(concurrency=2)
    record = await h.submit_json(two_groups(8, public_ip=False))
    h.panel.faults.latency_s = 0.5  # creates take a while: stop the tick in the middle
    tick = asyncio.create_task(h.engine.run_once())
    for _ in range(200):
        if creates(h.panel) >= 2:
            break
        await asyncio.sleep(0.01)
    _, instances = await h.requests.get(record.id)
    leased = [i for i in instances if i.lease_owner is not None]
    assert len(leased) == 2  # the two in flight, not a batch of them

    tick.cancel()
    await asyncio.gather(tick, return_exceptions=True)
    _, instances = await h.requests.get(record.id)
    assert [i for i in instances if i.lease_owner is not None] == []


# -- fairness and the pipeline -------------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory"], indirect=True)  # 260 servers: keep it quick
async def test_a_small_request_is_tracked_while_hundreds_are_in_flight(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(concurrency=16, batch=100)
    h.panel.timing = BuildTiming(queued_s=0, build_s=10**6)  # the big request's builds hang on
    for hypervisor in h.panel.hypervisors.values():
        hypervisor.max_servers *= 10
        hypervisor.max_memory_mb *= 10
        hypervisor.max_storage_gb *= 10
        hypervisor.max_cpu *= 10
    limits = RequestLimits(max_instances=260)
    big = await h.submit_json(two_groups(130, 130, name="big", public_ip=False), limits=limits)
    for _ in range(20):
        report = await h.engine.run_once()
        if not report.busy:
            break
    _, instances = await h.requests.get(big.id)
    assert [i.state for i in instances] == [S.BUILDING] * 260, {i.error for i in instances}

    h.panel.timing = BuildTiming(queued_s=0, build_s=2)
    small = await h.submit_json(two_groups(5, name="small", public_ip=False))
    for _ in range(4):
        await h.engine.run_once()
        h.clock.advance(1)
    record, servers = await h.requests.get(small.id)
    assert record.state is RequestState.COMPLETED, [s.state for s in servers]
    _, instances = await h.requests.get(big.id)
    assert all(i.state is S.BUILDING for i in instances)


# -- outages -----------------------------------------------------------------------------------


class _FlakyDatabase:
    """A started database whose units of work fail while `down` (as the SQL adapter reports a
    read-only SQLite file)."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.down = 0  # units of work left to fail

    def uow(self) -> object:
        if self.down > 0:
            self.down -= 1
            raise DatabaseUnavailableError(
                DatabaseProblem.READ_ONLY, "The SQLite file x is read-only (attempt to write)."
            )
        return self.inner.uow()


def _worker_core(harness: Harness, db: _FlakyDatabase, sleeps: Sleeps) -> Core:
    """What `vfbot worker` runs on: the harness's panel client and clock, over `db`."""
    env = {
        "VIRTFUSION_HOST": harness.sandbox.url,
        "VIRTFUSION_API_TOKEN": "sandbox-token",
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
        "VF_POLL_INTERVAL": "1",
    }
    settings = load_settings(env, env_file=None)
    return build_core(settings, harness.client, db, clock=harness.clock, sleep=sleeps)  # type: ignore[arg-type]


async def _run_worker(core: Core, out: Console, sleeps: Sleeps, *, until_idle: bool) -> int:
    """`vfbot worker`'s loop on `core`, waiting on the fake clock."""
    consumer = _cli_consumer(core, out)
    ops = worker_ops(core, (CLI_SUBSCRIBER,))
    stop = asyncio.Event()
    return await _work(core, ops, consumer, stop, until_idle=until_idle, pause=sleeps)


async def test_the_worker_outlives_a_database_and_a_panel_outage(
    harness: Harness, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    if not isinstance(harness.store, Database):
        raise AssertionError("this test runs on SQLite")
    flaky = _FlakyDatabase(harness.store)
    core = _worker_core(harness, flaky, sleeps)
    record = await harness.submit_json(two_groups(2, public_ip=False))
    harness.panel.timing = BuildTiming(queued_s=0, build_s=3)
    flaky.down = 12  # the database is read-only for the worker's first units of work
    panel_down = ScriptedFault("GET", r"^/servers/user/1$", "503", times=25)  # then the panel
    harness.panel.faults.script.append(panel_down)
    caplog.set_level(logging.WARNING, logger="bot.scheduler")
    out = Console(file=io.StringIO(), width=200)

    code = await asyncio.wait_for(_run_worker(core, out, sleeps, until_idle=True), timeout=60)

    assert code == 0
    final, _ = await harness.requests.get(record.id)
    assert final.state is RequestState.COMPLETED
    # Each outage is one warning (they came one after the other), and its end one more.
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.scheduler"]
    assert [line.split(" Retrying")[0] for line in lines[:2]] == [
        "The SQLite file x is read-only (attempt to write).",
        "The panel failed: GET /servers/user/1 failed with HTTP 503: Service Unavailable.",
    ]
    assert len(lines) == 3 and lines[2].startswith("The panel answers again; the worker carries on")
    assert all(r.exc_info is None for r in caplog.records if r.name == "bot.scheduler")
    assert max(sleeps.waits) <= 60  # backed off, within bounds


async def test_a_database_that_is_not_the_one_to_use_stops_the_worker(
    harness: Harness, sleeps: Sleeps
) -> None:
    if not isinstance(harness.store, Database):
        raise AssertionError("this test runs on SQLite")
    flaky = _FlakyDatabase(harness.store)
    core = _worker_core(harness, flaky, sleeps)
    vanished = DatabaseUnavailableError(DatabaseProblem.VANISHED, "The SQLite file x vanished.")

    def gone() -> object:
        raise vanished

    flaky.uow = gone  # type: ignore[method-assign]
    out = Console(file=io.StringIO(), width=200)
    with pytest.raises(DatabaseUnavailableError):
        await _run_worker(core, out, sleeps, until_idle=False)
    assert sleeps.waits == []


async def test_a_failing_listing_is_noted_on_building_servers_until_it_works(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(1, public_ip=False))
    await harness.engine.run_once()  # created and building
    harness.clock.advance(1)
    listing = ScriptedFault("GET", r"^/servers/user/1$", "502", times=4)  # every retry of one call
    harness.panel.faults.script.append(listing)
    with pytest.raises(VirtFusionError):
        await harness.engine.run_once()
    (instance,) = (await harness.requests.get(record.id))[1]
    assert instance.state is S.BUILDING
    assert (instance.error or "").startswith("the panel's list of servers failed (GET /servers")

    harness.clock.advance(1)
    await harness.engine.run_once()
    (instance,) = (await harness.requests.get(record.id))[1]
    assert instance.state is S.BUILDING and instance.error is None
    await harness.run_until_done(record.id)
    assert set((await _milestones(harness, record.id)).values()) == {1}


async def test_create_wait_outlives_a_panel_outage_and_tells_the_user(
    harness: Harness, sleeps: Sleeps
) -> None:
    core = _worker_core(harness, _FlakyDatabase(harness.store), sleeps)  # type: ignore[arg-type]
    record = await harness.submit_json(two_groups(1, public_ip=False))
    harness.panel.faults.script = [ScriptedFault("GET", r"^/servers/user/1$", "503", times=12)]
    buffer = io.StringIO()
    out = Console(file=buffer, width=300)

    code = await asyncio.wait_for(_wait(core, record, out, sleep=sleeps), timeout=60)

    printed = buffer.getvalue()
    assert code == 0, printed
    assert printed.count("cannot work right now (The panel failed: GET /servers/user/1") == 1
    assert printed.count("vfbot create --wait: working again.") == 1
    assert "VF-1 web-prg: built" in printed


async def test_status_shows_what_vfbot_waits_for(harness: Harness) -> None:
    record = await harness.submit_json(two_groups(1, public_ip=False))
    harness.panel.faults.script.append(ScriptedFault("POST", r"^/servers$", "500"))
    await harness.engine.run_once()
    current, instances = await harness.requests.get(record.id)
    buffer = io.StringIO()
    Console(file=buffer, width=300).print(_servers_table(current, instances))
    assert "create_unknown: create answer lost" in buffer.getvalue()
    assert "looking for the server on the panel until" in buffer.getvalue()
