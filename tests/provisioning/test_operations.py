"""Day-2 operations (`Servers`) against the sandbox panel over loopback HTTP and a database."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from pydantic import SecretStr

from bot.provisioning import events
from bot.provisioning.errors import (
    AlreadyDecidedError,
    AmbiguousServerError,
    InvalidValueError,
    NotOursReason,
    OperationFailedError,
    OperationPendingError,
    ServerBuildingError,
    ServerLockedError,
    UnknownOperationError,
    UnknownServerError,
)
from bot.provisioning.model import (
    EventRecord,
    InstanceRecord,
    InstanceState,
    OperationState,
    RequestRecord,
)
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.servers import Inventory, Servers
from bot.provisioning.servers.checks import CheckStep, Outcome, check_panel
from bot.provisioning.servers.model import ResolvedServer
from bot.provisioning.transitions import Context, Moves
from bot.sandbox import FakeClock, ScriptedFault
from bot.slack.threads import SlackMessage, Thread
from bot.store.memory import MemoryStore
from bot.virtfusion import (
    CreateServerBody,
    HttpRequest,
    RawResponse,
    RetryPolicy,
    VirtFusionClient,
)
from tests.provisioning.conftest import DEFAULTS, Harness, Sleeps
from tests.virtfusion._support import sample

OS = OperationState


@pytest.fixture
def ops(harness: Harness) -> Servers:
    return harness.servers


async def _built(h: Harness, file: str = "create.json") -> tuple[RequestRecord, InstanceRecord]:
    record = await h.submit_file(file)
    await h.run_until_done(record.id)
    _, instances = await h.requests.get(record.id)
    return record, instances[0]


async def _events(h: Harness, request_id: int) -> list[EventRecord]:
    return await h.events(request_id)


async def _instance(h: Harness, instance_id: int) -> InstanceRecord:
    async with h.uow() as uow:
        instance = await uow.instances.get(instance_id)
    assert instance is not None
    return instance


async def _panel_server(h: Harness, user_id: int) -> int:
    """A server made on the panel directly (not by vfbot) for `user_id`."""
    server = await h.client.create_server(
        CreateServerBody(package_id=1, user_id=user_id, hypervisor_group_id=2)
    )
    return server.id


# -- resolving a server -------------------------------------------------------------------------


async def test_resolve_by_id_and_by_name(harness: Harness, ops: Servers) -> None:
    record, instance = await _built(harness)

    by_id = await ops.resolver.resolve(str(instance.server_id))
    by_name = await ops.resolver.resolve("  TEST-server ")

    for resolved in (by_id, by_name):
        assert resolved.server_id == instance.server_id
        assert resolved.name == "test-server"
        assert resolved.instance is not None and resolved.instance.id == instance.id
        assert resolved.request is not None and resolved.request.id == record.id
        assert resolved.label == f"server {instance.server_id} (test-server)"
        assert resolved.request_human_id == record.human_id


async def test_resolve_ambiguous_name_lists_candidates(harness: Harness, ops: Servers) -> None:
    first, a = await _built(harness)
    second, b = await _built(harness)

    with pytest.raises(AmbiguousServerError) as caught:
        await ops.resolver.resolve("test-server")

    text = str(caught.value)
    assert f"test-server (server {b.server_id}, {second.human_id})" in text
    assert f"test-server (server {a.server_id}, {first.human_id})" in text
    assert text.index(str(b.server_id)) < text.index(str(a.server_id))  # newest first
    assert "server id" in text


async def test_resolve_unknown_name_suggests_close_names(harness: Harness, ops: Servers) -> None:
    await _built(harness)

    with pytest.raises(UnknownServerError) as caught:
        await ops.resolver.resolve("test-servr")

    assert caught.value.suggestions == ["test-server"]
    assert caught.value.reason is NotOursReason.UNKNOWN_NAME
    assert "Did you mean test-server?" in str(caught.value)


async def test_resolve_refuses_missing_and_foreign_servers(harness: Harness, ops: Servers) -> None:
    foreign = await _panel_server(harness, user_id=2)

    with pytest.raises(UnknownServerError, match="no server 999") as missing:
        await ops.resolver.resolve("999")
    with pytest.raises(UnknownServerError, match="another VirtFusion user") as other:
        await ops.resolver.resolve(str(foreign))
    assert missing.value.reason is NotOursReason.NOT_ON_PANEL
    assert other.value.reason is NotOursReason.OTHER_OWNER


async def test_resolve_an_owner_server_vfbot_did_not_create(harness: Harness, ops: Servers) -> None:
    server_id = await _panel_server(harness, user_id=1)

    resolved = await ops.resolver.resolve(f"#{server_id}")

    assert resolved == ResolvedServer(server_id, "", None, None)
    assert resolved.label == f"server {server_id}"


# -- lists and status ---------------------------------------------------------------------------


async def test_list_managed_mine_all_and_by_request(harness: Harness, ops: Servers) -> None:
    first, a = await _built(harness)
    second, b = await _built(harness)

    rows, total = await ops.inventory.list_managed()
    mine, mine_total = await ops.inventory.list_managed(requester="U_REQUESTER")
    nobody, nobody_total = await ops.inventory.list_managed(requester="U_OTHER")
    of_first, _ = await ops.inventory.list_managed(request_id=first.id)
    page, _ = await ops.inventory.list_managed(limit=1, offset=1)

    assert total == 2 and mine_total == 2 and nobody_total == 0 and nobody == []
    assert [r.server_id for r in rows] == [b.server_id, a.server_id]
    assert rows == mine
    row = rows[0]
    assert row.name == "test-server"
    assert row.request_human_id == second.human_id
    assert row.requester == "U_REQUESTER"
    assert row.state == "built"
    assert row.group == "Prague"
    assert row.ipv4 == tuple(b.ipv4) and row.ipv4
    assert row.suspended is None
    assert [r.server_id for r in of_first] == [a.server_id]
    assert [r.server_id for r in page] == [a.server_id]

    enriched = await ops.inventory.enrich(rows)
    assert [r.suspended for r in enriched] == [False, False]


async def test_list_owner_servers_merges_vfbot_knowledge(harness: Harness, ops: Servers) -> None:
    record, instance = await _built(harness)
    other = await _panel_server(harness, user_id=1)
    await _panel_server(harness, user_id=2)  # someone else's: never listed

    rows, total = await ops.inventory.list_owner_servers(limit=10, offset=0)

    assert total == 2
    assert [r.server_id for r in rows] == [other, instance.server_id]
    unmanaged, managed = rows
    assert (unmanaged.request_human_id, unmanaged.requester) == (None, None)
    assert unmanaged.state == "allocated"
    assert unmanaged.name == "(unnamed)"
    assert managed.request_human_id == record.human_id
    assert managed.requester == "U_REQUESTER"
    assert managed.state == "built"
    assert managed.suspended is False


async def test_status_reads_the_panel_live_on_request(harness: Harness, ops: Servers) -> None:
    record, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")

    plain = await ops.inventory.status(resolved)
    live = await ops.inventory.status(resolved, live=True)

    # The sandbox answers `"remoteState": false`, the spec's only example: that proves nothing
    # about power, so live status shows it as unknown rather than guessing "running".
    assert (plain.live, plain.running) == (False, None)
    assert (live.live, live.running) == (True, None)
    assert harness.panel.calls("GET", rf"^/servers/{instance.server_id}$")[-1].query.get(
        "remoteState"
    ) in ("true", "1")
    assert plain.name == "test-server"
    assert plain.phase == "complete"
    assert plain.group == "Prague"
    assert plain.hypervisor
    assert plain.ipv4 == tuple(instance.ipv4)
    assert (plain.memory_mb, plain.disk_gb, plain.cpu_cores) == (1024, 25, 1)
    assert plain.suspended is False
    assert plain.request_human_id == record.human_id
    assert plain.requester == "U_REQUESTER"
    assert plain.built_at is not None


# -- delete with approval -----------------------------------------------------------------------


async def test_delete_approved_then_run(harness: Harness, ops: Servers) -> None:
    record, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")

    pending = await ops.deletes.request(
        resolved, requester="U_ASKER", approval_required=True, ttl_s=3600, channel="C1"
    )
    assert pending.state is OS.PENDING_APPROVAL
    assert pending.request_id == record.id
    assert pending.server_name == "test-server"
    assert pending.expires_at is not None
    assert [o.id for o in await ops.deletes.pending()] == [pending.id]
    with pytest.raises(AlreadyDecidedError, match="waiting for approval"):
        await ops.deletes.run(pending.id)
    assert (await ops.deletes.get(pending.id)).channel == "C1"
    # The Slack message's coordinates are the Slack adapter's, kept next to the operation.
    slack = harness.store.slack_store()
    await slack.save_message(
        Thread.OPERATION, pending.id, SlackMessage("C1", "171.5"), harness.clock()
    )
    assert await slack.message(Thread.OPERATION, pending.id) == SlackMessage("C1", "171.5")

    approved = await ops.deletes.approve(pending.id, actor="U_BOSS")
    assert (approved.state, approved.decided_by) == (OS.APPROVED, "U_BOSS")
    done = await ops.deletes.run(pending.id)

    assert done.state is OS.DONE
    assert done.result == f"server {instance.server_id} (test-server) deleted."
    assert instance.server_id not in harness.panel.servers
    call = harness.panel.calls("DELETE", rf"^/servers/{instance.server_id}$")
    assert len(call) == 1 and call[0].query.get("delay", "0") == "0"
    assert (await _instance(harness, instance.id)).state is InstanceState.DELETED
    deleted = [e for e in await _events(harness, record.id) if e.kind == events.INSTANCE_DELETED]
    assert len(deleted) == 1
    assert deleted[0].instance_id == instance.id
    assert deleted[0].payload == {
        "name": "test-server",
        "server_id": instance.server_id,
        "by": "U_ASKER",
        "delay_min": 0,
        "already_gone": False,
    }
    assert await ops.deletes.pending() == []
    with pytest.raises(AlreadyDecidedError, match="approved by U_BOSS"):
        await ops.deletes.run(pending.id)
    actions = [(a.action, a.result) for a in await ops.inventory.recent_audit(10)]
    assert actions[:3] == [
        ("server.delete", "ok"),
        ("server.delete.approve", "ok"),
        ("server.delete.request", "pending_approval"),
    ]


async def test_delete_rejected_does_nothing(harness: Harness, ops: Servers) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    pending = await ops.deletes.request(
        resolved, requester="U_ASKER", approval_required=True, ttl_s=3600
    )

    rejected = await ops.deletes.reject(pending.id, actor="U_BOSS", reason="still in use")

    assert (rejected.state, rejected.decision_note) == (OS.REJECTED, "still in use")
    with pytest.raises(AlreadyDecidedError, match="rejected by U_BOSS"):
        await ops.deletes.approve(pending.id, actor="U_OTHER")
    with pytest.raises(AlreadyDecidedError):
        await ops.deletes.run(pending.id)
    assert instance.server_id in harness.panel.servers
    assert harness.panel.count("DELETE", "^/servers/") == 0


async def test_concurrent_approvals_and_runs_have_one_winner(
    harness: Harness, ops: Servers
) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    pending = await ops.deletes.request(
        resolved, requester="U_ASKER", approval_required=True, ttl_s=3600
    )

    approvals = await asyncio.gather(
        ops.deletes.approve(pending.id, actor="U_A"),
        ops.deletes.approve(pending.id, actor="U_B"),
        return_exceptions=True,
    )
    winners = [a for a in approvals if not isinstance(a, BaseException)]
    losers = [a for a in approvals if isinstance(a, AlreadyDecidedError)]
    assert len(winners) == 1 and len(losers) == 1
    assert f"already approved by {winners[0].decided_by}" in str(losers[0])

    runs = await asyncio.gather(
        ops.deletes.run(pending.id), ops.deletes.run(pending.id), return_exceptions=True
    )
    assert sum(1 for r in runs if isinstance(r, AlreadyDecidedError)) == 1
    assert harness.panel.count("DELETE", rf"^/servers/{instance.server_id}$") == 1


async def test_pending_delete_expires(harness: Harness, ops: Servers, clock: FakeClock) -> None:
    await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    first = await ops.deletes.request(resolved, requester="U1", approval_required=True, ttl_s=60)
    clock.advance(61)

    assert await ops.deletes.pending() == []
    expired = await ops.deletes.expire_due()

    assert [(o.id, o.state) for o in expired] == [(first.id, OS.EXPIRED)]
    assert await ops.deletes.expire_due() == []
    with pytest.raises(AlreadyDecidedError, match="expired"):
        await ops.deletes.approve(first.id, actor="U_BOSS")

    # Approving after the window, before any expiry sweep, also finds it expired.
    second = await ops.deletes.request(resolved, requester="U1", approval_required=True, ttl_s=60)
    clock.advance(61)
    with pytest.raises(AlreadyDecidedError, match="expired"):
        await ops.deletes.approve(second.id, actor="U_BOSS")
    assert (await ops.deletes.get(second.id)).state is OS.EXPIRED
    assert harness.panel.count("DELETE", "^/servers/") == 0


async def test_delete_twice_second_finds_it_already_gone(harness: Harness, ops: Servers) -> None:
    record, instance = await _built(harness)
    resolved = await ops.resolver.resolve(str(instance.server_id))
    first = await ops.deletes.request(
        resolved, requester="cli:op", approval_required=False, ttl_s=0
    )
    assert (first.state, first.decided_by) == (OS.APPROVED, "cli:op")
    await ops.deletes.run(first.id)

    again = await ops.deletes.request(
        resolved, requester="cli:op", approval_required=False, ttl_s=0
    )
    done = await ops.deletes.run(again.id)

    assert done.state is OS.DONE
    assert done.result is not None and "already gone" in done.result
    deleted = [e for e in await _events(harness, record.id) if e.kind == events.INSTANCE_DELETED]
    assert len(deleted) == 1  # the instance was deleted once


async def test_delete_of_a_server_gone_behind_vfbots_back(harness: Harness, ops: Servers) -> None:
    record, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    operation = await ops.deletes.request(
        resolved, requester="U1", approval_required=False, ttl_s=0
    )
    assert instance.server_id is not None
    del harness.panel.servers[instance.server_id]

    done = await ops.deletes.run(operation.id)

    assert done.state is OS.DONE and done.result and "already gone" in done.result
    (event,) = [e for e in await _events(harness, record.id) if e.kind == events.INSTANCE_DELETED]
    assert event.payload["already_gone"] is True


async def test_delete_with_a_delay_and_duplicate_requests(harness: Harness, ops: Servers) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    with pytest.raises(InvalidValueError, match="0 and 43800"):
        await ops.deletes.request(
            resolved, requester="U1", delay_min=50_000, approval_required=False, ttl_s=0
        )
    operation = await ops.deletes.request(
        resolved, requester="U1", delay_min=5, approval_required=True, ttl_s=600
    )
    with pytest.raises(OperationPendingError, match="already waiting for approval") as caught:
        await ops.deletes.request(resolved, requester="U2", approval_required=True, ttl_s=600)
    assert caught.value.operation_id == operation.id

    await ops.deletes.approve(operation.id, actor="U_BOSS")
    done = await ops.deletes.run(operation.id)

    assert (
        done.result
        == f"server {instance.server_id} (test-server) will be deleted by the panel in 5 min."
    )
    assert harness.panel.calls("DELETE", "^/servers/")[0].query.get("delay") == "5"


async def test_delete_refused_while_the_request_still_builds(
    harness: Harness, ops: Servers
) -> None:
    record = await harness.submit_file("create.json")
    for _ in range(50):
        await harness.engine.run_once()
        _, instances = await harness.requests.get(record.id)
        if instances[0].state is InstanceState.BUILDING:
            break
        harness.clock.advance(0.5)
    assert instances[0].state is InstanceState.BUILDING
    resolved = await ops.resolver.resolve(str(instances[0].server_id))

    with pytest.raises(ServerBuildingError, match=f"{record.human_id} is still building it"):
        await ops.deletes.request(resolved, requester="U1", approval_required=False, ttl_s=0)

    assert await ops.deletes.pending() == []
    latest = (await ops.inventory.recent_audit(1))[0]
    assert (latest.action, latest.result) == ("server.delete", "refused")


async def test_unknown_operation_ids(ops: Servers) -> None:
    with pytest.raises(UnknownOperationError, match="There is no operation OP-404") as caught:
        await ops.deletes.get(404)
    assert caught.value.operation_id == 404
    with pytest.raises(UnknownOperationError):
        await ops.deletes.approve(404, actor="U1")
    with pytest.raises(UnknownOperationError):
        await ops.deletes.run(404)


# -- suspend, power ------------------------------------------------------------------------------


async def test_suspend_and_unsuspend(harness: Harness, ops: Servers, sleeps: Sleeps) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    assert instance.server_id is not None

    text = await ops.actions.suspend(resolved, actor="U1")
    assert harness.panel.servers[instance.server_id].suspended is True
    assert text == f"server {instance.server_id} (test-server) is suspended."
    await ops.actions.unsuspend(resolved, actor="U1")
    assert harness.panel.servers[instance.server_id].suspended is False
    assert sleeps.waits == []
    actions = [(a.actor, a.action, a.result) for a in await ops.inventory.recent_audit(2)]
    assert actions == [("U1", "server.unsuspend", "ok"), ("U1", "server.suspend", "ok")]


async def test_suspend_waits_out_a_lock(harness: Harness, ops: Servers, sleeps: Sleeps) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    # The client tries 4 times itself; 6 locked answers need one wait of ours.
    harness.panel.faults.script.append(ScriptedFault("POST", r"/suspend$", "423", times=6))

    await ops.actions.suspend(resolved, actor="U1")

    assert sleeps.waits == [5.0]
    assert harness.panel.servers[instance.server_id or 0].suspended is True


async def test_suspend_locked_too_long_gives_up(
    harness: Harness, ops: Servers, sleeps: Sleeps
) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    harness.panel.faults.script.append(ScriptedFault("POST", r"/unsuspend$", "423", times=10_000))

    with pytest.raises(ServerLockedError) as caught:
        await ops.actions.unsuspend(resolved, actor="U1")

    assert str(caught.value) == (
        f"server {instance.server_id} is busy with another task on the panel (HTTP 423) and "
        "stayed locked for 60 s; try again in a few minutes"
    )
    assert sleeps.waits == [5.0] * 12
    latest = (await ops.inventory.recent_audit(1))[0]
    assert (latest.action, latest.result) == ("server.unsuspend", "failed")
    harness.panel.faults.script.clear()


async def test_power_follows_the_queue_task(harness: Harness, ops: Servers, sleeps: Sleeps) -> None:
    await _built(harness)
    resolved = await ops.resolver.resolve("test-server")

    result = await ops.actions.power(resolved, "shutdown", actor="U1")

    assert (result.finished, result.failed, result.error) == (True, False, "")
    assert result.queue_id is not None and result.action == "shutdown"
    assert sleeps.waits == [2.0, 2.0]  # the sandbox finishes power jobs after 3 s
    live = await ops.inventory.status(resolved, live=True)
    assert (live.live, live.running) == (True, None)  # the panel does not prove it either way
    latest = (await ops.inventory.recent_audit(1))[0]
    assert (latest.action, latest.result) == ("server.power", "ok")
    assert latest.detail == {"action": "shutdown", "queue_id": result.queue_id}


async def test_power_failure_and_timeout_are_reported_honestly(
    harness: Harness, ops: Servers, sleeps: Sleeps
) -> None:
    await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    await ops.actions.suspend(resolved, actor="U1")

    failed = await ops.actions.power(resolved, "boot", actor="U1")
    assert (failed.finished, failed.failed) == (True, True)
    assert "suspended" in failed.error

    harness.panel.timing.power_s = 10_000
    sleeps.waits.clear()
    slow = await ops.actions.power(resolved, "poweroff", actor="U1")
    assert (slow.finished, slow.failed) == (False, False)
    assert sum(sleeps.waits) == 120
    assert (await ops.inventory.recent_audit(1))[0].result == "queued"

    with pytest.raises(InvalidValueError, match="reboot"):
        await ops.actions.power(resolved, "reboot", actor="U1")


# -- traffic, VNC, settings ---------------------------------------------------------------------


async def test_traffic_is_this_months_row(harness: Harness, ops: Servers) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")

    summary = await ops.inventory.traffic(resolved)

    server_id = instance.server_id or 0
    rx = (server_id % 97 + 1) * 123_456_789
    tx = (server_id % 89 + 1) * 23_456_789
    assert (summary.rx_bytes, summary.tx_bytes, summary.total_bytes) == (rx, tx, rx + tx)
    assert summary.limit_gb == 1000
    assert summary.month_start is not None and summary.month_start.day == 1
    assert summary.month_start <= harness.clock() <= (summary.month_end or harness.clock())
    assert summary.used_percent is not None and 0 < summary.used_percent < 100


async def test_vnc_credentials_stay_secret(
    harness: Harness, ops: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _built(harness)
    resolved = await ops.resolver.resolve("test-server")

    session = await ops.actions.vnc(resolved, enable=True, actor="U1")

    assert isinstance(session.password, SecretStr)
    password = session.password.get_secret_value()
    assert password in harness.panel.issued_secrets
    assert isinstance(session.wss_url, SecretStr)
    assert password not in repr(session)
    off = await ops.actions.vnc(resolved, enable=False, actor="U1")
    assert off.password is None
    audit = await ops.inventory.recent_audit(2)
    assert [(a.action, a.detail) for a in audit] == [
        ("server.vnc", {"vnc": "disabled"}),
        ("server.vnc", {"vnc": "enabled"}),
    ]
    secrets = [password, session.wss_url.get_secret_value()]
    for secret in secrets:
        assert secret not in caplog.text
        assert all(secret not in record.getMessage() for record in caplog.records)
        assert all(secret not in f"{a.target} {a.detail}" for a in audit)


async def test_backup_plan_owner_and_throttle(harness: Harness, ops: Servers) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    server = harness.panel.servers[instance.server_id or 0]

    assert "backup plan 2" in await ops.actions.set_backup_plan(resolved, 2, actor="U1")
    assert server.backup_plan_id == 2
    assert "no backup plan" in await ops.actions.set_backup_plan(resolved, None, actor="U1")
    assert server.backup_plan_id == 0
    with pytest.raises(OperationFailedError, match="The selected backup plan is invalid"):
        await ops.actions.set_backup_plan(resolved, 99, actor="U1")
    assert (await ops.inventory.recent_audit(1))[0].result == "refused"

    assert "throttled by 40 %" in await ops.actions.throttle(resolved, 40, actor="U1")
    assert server.cpu_throttle == 40
    calls = harness.panel.count("PUT", r"/modify/cpuThrottle$")
    with pytest.raises(InvalidValueError, match="0 to 99"):
        await ops.actions.throttle(resolved, 100, actor="U1")
    assert harness.panel.count("PUT", r"/modify/cpuThrottle$") == calls

    text = await ops.actions.change_owner(resolved, 2, actor="U1")
    assert text == (
        f"server {instance.server_id} (test-server) now belongs to user 2; vfbot no longer "
        "lists it under its owner."
    )
    assert server.owner_id == 2
    with pytest.raises(UnknownServerError, match="another VirtFusion user"):
        await ops.resolver.resolve(str(instance.server_id))
    actions = {a.action for a in await ops.inventory.recent_audit(20)}
    assert {"server.backup_plan", "server.throttle", "server.owner"} <= actions


async def test_actions_on_a_server_deleted_on_the_panel(harness: Harness, ops: Servers) -> None:
    _, instance = await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    del harness.panel.servers[instance.server_id or 0]

    with pytest.raises(UnknownServerError, match="no longer exists"):
        await ops.inventory.status(resolved)
    with pytest.raises(UnknownServerError, match="no longer exists"):
        await ops.actions.suspend(resolved, actor="U1")


# -- panel overview, check, audit ----------------------------------------------------------------


async def test_hypervisors(ops: Servers) -> None:
    rows = {row.name: row for row in await ops.inventory.hypervisors()}

    assert set(rows) == {"Prague", "Amsterdam", "Frankfurt"}
    prague = rows["Prague"]
    assert prague.hypervisors == ("prg-hv1", "prg-hv2")
    assert prague.memory_free_mb == 2 * 20480
    assert prague.ipv4_free == 100
    assert rows["Frankfurt"].maintenance == ("fra-hv1",)
    assert rows["Frankfurt"].hypervisors == ("fra-hv1 (maintenance)",)


async def test_check_passes_and_reports_the_first_failure(harness: Harness) -> None:
    steps = await check_panel(harness.client, DEFAULTS)

    assert all(step.passed for step in steps), steps
    labels = [step.label for step in steps]
    assert labels == [
        "API token accepted (GET /connect)",
        "token can read compute resources",
        "package 1 exists (VIRTFUSION_PACKAGE_ID)",
        "token can read the package's OS templates",
        "user 1 exists (VIRTFUSION_USER_ID); token can read its servers and keys",
        "hypervisor group 1 exists (VIRTFUSION_HYPERVISOR_GROUP_ID)",
        "user 1 can get package 1 servers in group 1 (dry run)",
    ]

    steps = await check_panel(harness.client, EngineDefaults(user_id=1, package_id=77))
    # The advice ("fix the id in .env") is the CLI's and Slack's wording of NOT_FOUND.
    assert steps[-1] == CheckStep("package 77 exists (VIRTFUSION_PACKAGE_ID)", Outcome.NOT_FOUND)
    assert not steps[-1].passed


async def test_recent_audit_is_newest_first(harness: Harness, ops: Servers) -> None:
    await _built(harness)
    resolved = await ops.resolver.resolve("test-server")
    await ops.actions.throttle(resolved, 10, actor="U1")
    await ops.actions.throttle(resolved, 20, actor="U2")

    entries = await ops.inventory.recent_audit(2)

    assert [(e.actor, e.detail) for e in entries] == [
        ("U2", {"percent": 20}),
        ("U1", {"percent": 10}),
    ]
    assert entries[0].target == resolved.label


async def test_a_delete_left_running_by_a_crash_is_finished_later(
    harness: Harness, ops: Servers, clock: FakeClock
) -> None:
    _, instance = await _built(harness)
    server = await ops.resolver.resolve("test-server")
    operation = await ops.deletes.request(server, requester="U1", approval_required=False, ttl_s=60)
    async with harness.uow() as uow:  # the process died right after claiming the run
        await uow.operations.transition(
            operation.id, expected=[OperationState.APPROVED], new=OperationState.RUNNING,
            now=clock(),
        )  # fmt: skip
        await uow.commit()
    assert await ops.deletes.resume_stale() == []  # too recent: it may still be running elsewhere
    clock.advance(601)
    (finished,) = await ops.deletes.resume_stale()
    assert finished.state is OperationState.DONE
    assert instance.server_id not in harness.panel.servers
    assert (await _instance(harness, instance.id)).state.value == "deleted"


async def test_a_server_given_away_is_no_longer_resolved_by_its_name(
    harness: Harness, ops: Servers
) -> None:
    _, instance = await _built(harness)
    server = await ops.resolver.resolve("test-server")
    await ops.actions.change_owner(server, 2, actor="U1")
    with pytest.raises(UnknownServerError, match="now belongs to VirtFusion user 2"):
        await ops.resolver.resolve("test-server")
    assert instance.server_id in harness.panel.servers  # nothing was done to it


# -- OS names (issue 9, item 17) ------------------------------------------------------------------


class SpecPanel(VirtFusionClient):
    """Answers from the official examples in tests/samples, by path; records what was asked."""

    def __init__(self, routes: dict[str, object]) -> None:
        super().__init__(rate_limit_per_s=1000.0, retry=RetryPolicy(max_attempts=1))
        self.routes = routes
        self.paths: list[str] = []

    async def _send(self, request: HttpRequest) -> RawResponse:
        self.paths.append(request.path)
        answer = self.routes[request.path]
        if isinstance(answer, int):
            return RawResponse(answer, {}, b"")
        return RawResponse(200, {}, json.dumps(answer).encode())


def _context(panel: VirtFusionClient, clock: FakeClock) -> Context:
    store = MemoryStore()
    return Context(panel, store.uow, clock, Moves(store.uow, clock, "test"), owner_user_id=1)


async def test_status_names_the_os_from_the_template_id_with_one_cached_list_call() -> None:
    # The spec's server 69 was built from template 49 ("Ubuntu Server 24.04 LTS ..."); it has
    # no `os.name`, so the name comes from the package's template list, read once per 10 min.
    templates = {
        "data": [
            {
                "id": 5,
                "name": "Ubuntu",
                "templates": [
                    {"id": 49, "name": "Ubuntu Server", "version": "24.04 LTS", "variant": None}
                ],
            }
        ]
    }
    panel = SpecPanel(
        {
            "/servers/69": sample("spec_server"),
            "/media/templates/fromServerPackageSpec/1": templates,
        }
    )
    clock = FakeClock()
    inventory = Inventory(_context(panel, clock), defaults=DEFAULTS)
    server = ResolvedServer(69, "Elliptical Way")

    first = await inventory.status(server)
    second = await inventory.status(server)
    assert first.os == second.os == "Ubuntu Server 24.04 LTS"
    assert panel.paths.count("/media/templates/fromServerPackageSpec/1") == 1
    clock.advance(601)
    await inventory.status(server)
    assert panel.paths.count("/media/templates/fromServerPackageSpec/1") == 2


async def test_an_os_template_the_list_lacks_shows_its_id(caplog: pytest.LogCaptureFixture) -> None:
    spec = sample("spec_server")
    panel = SpecPanel({"/servers/69": spec, "/media/templates/fromServerPackageSpec/1": 403})
    inventory = Inventory(_context(panel, FakeClock()), defaults=DEFAULTS)
    detail = await inventory.status(ResolvedServer(69, "Elliptical Way"))
    assert detail.os == "template 49"
    assert "cannot read OS template names" in caplog.text
    unbuilt = sample("create_server_201")  # `osTemplateInstallId: 0` before any build
    panel.routes["/servers/70"] = unbuilt
    assert (await inventory.status(ResolvedServer(70, "new"))).os == ""


async def test_status_on_the_sandbox_names_the_planned_template(
    harness: Harness, ops: Servers
) -> None:
    _, instance = await _built(harness)
    detail = await ops.inventory.status(await ops.resolver.resolve("test-server"))
    assert detail.os == instance.plan.os_label == "Ubuntu 22.04 Server"
