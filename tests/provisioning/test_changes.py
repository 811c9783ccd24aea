"""Rename, password, firewall, IPv4, backups and resize against the sandbox over loopback and a
database: what each sends, what vfbot records at once, how each refuses, and the audit log."""

from __future__ import annotations

import json

import pytest

from bot.provisioning.errors import (
    InvalidValueError,
    LastAddressError,
    OperationFailedError,
    OperationPendingError,
    ServerLockedError,
)
from bot.provisioning.model import AuditRecord, OperationState
from bot.provisioning.servers.model import ResolvedServer
from bot.sandbox import ScriptedFault
from tests.provisioning.conftest import Harness

OS = OperationState


async def _built(h: Harness) -> ResolvedServer:
    record = await h.submit_file("create.json")
    await h.run_until_done(record.id)
    return await h.servers.resolver.resolve("test-server")


async def _audit(h: Harness, action: str) -> list[AuditRecord]:
    async with h.uow() as uow:
        return [a for a in await uow.audit.list_recent(limit=200) if a.action == action]


async def test_rename_follows_in_vfbots_records_at_once(harness: Harness) -> None:
    resolved = await _built(harness)
    changes = harness.servers.changes

    text = await changes.rename(resolved, "db-1", actor="U_REQUESTER")

    assert "is now called db-1" in text
    assert harness.panel.servers[resolved.server_id].name == "db-1"
    renamed = await harness.servers.resolver.resolve("db-1")  # found by its new name now
    assert renamed.server_id == resolved.server_id
    rows, _ = await harness.servers.inventory.list_managed(requester="U_REQUESTER")
    assert [r.name for r in rows] == ["db-1"]
    (entry,) = await _audit(harness, "server.rename")
    assert (entry.result, entry.detail) == ("ok", {"from": "test-server", "to": "db-1"})

    for bad, words in (
        ("DB_1", "may contain only lowercase"),
        ("db-1", "already called"),
        ("x" * 64, "at most 63"),
    ):
        with pytest.raises(InvalidValueError, match=words):
            await changes.rename(renamed, bad, actor="U_REQUESTER")
    other = await harness.submit_file("create.json")
    await harness.run_until_done(other.id)
    second = (await harness.servers.inventory.list_managed(request_id=other.id))[0][0]
    second_resolved = await harness.servers.resolver.resolve(str(second.server_id))
    with pytest.raises(InvalidValueError, match="already manages a server called db-1"):
        await changes.rename(second_resolved, "db-1", actor="U_REQUESTER")


async def test_password_reset_never_mails_and_never_keeps_the_password(
    harness: Harness,
) -> None:
    resolved = await _built(harness)
    harness.panel.timing.power_s = 4

    result = await harness.servers.changes.reset_password(resolved, actor="U_REQUESTER")

    secret = result.password.get_secret_value()
    assert secret == harness.panel.issued_secrets[-1]
    assert result.set and result.task.queue_id is not None
    assert harness.panel.password_mails == []
    (call,) = harness.panel.calls("POST", r"/resetPassword$")
    assert call.body == {"user": "root", "sendMail": False}
    (entry,) = await _audit(harness, "server.password")
    assert entry.result == "ok" and secret not in json.dumps(entry.detail)
    assert secret not in repr(result)

    with pytest.raises(InvalidValueError):
        await harness.servers.changes.reset_password(resolved, actor="U", user="admin")
    # An answer lost after the panel reset it: the password is unknown, vfbot says so.
    harness.panel.faults.script.append(
        ScriptedFault("POST", r"/resetPassword$", "commit_then_drop")
    )
    with pytest.raises(OperationFailedError, match="reset it again"):
        await harness.servers.changes.reset_password(resolved, actor="U_REQUESTER")
    assert harness.panel.count("POST", r"/resetPassword$") == 2  # never repeated by itself


