"""The fast unit layer: the request lifecycle, the engine and deletes on the in-memory store.

Same services as the app (`bot.app.build_core` wires them alike), the sandbox panel over
loopback HTTP, and one fake clock; nothing sleeps. The SQL store passes the same contract
(``tests/store``), so what holds here holds there; ``test_engine`` and ``test_operations`` run
the same paths over SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.provisioning import events
from bot.provisioning.engine import TickReport
from bot.provisioning.errors import AlreadyDecidedError, UnknownRequestError
from bot.provisioning.events import (
    OperationDecided,
    OperationFinished,
    OperationRequested,
    parse_event,
)
from bot.provisioning.intake import Origin
from bot.provisioning.model import (
    EventRecord,
    InstanceRecord,
    InstanceState,
    Operation,
    OperationState,
    RequestRecord,
    RequestState,
)
from bot.provisioning.outbox import OutboxConsumer
from bot.provisioning.servers.model import ResolvedServer
from bot.sandbox import BuildTiming, ScriptedFault
from bot.store.memory import MemoryStore
from tests.provisioning.conftest import Harness, MakeHarness, creates, owner_servers

pytestmark = pytest.mark.parametrize("store", ["memory"], indirect=True)

R = RequestState
S = InstanceState
OS = OperationState

ONE: dict[str, object] = {
    "project_name": "unit",
    "instances": [{"name": "web", "hypervisor_group": "Prague", "template": "debian-12"}],
}


def _many(count: int, *, name: str = "web") -> dict[str, object]:
    return {
        "project_name": "unit",
        "instances": [
            {
                "name": name,
                "number_of_instances": count,
                "hypervisor_group": "Prague",
                "template": "debian-12",
            }
        ],
    }


async def _kinds(h: Harness, request_id: int) -> list[str]:
    return [e.kind for e in await h.events(request_id)]


async def _op_events(h: Harness, operation_id: int) -> list[EventRecord]:
    async with h.uow() as uow:
        return await uow.events.list_for_operation(operation_id)


async def _run(h: Harness, request_id: int, *, step_s: float = 1.0) -> TickReport:
    """Tick until the request ends; the reports of every tick added up."""
    total = TickReport()
    for _ in range(400):
        report = await h.engine.run_once()
        for name in ("created", "adopted", "recreated", "builds_started", "built", "failed"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.deleted += report.deleted
        total.finished_requests += report.finished_requests
        record, _ = await h.requests.get(request_id)
        if record.state not in (R.RUNNING, R.PENDING_APPROVAL, R.APPROVED):
            return total
        h.clock.advance(step_s)
    raise AssertionError(f"VF-{request_id} did not finish")


async def _built(h: Harness) -> tuple[RequestRecord, InstanceRecord]:
    record = await h.submit_json(ONE)
    await _run(h, record.id)
    _, (instance,) = await h.requests.get(record.id)
    return record, instance


def test_the_harness_runs_on_the_memory_store(harness: Harness) -> None:
    assert isinstance(harness.store, MemoryStore)


# -- the request lifecycle ----------------------------------------------------------------------


async def test_submit_starts_at_once_and_is_idempotent_per_key(harness: Harness) -> None:
    origin = Origin(key="cli:once", requester="U1", source="cli")
    record, new = await harness.intake.submit_request(ONE, origin)
    again, new_again = await harness.intake.submit_request(ONE, origin)

    assert (new, new_again) == (True, False)
    assert again.id == record.id
    assert record.state is R.RUNNING and record.expires_at is None
    assert await harness.requests.find_by_key("cli:once") == record
    assert [r.id for r in await harness.requests.recent()] == [record.id]
    assert [r.id for r in await harness.requests.recent(requester="U2")] == []
    assert [r.id for r in await harness.requests.by_state([R.RUNNING])] == [record.id]
    assert await harness.requests.has_work()
    _, (instance,) = await harness.requests.get(record.id)
    assert (instance.state, instance.name, instance.plan.name) == (S.PLANNED, "web", "web")
    assert await _kinds(harness, record.id) == [events.REQUEST_SUBMITTED, events.REQUEST_STARTED]
    (submitted, _) = await harness.events(record.id)
    assert submitted.payload == {"requester": "U1", "servers": 1, "approval_required": False}
    (audit,) = await harness.servers.inventory.recent_audit(5)
    assert (audit.actor, audit.action, audit.target, audit.result) == (
        "U1",
        "request.submit",
        record.human_id,
        "running",
    )
    assert audit.detail == {"source": "cli", "servers": 1}


async def test_approve_once_then_it_runs_to_completion(harness: Harness) -> None:
    record = await harness.submit_json(ONE, approval=True)
    assert record.state is R.PENDING_APPROVAL
    assert record.expires_at == harness.clock() + timedelta(hours=1)
    await harness.engine.run_once()
    assert creates(harness.panel) == 0  # nothing before approval
    assert not await harness.requests.has_work()

    results = await asyncio.gather(
        harness.requests.approve(record.id, actor="U_A"),
        harness.requests.approve(record.id, actor="U_B"),
        return_exceptions=True,
    )
    (winner,) = [r for r in results if isinstance(r, RequestRecord)]
    (loser,) = [r for r in results if isinstance(r, AlreadyDecidedError)]
    assert (winner.state, winner.decided_by) == (R.RUNNING, "U_A")
    assert str(loser) == f"{record.human_id} was already approved by U_A."
    with pytest.raises(AlreadyDecidedError, match="already approved by U_A"):
        await harness.requests.reject(record.id, actor="U_C", reason="too late")

    await _run(harness, record.id)

    final, _ = await harness.requests.get(record.id)
    assert final.state is R.COMPLETED and creates(harness.panel) == 1
    assert await _kinds(harness, record.id) == [
        events.REQUEST_SUBMITTED,
        events.REQUEST_APPROVED,
        events.REQUEST_STARTED,
        events.INSTANCE_CREATED,
        events.INSTANCE_BUILD_STARTED,
        events.INSTANCE_BUILT,
        events.REQUEST_FINISHED,
    ]
    assert not await harness.requests.has_work()


async def test_reject_cancels_every_server_and_creates_nothing(harness: Harness) -> None:
    record = await harness.submit_json(_many(2), approval=True)

    rejected = await harness.requests.reject(record.id, actor="U_A", reason="not this week")
    await harness.engine.run_once()

    assert (rejected.state, rejected.decided_by, rejected.decision_note) == (
        R.REJECTED,
        "U_A",
        "not this week",
    )
    _, instances = await harness.requests.get(record.id)
    assert {i.state for i in instances} == {S.CANCELLED}
    assert all(i.finished_at == harness.clock() for i in instances)
    assert await _kinds(harness, record.id) == [
        events.REQUEST_SUBMITTED,
        events.INSTANCE_CANCELLED,
        events.INSTANCE_CANCELLED,
        events.REQUEST_REJECTED,
    ]
    with pytest.raises(AlreadyDecidedError, match="already rejected by U_A"):
        await harness.requests.approve(record.id, actor="U_B")
    assert creates(harness.panel) == 0


async def test_an_undecided_request_expires_once(harness: Harness) -> None:
    record = await harness.submit_json(ONE, approval=True)
    harness.clock.advance(3599)
    assert await harness.requests.expire_due() == []

    harness.clock.advance(2)
    await harness.engine.run_once()  # each tick expires what is due

    final, (instance,) = await harness.requests.get(record.id)
    assert final.state is R.EXPIRED and instance.state is S.CANCELLED
    assert await harness.requests.expire_due() == []
    with pytest.raises(AlreadyDecidedError, match="is expired; there is nothing to decide"):
        await harness.requests.approve(record.id, actor="U_A")
    assert await _kinds(harness, record.id) == [
        events.REQUEST_SUBMITTED,
        events.INSTANCE_CANCELLED,
        events.REQUEST_EXPIRED,
    ]
    latest = (await harness.servers.inventory.recent_audit(1))[0]
    assert (latest.actor, latest.action, latest.result) == ("vfbot", "request.expire", "expired")
    assert creates(harness.panel) == 0


async def test_cancel_a_pending_request(harness: Harness) -> None:
    record = await harness.submit_json(ONE, approval=True)

    cancelled = await harness.requests.cancel(record.id, actor="U_A", delete_servers=False)

    assert (cancelled.state, cancelled.decided_by) == (R.CANCELLED, "U_A")
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is S.CANCELLED
    kinds = await _kinds(harness, record.id)
    assert kinds[-2:] == [events.INSTANCE_CANCELLED, events.REQUEST_CANCEL_REQUESTED]
    with pytest.raises(AlreadyDecidedError):
        await harness.requests.cancel(record.id, actor="U_A", delete_servers=False)
    with pytest.raises(UnknownRequestError) as caught:
        await harness.requests.cancel(404, actor="U_A", delete_servers=False)
    assert caught.value.request_id == 404


@pytest.mark.parametrize("delete_servers", [True, False], ids=["delete", "keep"])
async def test_cancel_a_running_request_deletes_or_keeps_what_exists(
    make_harness: MakeHarness, delete_servers: bool
) -> None:
    h = make_harness(concurrency=1)
    record = await h.submit_json(_many(4))
    await h.engine.run_once()
    made = creates(h.panel)
    assert made >= 1

    await h.requests.cancel(record.id, actor="U_A", delete_servers=delete_servers)
    report = await _run(h, record.id, step_s=5)

    final, instances = await h.requests.get(record.id)
    assert final.state is R.CANCELLED
    assert creates(h.panel) == made  # nothing new after the cancel
    history = await h.events(record.id)
    cancel = next(e for e in history if e.kind == events.REQUEST_CANCEL_REQUESTED)
    assert cancel.payload == {"by": "U_A", "delete_servers": delete_servers}
    assert history[-1].kind == events.REQUEST_FINISHED
    assert history[-1].payload["state"] == "cancelled"
    if delete_servers:
        assert not owner_servers(h.panel)
        assert {i.state for i in instances} <= {S.CANCELLED, S.DELETED}
        deleted = [e for e in history if e.kind == events.INSTANCE_DELETED]
        assert len(deleted) == made == report.deleted
        # Nobody decided this request (it needed no approval): Slack words "cancel" as
        # "because the request was cancelled".
        assert all(e.payload["by"] == "cancel" for e in deleted)
    else:
        assert len(owner_servers(h.panel)) == made
        assert h.panel.count("DELETE", "^/servers/") == 0
        assert {i.state for i in instances} <= {S.CANCELLED, S.BUILT}
        assert sum(1 for i in instances if i.server_id is not None) == made


async def test_retry_failed_deletes_the_leftover_and_builds_again(harness: Harness) -> None:
    harness.panel.timing = BuildTiming(queued_s=2, build_s=8, fail_next=1)
    record = await harness.submit_json(ONE)
    await _run(harness, record.id)
    failed, (instance,) = await harness.requests.get(record.id)
    assert failed.state is R.FAILED and instance.state is S.FAILED
    leftover = instance.server_id
    assert leftover in harness.panel.servers

    (retried,) = await harness.requests.retry_failed(record.id, actor="U_A")

    assert (retried.state, retried.server_id, retried.error, retried.attempts) == (
        S.PLANNED,
        None,
        None,
        0,
    )
    assert leftover not in harness.panel.servers
    with pytest.raises(AlreadyDecidedError, match="only a request whose servers failed"):
        await harness.requests.retry_failed(record.id, actor="U_B")
    await _run(harness, record.id)
    final, (instance,) = await harness.requests.get(record.id)
    assert final.state is R.COMPLETED and instance.state is S.BUILT
    kinds = await _kinds(harness, record.id)
    retried_at = kinds.index(events.REQUEST_RETRIED)
    assert kinds[retried_at - 2 : retried_at] == [events.INSTANCE_FAILED, events.REQUEST_FINISHED]
    assert kinds[retried_at + 1 :] == [
        events.INSTANCE_CREATED,
        events.INSTANCE_BUILD_STARTED,
        events.INSTANCE_BUILT,
        events.REQUEST_FINISHED,
    ]
    retry_event = (await harness.events(record.id))[retried_at]
    assert retry_event.payload == {"by": "U_A", "servers": ["web"]}


async def test_clean_up_failed_servers_once(harness: Harness) -> None:
    harness.panel.timing = BuildTiming(queued_s=2, build_s=8, fail_next=1)
    record = await harness.submit_json(_many(2))
    first, _ = await harness.requests.get(record.id)
    with pytest.raises(AlreadyDecidedError, match="still running; clean up after it finishes"):
        await harness.requests.cleanup_failed(first.id, actor="U_A")
    await _run(harness, record.id)
    final, instances = await harness.requests.get(record.id)
    assert final.state is R.PARTIALLY_FAILED
    (failed,) = [i for i in instances if i.state is S.FAILED]

    (cleaned,) = await harness.requests.cleanup_failed(record.id, actor="U_A")

    assert (cleaned.id, cleaned.state) == (failed.id, S.DELETED)
    assert failed.server_id not in harness.panel.servers
    assert len(owner_servers(harness.panel)) == 1  # the built one stays
    assert await harness.requests.cleanup_failed(record.id, actor="U_A") == []
    history = await harness.events(record.id)
    assert history[-1].kind == events.INSTANCE_DELETED
    assert history[-1].payload["server_id"] == failed.server_id
    assert history[-1].payload["by"] == "U_A"
    latest = (await harness.servers.inventory.recent_audit(1))[0]
    assert (latest.action, latest.detail) == ("request.cleanup", {"servers": []})


async def test_an_unknown_request(harness: Harness) -> None:
    with pytest.raises(UnknownRequestError, match="There is no request VF-9") as caught:
        await harness.requests.get(9)
    assert caught.value.request_id == 9
    with pytest.raises(UnknownRequestError):
        await harness.requests.approve(9, actor="U_A")


# -- the engine ---------------------------------------------------------------------------------


async def test_create_build_track_finish(harness: Harness) -> None:
    record = await harness.submit_json(ONE)

    report = await _run(harness, record.id)

    assert (report.created, report.builds_started, report.built, report.failed) == (1, 1, 1, 0)
    assert report.finished_requests == [record.id]
    final, (instance,) = await harness.requests.get(record.id)
    assert final.state is R.COMPLETED
    assert instance.state is S.BUILT and instance.lease_owner is None
    assert instance.server_id in harness.panel.servers
    assert instance.ipv4 and instance.finished_at is not None
    history = await harness.events(record.id)
    assert [e.kind for e in history] == [
        events.REQUEST_SUBMITTED,
        events.REQUEST_STARTED,
        events.INSTANCE_CREATED,
        events.INSTANCE_BUILD_STARTED,
        events.INSTANCE_BUILT,
        events.REQUEST_FINISHED,
    ]
    assert all(e.instance_id == instance.id for e in history[2:5])
    assert history[-1].payload == {"state": "completed", "built": 1}
    created = harness.panel.calls("POST", r"^/servers$")[-1]
    assert created.body == instance.plan.create_body.to_json()
    (build,) = harness.panel.calls("POST", r"^/servers/\d+/build$")
    assert build.body == instance.plan.build_body.to_json()


async def test_an_ambiguous_create_is_adopted_not_made_twice(harness: Harness) -> None:
    record = await harness.submit_json(ONE)
    harness.panel.faults.commit_then_fail = "500"
    harness.panel.faults.commit_then_fail_count = 1

    first = await harness.engine.run_once()
    _, (instance,) = await harness.requests.get(record.id)
    assert first.created == 0 and instance.state is S.CREATE_UNKNOWN
    harness.clock.advance(1)
    report = await _run(harness, record.id)

    assert report.adopted == 1 and report.recreated == 0
    assert creates(harness.panel) == 1 and len(owner_servers(harness.panel)) == 1
    final, (instance,) = await harness.requests.get(record.id)
    assert final.state is R.COMPLETED and instance.state is S.BUILT
    (created,) = [e for e in await harness.events(record.id) if e.kind == events.INSTANCE_CREATED]
    assert created.payload["reconciled"] is True
    assert created.payload["server_id"] == instance.server_id


async def test_a_create_that_never_reached_the_panel_is_made_after_the_grace(
    harness: Harness,
) -> None:
    record = await harness.submit_json(ONE)
    harness.panel.faults.script.append(ScriptedFault("POST", r"^/servers$", "500", times=1))

    await harness.engine.run_once()
    harness.clock.advance(5)  # within the 30 s grace: nothing to adopt, nothing made
    await harness.engine.run_once()
    assert creates(harness.panel) == 1 and not owner_servers(harness.panel)
    report = await _run(harness, record.id, step_s=10)

    assert report.recreated == 1 and report.created == 1
    assert creates(harness.panel) == 2 and len(owner_servers(harness.panel)) == 1


async def test_a_refused_create_fails_with_the_panels_words(harness: Harness) -> None:
    record = await harness.submit_json(ONE)
    for hypervisor in harness.panel.hypervisors.values():
        hypervisor.max_memory_mb = 0

    report = await _run(harness, record.id)

    assert report.failed == 1 and report.created == 0
    final, (instance,) = await harness.requests.get(record.id)
    assert final.state is R.FAILED and instance.state is S.FAILED
    assert "refused to create" in (instance.error or "")
    history = await harness.events(record.id)
    failed = next(e for e in history if e.kind == events.INSTANCE_FAILED)
    assert failed.payload["stage"] == "create" and failed.payload["server_id"] is None
    assert history[-1].payload == {"state": "failed", "failed": 1}


async def test_a_failed_build_fails_the_server_and_keeps_it(harness: Harness) -> None:
    harness.panel.timing = BuildTiming(queued_s=2, build_s=8, fail_next=1)
    record = await harness.submit_json(ONE)

    report = await _run(harness, record.id)

    assert (report.builds_started, report.built, report.failed) == (1, 0, 1)
    final, (instance,) = await harness.requests.get(record.id)
    assert final.state is R.FAILED
    assert instance.state is S.FAILED and "buildFailed" in (instance.error or "")
    assert instance.server_id in harness.panel.servers  # kept for inspection
    failed = next(e for e in await harness.events(record.id) if e.kind == events.INSTANCE_FAILED)
    assert (failed.payload["stage"], failed.payload["deleted"]) == ("build", False)


async def test_a_build_that_never_finishes_times_out(make_harness: MakeHarness) -> None:
    h = make_harness(build_timeout_s=60)
    h.panel.timing = BuildTiming(queued_s=5, build_s=10_000)
    record = await h.submit_json(ONE)

    await _run(h, record.id, step_s=10)

    final, (instance,) = await h.requests.get(record.id)
    assert final.state is R.FAILED and instance.state is S.FAILED
    assert "did not finish within 1 minutes" in (instance.error or "")


# -- deletes: the operation's stream and the request's ------------------------------------------


async def _ask(h: Harness, *, approval: bool, ttl_s: float = 3600) -> tuple[Operation, int]:
    record, instance = await _built(h)
    resolved = await h.servers.resolver.resolve("web")
    assert isinstance(resolved, ResolvedServer) and resolved.server_id == instance.server_id
    operation = await h.servers.deletes.request(
        resolved, requester="U_ASKER", approval_required=approval, ttl_s=ttl_s, channel="C1"
    )
    return operation, record.id


async def test_an_approved_delete_writes_both_streams_in_order(harness: Harness) -> None:
    operation, request_id = await _ask(harness, approval=True)
    await harness.servers.deletes.approve(operation.id, actor="U_BOSS")

    done = await harness.servers.deletes.run(operation.id)

    assert done.state is OS.DONE
    stream = await _op_events(harness, operation.id)
    assert [e.kind for e in stream] == [
        events.OPERATION_REQUESTED,
        events.OPERATION_DECIDED,
        events.OPERATION_FINISHED,
    ]
    assert all((e.operation_id, e.request_id) == (operation.id, None) for e in stream)
    assert [parse_event(e) for e in stream] == [
        OperationRequested(by="U_ASKER", approval_required=True),
        OperationDecided(state="approved", by="U_BOSS"),
        OperationFinished(state="done", result=done.result or ""),
    ]
    assert [e.id for e in stream] == sorted(e.id for e in stream)
    history = await harness.events(request_id)
    assert history[-1].kind == events.INSTANCE_DELETED
    assert history[-1].payload["already_gone"] is False
    assert history[-1].id > stream[-1].id  # written with the finish, after its event
    assert all(e.operation_id is None for e in history)


async def test_a_delete_without_approval_is_requested_then_finished(harness: Harness) -> None:
    operation, request_id = await _ask(harness, approval=False)
    assert (operation.state, operation.decided_by) == (OS.APPROVED, "U_ASKER")

    await harness.servers.deletes.run(operation.id)

    stream = await _op_events(harness, operation.id)
    assert [parse_event(e) for e in stream] == [
        OperationRequested(by="U_ASKER", approval_required=False),
        OperationFinished(state="done", result=f"server {operation.server_id} (web) deleted."),
    ]
    assert (await _kinds(harness, request_id))[-1] == events.INSTANCE_DELETED


async def test_rejected_and_expired_deletes_end_their_stream_with_the_decision(
    harness: Harness,
) -> None:
    rejected, request_id = await _ask(harness, approval=True, ttl_s=60)
    await harness.servers.deletes.reject(rejected.id, actor="U_BOSS", reason="in use")
    resolved = await harness.servers.resolver.resolve("web")
    expired = await harness.servers.deletes.request(
        resolved, requester="U_ASKER", approval_required=True, ttl_s=60
    )
    harness.clock.advance(61)
    assert [o.id for o in await harness.servers.deletes.expire_due()] == [expired.id]

    assert [parse_event(e) for e in await _op_events(harness, rejected.id)] == [
        OperationRequested(by="U_ASKER", approval_required=True),
        OperationDecided(state="rejected", by="U_BOSS"),
    ]
    assert [parse_event(e) for e in await _op_events(harness, expired.id)] == [
        OperationRequested(by="U_ASKER", approval_required=True),
        OperationDecided(state="expired"),
    ]
    assert events.INSTANCE_DELETED not in await _kinds(harness, request_id)
    assert harness.panel.count("DELETE", "^/servers/") == 0


async def test_a_delete_the_panel_refuses_finishes_failed_and_keeps_the_server(
    harness: Harness,
) -> None:
    operation, request_id = await _ask(harness, approval=False)
    harness.panel.faults.script.append(ScriptedFault("DELETE", r"^/servers/", "423", times=10_000))

    failed = await harness.servers.deletes.run(operation.id)

    assert failed.state is OS.FAILED
    assert failed.result is not None and failed.result.startswith("Not deleted: ")
    assert harness.sleeps.waits == [5.0] * 12  # the injected sleep: no real waiting
    (_, finished) = await _op_events(harness, operation.id)
    assert parse_event(finished) == OperationFinished(state="failed", result=failed.result)
    assert events.INSTANCE_DELETED not in await _kinds(harness, request_id)
    harness.panel.faults.script.clear()
    assert operation.server_id in harness.panel.servers


async def test_the_outbox_delivers_an_operation_stream_once_in_order(harness: Harness) -> None:
    operation, request_id = await _ask(harness, approval=True)
    await harness.servers.deletes.approve(operation.id, actor="U_BOSS")
    await harness.servers.deletes.run(operation.id)
    seen: list[EventRecord] = []

    async def handle(event: EventRecord) -> None:
        seen.append(event)

    consumer = OutboxConsumer(
        harness.store.uow, subscriber="slack", handler=handle, clock=harness.clock
    )
    await consumer.drain()
    await consumer.drain()

    mine = [e.kind for e in seen if e.operation_id == operation.id]
    assert mine == [
        events.OPERATION_REQUESTED,
        events.OPERATION_DECIDED,
        events.OPERATION_FINISHED,
    ]
    theirs = [e.id for e in seen if e.request_id == request_id]
    assert theirs == [e.id for e in await harness.events(request_id)]
    assert await harness.undelivered("slack") == []
