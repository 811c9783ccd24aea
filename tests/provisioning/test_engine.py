"""The durable workflow against the sandbox panel over loopback HTTP and a real database."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.provisioning import events
from bot.provisioning.errors import AlreadyDecidedError
from bot.provisioning.model import EventRecord, InstanceState, RequestState
from bot.provisioning.outbox import OutboxConsumer
from bot.provisioning.ports import InstanceChange
from bot.provisioning.request import RequestLimits
from bot.sandbox import BuildTiming, ScriptedFault
from tests.provisioning.conftest import (
    Harness,
    MakeHarness,
    creates,
    owner_servers,
    two_groups,
)

# -- the seed's examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "extra_create"),
    [
        ("create.json", {}),
        ("create-with-network.json", {"ipv4": 1, "firewallRulesets": [2, 3]}),
    ],
)
async def test_seed_example_completes_with_exact_bodies(
    harness: Harness, example: str, extra_create: dict[str, object]
) -> None:
    record = await harness.submit_file(example)
    final = await harness.run_until_done(record.id)

    assert final.state is RequestState.COMPLETED
    real_creates = [
        c for c in harness.panel.calls("POST", r"^/servers$") if c.query.get("dryRun") != "true"
    ]
    assert len(real_creates) == 1
    assert real_creates[0].body == {
        # hypervisor_id 2 is prg-hv2: the API takes its GROUP (Prague = 1), never the hypervisor
        "packageId": 1,
        "userId": 1,
        "hypervisorId": 1,
        "networkProfile": 2,
        "networkSpeedInbound": 125_000,  # 1000 Mbps in kB/s
        "networkSpeedOutbound": 125_000,
        "memory": 1024,
        "storage": 25,
        "cpuCores": 1,
        **extra_create,
    }
    builds = harness.panel.calls("POST", r"^/servers/\d+/build$")
    assert len(builds) == 1
    assert builds[0].body == {
        "operatingSystemId": 1,
        "name": "test-server",
        "hostname": "test-server",
        "sshKeys": [1],
    }
    _, instances = await harness.requests.get(record.id)
    assert [i.state for i in instances] == [InstanceState.BUILT]
    assert instances[0].ipv4 and instances[0].ipv4[0].startswith("192.0.2.")
    kinds = [e.kind for e in await harness.events(record.id)]
    assert kinds == [
        events.REQUEST_SUBMITTED,
        events.REQUEST_STARTED,
        events.INSTANCE_CREATED,
        events.INSTANCE_BUILD_STARTED,
        events.INSTANCE_BUILT,
        events.REQUEST_FINISHED,
    ]


async def test_the_build_follows_the_create_at_once_without_waiting_for_a_tick(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(3))
    harness.panel.reset_log()
    report = await harness.engine.run_once()  # one tick: created, building, first check

    _, instances = await harness.requests.get(record.id)
    assert [i.state for i in instances] == [InstanceState.BUILDING] * 3
    assert (report.created, report.builds_started) == (3, 3)
    assert all(i.error is None for i in instances)  # the build is confirmed
    await harness.run_until_done(record.id)
    # The create answer says `allocated`: no read before the build, and none while tracking.
    assert harness.panel.count("GET", r"^/servers/\d+$") == 0
    assert harness.panel.count("POST", r"^/servers/\d+/build$") == 3


async def test_a_created_server_left_by_a_crash_is_read_before_its_build(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(1))
    server = await harness.client.create_server(
        (await harness.requests.get(record.id))[1][0].plan.create_body
    )
    async with harness.uow() as uow:  # as a worker that died after recording the create
        (instance,) = await uow.instances.list_for_request(record.id)
        await uow.instances.transition(
            instance.id,
            expected=[InstanceState.PLANNED],
            new=InstanceState.CREATED,
            now=harness.clock(),
            change=InstanceChange(server_id=server.id, group_id=1),
        )
        await uow.commit()
    harness.panel.reset_log()
    await harness.run_until_done(record.id)
    assert harness.panel.count("GET", r"^/servers/\d+$") == 1  # is commissionStatus still 0?
    assert harness.panel.count("POST", r"^/servers/\d+/build$") == 1


# -- exactly once under ambiguous creates -------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "drop", "hang"])
async def test_commit_then_fail_on_every_first_create_still_makes_exactly_ten(
    make_harness: MakeHarness, mode: str
) -> None:
    h = make_harness(timeout_s=0.3)
    h.panel.faults.hang_s = 5
    record = await h.submit_json(two_groups(10))
    h.panel.faults.commit_then_fail = mode  # type: ignore[assignment]
    h.panel.faults.commit_then_fail_count = 10

    final = await h.run_until_done(record.id)

    assert final.state is RequestState.COMPLETED
    assert creates(h.panel) == 10
    assert len(owner_servers(h.panel)) == 10
    _, instances = await h.requests.get(record.id)
    assert len({i.server_id for i in instances}) == 10
    assert all(i.state is InstanceState.BUILT for i in instances)
    adopted = [e for e in await h.events(record.id) if e.kind == events.INSTANCE_CREATED]
    assert len(adopted) == 10 and all(e.payload["reconciled"] for e in adopted)


async def test_a_create_that_failed_before_committing_is_made_again_after_the_grace(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(1))
    harness.panel.faults.script.append(ScriptedFault("POST", r"^/servers$", "500", times=1))

    report = await harness.engine.run_once()
    assert report.created == 0
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is InstanceState.CREATE_UNKNOWN
    assert creates(harness.panel) == 1 and not owner_servers(harness.panel)

    harness.clock.advance(5)  # within the grace: reconcile finds nothing and waits
    await harness.engine.run_once()
    assert creates(harness.panel) == 1

    final = await harness.run_until_done(record.id, step_s=10)
    assert final.state is RequestState.COMPLETED
    assert creates(harness.panel) == 2
    assert len(owner_servers(harness.panel)) == 1


async def test_reconciliation_never_adopts_a_server_that_is_not_ours_to_take(
    harness: Harness,
) -> None:
    # A server someone built by hand, and one of a different size, are not adopted.
    record = await harness.submit_json(two_groups(1))
    harness.panel.faults.commit_then_fail = "500"
    harness.panel.faults.commit_then_fail_count = 1
    await harness.engine.run_once()
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is InstanceState.CREATE_UNKNOWN
    mine = next(iter(harness.panel.servers.values()))
    mine.memory_mb = 4096  # pretend it is another size: it must not be adopted
    harness.clock.advance(1)
    await harness.engine.run_once()
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is InstanceState.CREATE_UNKNOWN
    mine.memory_mb = 1024
    harness.clock.advance(1)
    await harness.engine.run_once()
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.server_id == mine.id


async def test_two_engines_on_one_database_create_each_server_once(
    make_harness: MakeHarness,
) -> None:
    a = make_harness(worker_id="replica-a", concurrency=3)
    b = make_harness(worker_id="replica-b", concurrency=3)
    record = await a.submit_json(two_groups(10))
    for _ in range(60):
        await asyncio.gather(a.engine.run_once(), b.engine.run_once())
        current, _ = await a.requests.get(record.id)
        if current.state is RequestState.COMPLETED:
            break
        a.clock.advance(1)
    assert current.state is RequestState.COMPLETED
    assert creates(a.panel) == 10
    assert a.panel.count("POST", r"^/servers/\d+/build$") == 10
    kinds = [e.kind for e in await a.events(record.id)]
    assert kinds.count(events.INSTANCE_CREATED) == 10
    assert kinds.count(events.INSTANCE_BUILT) == 10
    assert kinds.count(events.REQUEST_FINISHED) == 1


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_two_engines_on_postgres_create_each_server_once(make_harness: MakeHarness) -> None:
    await test_two_engines_on_one_database_create_each_server_once(make_harness)


# -- exactly once under ambiguous builds -------------------------------------------------------
# The sandbox now answers a second build with 200 (a rebuild, as the spec's example does), so
# these prove that vfbot itself never builds twice; they no longer lean on a 422.


@pytest.mark.parametrize("kind", ["commit_then_500", "commit_then_drop", "commit_then_hang"])
async def test_an_ambiguous_build_is_followed_never_repeated(
    make_harness: MakeHarness, kind: str
) -> None:
    h = make_harness(timeout_s=0.3)
    h.panel.faults.hang_s = 5
    h.panel.faults.script = [ScriptedFault("POST", r"^/servers/\d+/build$", kind, times=3)]  # type: ignore[arg-type]
    record = await h.submit_json(two_groups(3))

    final = await h.run_until_done(record.id)

    assert final.state is RequestState.COMPLETED
    builds = h.panel.calls("POST", r"^/servers/\d+/build$")
    assert sorted(b.api_path for b in builds) == sorted(
        f"/servers/{s.id}/build" for s in owner_servers(h.panel)
    )
    assert len(builds) == 3 and all(b.fault == kind for b in builds)
    _, instances = await h.requests.get(record.id)
    assert all(i.state is InstanceState.BUILT for i in instances)


async def test_a_build_a_dead_worker_sent_is_followed_not_sent_again(harness: Harness) -> None:
    # The first build attempt is refused (423) so the instance waits in `created`; then the
    # build "a crashed worker sent" reaches the panel. The engine must see it and follow it.
    harness.panel.faults.script = [ScriptedFault("POST", r"^/servers/\d+/build$", "423")]
    record = await harness.submit_json(two_groups(1))
    await harness.engine.run_once()
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is InstanceState.CREATED and instance.server_id is not None
    await harness.client.build_server(instance.server_id, instance.plan.build_body)

    final = await harness.run_until_done(record.id)

    assert final.state is RequestState.COMPLETED
    sent = [c.status for c in harness.panel.calls("POST", r"^/servers/\d+/build$")]
    assert sent == [423, 200]  # the refused one and the dead worker's: vfbot sent no other


# -- tracking -----------------------------------------------------------------------------------


async def test_a_poll_tick_with_fifty_builds_in_flight_makes_one_panel_call(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(concurrency=8)
    h.panel.timing = BuildTiming(queued_s=600, build_s=600)
    limits = RequestLimits(max_instances=50)
    record = await h.submit_json(two_groups(25, 25), limits=limits)
    for _ in range(30):
        await h.engine.run_once()
        _, instances = await h.requests.get(record.id)
        if all(i.state is InstanceState.BUILDING for i in instances):
            break
    assert len(instances) == 50
    assert all(i.state is InstanceState.BUILDING for i in instances)

    h.panel.reset_log()
    await h.engine.run_once()
    assert h.panel.log == []  # the last tick's listing was less than a poll interval ago
    h.clock.advance(1)  # VF_POLL_INTERVAL
    await h.engine.run_once()
    assert [(c.method, c.api_path) for c in h.panel.log] == [("GET", "/servers/user/1")]


async def test_a_failed_build_ends_the_instance_with_the_reason_and_can_clean_up(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(cleanup_failed=True)
    h.panel.timing = BuildTiming(queued_s=2, build_s=8, fail_next=1)
    record = await h.submit_json(two_groups(2))
    final = await h.run_until_done(record.id)

    assert final.state is RequestState.PARTIALLY_FAILED
    _, instances = await h.requests.get(record.id)
    failed = [i for i in instances if i.state is InstanceState.FAILED]
    assert len(failed) == 1
    assert "buildFailed" in (failed[0].error or "")
    assert "deleted" in (failed[0].error or "")
    (delete,) = h.panel.calls("DELETE", rf"^/servers/{failed[0].server_id}$")
    assert delete.query == {"delay": "0"}  # sent explicitly: the spec documents no default
    assert len(owner_servers(h.panel)) == 1


async def test_a_failed_build_in_the_official_shape_is_reported_at_once(
    make_harness: MakeHarness,
) -> None:
    # The spec's example of a failed build: commissionStatus 2, state "failed", buildFailed
    # false. It must end the build when the panel says so, not at VF_BUILD_TIMEOUT (20 minutes).
    h = make_harness(build_timeout_s=1200)
    h.panel.timing = BuildTiming(queued_s=2, build_s=8, fail_next=1, fail_shape="state_failed")
    record = await h.submit_json(two_groups(1))
    final = await h.run_until_done(record.id, step_s=1)

    assert final.state is RequestState.FAILED
    _, (instance,) = await h.requests.get(record.id)
    assert instance.state is InstanceState.FAILED
    assert 'the OS installation failed (state "failed")' in (instance.error or "")
    started = instance.build_started_at
    assert started is not None and instance.finished_at is not None
    assert (instance.finished_at - started).total_seconds() <= 15  # 2 s queued + 8 s build
    server = h.panel.servers[instance.server_id or 0]
    assert server.state(h.clock()) == "failed" and not server.build_failed(h.clock())


async def test_a_build_that_never_finishes_times_out(make_harness: MakeHarness) -> None:
    h = make_harness(build_timeout_s=60)
    h.panel.timing = BuildTiming(queued_s=5, build_s=10_000)
    record = await h.submit_json(two_groups(1))
    final = await h.run_until_done(record.id, step_s=10)
    assert final.state is RequestState.FAILED
    _, (instance,) = await h.requests.get(record.id)
    assert "did not finish within 1 minutes" in (instance.error or "")


async def test_a_refused_create_fails_the_instance_with_the_panels_words(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(1))
    harness.panel.hypervisors[1].max_memory_mb = 0
    harness.panel.hypervisors[2].max_memory_mb = 0
    final = await harness.run_until_done(record.id)
    assert final.state is RequestState.FAILED
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is InstanceState.FAILED
    assert "refused to create" in (instance.error or "")
    assert "memory" in (instance.error or "")


# -- approval, cancel, expiry -------------------------------------------------------------------


async def test_approval_is_decided_once(harness: Harness) -> None:
    record = await harness.submit_json(two_groups(1), approval=True)
    await harness.engine.run_once()
    assert creates(harness.panel) == 0  # nothing happens before approval

    results = await asyncio.gather(
        harness.requests.approve(record.id, actor="U_A"),
        harness.requests.approve(record.id, actor="U_B"),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, AlreadyDecidedError)]
    assert len(winners) == 1 and len(losers) == 1
    assert "already approved by" in str(losers[0])
    with pytest.raises(AlreadyDecidedError):
        await harness.requests.reject(record.id, actor="U_C", reason="too late")
    final = await harness.run_until_done(record.id)
    assert final.state is RequestState.COMPLETED
    assert creates(harness.panel) == 1


async def test_rejection_and_expiry_create_nothing(harness: Harness) -> None:
    rejected = await harness.submit_json(two_groups(2), approval=True)
    expired = await harness.submit_json(two_groups(1, name="db"), approval=True)
    await harness.requests.reject(rejected.id, actor="U_A", reason="not this week")
    harness.clock.advance(3601)
    await harness.engine.run_once()
    r, r_instances = await harness.requests.get(rejected.id)
    e, e_instances = await harness.requests.get(expired.id)
    assert (r.state, r.decision_note) == (RequestState.REJECTED, "not this week")
    assert e.state is RequestState.EXPIRED
    assert {i.state for i in r_instances + e_instances} == {InstanceState.CANCELLED}
    assert creates(harness.panel) == 0


async def test_cancel_keeps_or_deletes_what_exists_and_creates_nothing_new(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(concurrency=1)
    record = await h.submit_json(two_groups(4))
    await h.engine.run_once()  # concurrency 1: up to four creates in one tick
    created_before = creates(h.panel)
    await h.requests.cancel(record.id, actor="U_A", delete_servers=True)
    final = await h.run_until_done(record.id, step_s=5)
    assert final.state is RequestState.CANCELLED
    assert creates(h.panel) == created_before
    assert not owner_servers(h.panel)  # what existed was deleted
    _, instances = await h.requests.get(record.id)
    assert {i.state for i in instances} <= {InstanceState.CANCELLED, InstanceState.DELETED}


# -- the outbox ---------------------------------------------------------------------------------


async def test_outbox_delivers_every_event_once_in_order_with_two_consumers(
    harness: Harness,
) -> None:
    record = await harness.submit_json(two_groups(3))
    await harness.run_until_done(record.id)
    seen: list[tuple[str, int]] = []

    def consumer(name: str) -> OutboxConsumer:
        async def handle(event: EventRecord) -> None:
            seen.append((name, event.id))
            await asyncio.sleep(0)

        return OutboxConsumer(
            harness.store.uow,
            subscriber="slack",
            handler=handle,
            clock=harness.clock,
            worker=name,
        )

    await asyncio.gather(consumer("one").drain(limit=2), consumer("two").drain(limit=2))
    all_events = await harness.events(record.id)
    ids = [event_id for _, event_id in seen]
    assert sorted(ids) == [e.id for e in all_events]  # each exactly once
    assert ids == sorted(ids)  # one request: in order
    assert await harness.undelivered("slack") == []


def test_plan_json_is_what_the_store_keeps() -> None:
    from bot.provisioning.plan import ServerPlan

    sample = {
        "name": "a",
        "instance_index": 0,
        "group_id": 1,
        "group_name": "Prague",
        "os_id": 1,
        "os_label": "Ubuntu 22.04",
        "memory_mb": 1024,
        "disk_gb": 25,
        "cpu_cores": 1,
        "network_profile_source": "package default",
        "create_body": {"packageId": 1, "userId": 1, "hypervisorId": 1},
        "build_body": {"operatingSystemId": 1},
    }
    plan = ServerPlan.model_validate(json.loads(json.dumps(sample)))
    assert ServerPlan.model_validate(plan.model_dump(mode="json")) == plan
    # The bodies are typed, and kept as the panel receives them (camelCase, no nulls).
    assert plan.create_body.hypervisor_group_id == 1
    assert plan.model_dump(mode="json")["create_body"] == sample["create_body"]
    assert plan.model_dump(mode="json")["build_body"] == sample["build_body"]


async def test_a_server_id_this_database_already_knows_fails_loudly_and_stops(
    harness: Harness,
) -> None:
    """Panels never reuse ids: a clash means the database was used with another panel."""
    first = await harness.submit_json(two_groups(1))
    await harness.run_until_done(first.id)
    (old,) = owner_servers(harness.panel)
    harness.panel.servers.pop(old.id)  # the panel "forgets" it...
    harness.panel.next_server_id = old.id  # ...and hands the same id out again

    second = await harness.submit_json(two_groups(1, name="db"))
    final = await harness.run_until_done(second.id)
    assert final.state is RequestState.FAILED
    _, (instance,) = await harness.requests.get(second.id)
    assert "already records that id" in (instance.error or "")
    assert creates(harness.panel) == 2  # no further creates after the clash