async def test_firewall_show_switch_and_rulesets(harness: Harness) -> None:
    resolved = await _built(harness)
    changes = harness.servers.changes

    assert (await changes.firewall(resolved)).enabled is False
    assert "is on" in await changes.set_firewall(resolved, enabled=True, actor="U")
    text = await changes.apply_rulesets(resolved, [2, 1, 2], actor="U")
    assert "ruleset(s) 2, 1" in text
    view = await changes.firewall(resolved)
    assert view.enabled and len(view.rules) == 3
    (rules_call,) = harness.panel.calls("POST", r"/firewall/primary/rules$")
    assert (rules_call.query, rules_call.body) == ({"sync": "true"}, {"rulesets": [2, 1]})

    with pytest.raises(OperationFailedError, match="Invalid or disabled firewall ruleset"):
        await changes.apply_rulesets(resolved, [9], actor="U")
    with pytest.raises(InvalidValueError):
        await changes.apply_rulesets(resolved, [0], actor="U")
    assert "removed" in await changes.apply_rulesets(resolved, [], actor="U")
    results = [a.result for a in await _audit(harness, "server.firewall")]
    assert results == ["ok", "refused", "ok", "ok"]  # newest first


async def test_addresses_are_added_removed_and_recorded(harness: Harness) -> None:
    resolved = await _built(harness)
    changes = harness.servers.changes
    (first,) = harness.panel.servers[resolved.server_id].ipv4

    added = await changes.add_ipv4(resolved, 2, actor="U")
    assert len(added.added) == 2 and added.addresses == (first.address, *added.added)
    rows, _ = await harness.servers.inventory.list_managed(requester="U_REQUESTER")
    assert rows[0].ipv4 == added.addresses  # vfbot's record follows at once

    removed = await changes.remove_ipv4(resolved, added.added[0], actor="U")
    assert removed.removed == (added.added[0],)
    await changes.remove_ipv4(resolved, added.added[1], actor="U")
    with pytest.raises(LastAddressError):
        await changes.remove_ipv4(resolved, first.address, actor="U")
    assert harness.panel.servers[resolved.server_id].ipv4  # nothing was removed
    last = await changes.remove_ipv4(resolved, first.address, actor="U", last_confirmed=True)
    assert last.addresses == ()

    with pytest.raises(InvalidValueError, match=r"has no address 192\.0\.2\.250"):
        await changes.remove_ipv4(resolved, "192.0.2.250", actor="U")
    with pytest.raises(InvalidValueError, match="not an IPv4"):
        await changes.remove_ipv4(resolved, "2001:db8::1", actor="U")
    with pytest.raises(InvalidValueError, match="between 1 and 16"):
        await changes.add_ipv4(resolved, 17, actor="U")
    calls = harness.panel.calls("DELETE", r"/ipv4$")
    assert calls[0].body == {"interface": "primary", "ip": [added.added[0]]}


async def test_backups_are_listed_newest_first_with_the_plan(harness: Harness) -> None:
    resolved = await _built(harness)
    server = harness.panel.servers[resolved.server_id]
    server.backup_plan_id = 1
    older = harness.panel.add_backup(server)
    harness.clock.advance(3600)
    newer = harness.panel.add_backup(server, complete=False)

    listing = await harness.servers.changes.backups(resolved)

    assert listing.plan == "Daily"
    assert [(b.id, b.complete, b.in_progress) for b in listing.backups] == [
        (newer.id, False, True),
        (older.id, True, False),
    ]


async def test_a_locked_server_is_waited_out_as_today(harness: Harness) -> None:
    resolved = await _built(harness)
    harness.panel.faults.script.append(ScriptedFault("PUT", r"/modify/name$", "423", times=2))
    await harness.servers.changes.rename(resolved, "db-1", actor="U")
    assert harness.panel.servers[resolved.server_id].name == "db-1"
    harness.panel.faults.script.append(
        ScriptedFault("POST", r"/firewall/primary/enable$", "423", times=500)
    )
    renamed = await harness.servers.resolver.resolve("db-1")
    with pytest.raises(ServerLockedError):
        await harness.servers.changes.set_firewall(renamed, enabled=True, actor="U")


# -- resize ---------------------------------------------------------------------------------------


async def test_memory_and_cpu_resize_says_a_restart_applies_it(harness: Harness) -> None:
    resolved = await _built(harness)
    resizes = harness.servers.resizes
    plan = await resizes.plan(resolved, memory_mb=2048, cpu_cores=2)
    assert plan.describe() == "memory 1,024 → 2,048 MB, CPU 1 → 2 cores"
    operation = await resizes.request(
        plan, requester="U_REQUESTER", approval_required=False, ttl_s=60
    )

    done = await resizes.run(operation.id)

    assert done.state is OS.DONE
    assert "A restart applies it (waiting on the panel: Memory (2048 MB), CPU cores (2))" in (
        done.result or ""
    )
    sid = resolved.server_id
    assert [c.body for c in harness.panel.calls("PUT", rf"^/servers/{sid}/modify/")] == [
        {"memory": 2048},
        {"cores": 2},
    ]
    detail = await harness.servers.inventory.status(resolved)
    assert (detail.memory_mb, detail.cpu_cores) == (2048, 2)  # /vf status shows it at once


async def test_a_package_change_sends_every_flag_and_shows_what_it_left(
    harness: Harness,
) -> None:
    resolved = await _built(harness)
    resizes = harness.servers.resizes
    plan = await resizes.plan(resolved, package_id=2)
    assert plan.describe() == (
        "package Medium (id 2): memory 1,024 → 4,096 MB, CPU 1 → 2 cores, disk 25 → 80 GB"
    )
    operation = await resizes.request(plan, requester="U", approval_required=False, ttl_s=60)
    done = await resizes.run(operation.id)
    assert done.state is OS.DONE and "Not changed:" in (done.result or "")
    (call,) = harness.panel.calls("PUT", r"/package/2$")
    assert isinstance(call.body, dict) and len(call.body) == 11
    assert call.body["backupPlan"] is False and call.body["memory"] is True


async def test_resize_refusals(harness: Harness) -> None:
    resolved = await _built(harness)
    resizes = harness.servers.resizes
    for kwargs, words in (
        ({}, "Say what to change"),
        ({"memory_mb": 100}, "memory must be between 256"),
        ({"cpu_cores": 99}, "cpu must be between 1 and 64"),
        ({"memory_mb": 1024, "cpu_cores": 1}, "nothing to change"),
        ({"package_id": 99}, "no package 99"),
        ({"package_id": 2, "memory_mb": 2048}, "not both"),
    ):
        with pytest.raises(InvalidValueError, match=words):
            await resizes.plan(resolved, **kwargs)  # type: ignore[arg-type]  # test table

    # The panel's own refusal names the field, and nothing else is sent after it.
    server = harness.panel.servers[resolved.server_id]
    harness.panel.hypervisors[server.hypervisor_id].max_memory_mb = 1500
    plan = await resizes.plan(resolved, memory_mb=4096, cpu_cores=2)
    pending = await resizes.request(plan, requester="U", approval_required=True, ttl_s=60)
    with pytest.raises(OperationPendingError):
        await resizes.request(plan, requester="U", approval_required=False, ttl_s=60)
    await harness.servers.deletes.approve(pending.id, actor="U_APPROVER")
    failed = await resizes.run(pending.id)
    assert failed.state is OS.FAILED
    assert "does not have 4096 MB of memory free" in (failed.result or "")
    assert harness.panel.count("PUT", r"/modify/cpuCores$") == 0


async def test_a_resize_left_running_by_a_dead_process_is_run_again(harness: Harness) -> None:
    resolved = await _built(harness)
    resizes = harness.servers.resizes
    plan = await resizes.plan(resolved, memory_mb=2048)
    operation = await resizes.request(plan, requester="U", approval_required=False, ttl_s=60)
    async with harness.uow() as uow:
        await uow.operations.transition(
            operation.id, expected=[OS.APPROVED], new=OS.RUNNING, now=harness.clock()
        )
        await uow.commit()
    assert await resizes.resume_stale() == []
    harness.clock.advance(601)
    (done,) = await resizes.resume_stale()
    assert done.state is OS.DONE
    assert harness.panel.servers[resolved.server_id].memory_mb == 2048
