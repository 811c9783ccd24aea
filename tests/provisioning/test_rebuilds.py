"""Rebuilds against the sandbox over loopback and a database: exactly once (one click, two
replicas, a crash on either side of the call), refused while a build runs, followed to built or
failed, and the root password never kept anywhere."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.provisioning import events
from bot.provisioning.errors import (
    AlreadyDecidedError,
    BuildInProgressError,
    InvalidValueError,
    OperationPendingError,
    ServerBuildingError,
)
from bot.provisioning.model import InstanceRecord, Operation, OperationState
from bot.provisioning.ports import OperationChange
from bot.provisioning.servers.model import ResolvedServer
from bot.provisioning.servers.rebuilds import RebuildParams
from bot.sandbox import ScriptedFault
from tests.provisioning.conftest import Harness

OS = OperationState


async def _built(h: Harness) -> tuple[ResolvedServer, InstanceRecord]:
    record = await h.submit_file("create.json")
    await h.run_until_done(record.id)
    resolved = await h.servers.resolver.resolve("test-server")
    assert resolved.instance is not None
    return resolved, resolved.instance


async def _asked(
    h: Harness, resolved: ResolvedServer, template: str | None = None, *, approval: bool = False
) -> Operation:
    rebuilds = h.servers.rebuilds
    params = await rebuilds.plan(resolved, template)
    return await rebuilds.request(
        resolved, params, requester="U_REQUESTER", approval_required=approval, ttl_s=3600
    )


async def _track(h: Harness, operation_id: int, *, ticks: int = 30) -> Operation:
    for _ in range(ticks):
        await h.servers.rebuilds.track_due()
        operation = await h.servers.deletes.get(operation_id)
        if operation.state in (OS.DONE, OS.FAILED):
            return operation
        h.clock.advance(2)
    raise AssertionError(f"OP-{operation_id} did not finish")


async def _intent(h: Harness, operation: Operation) -> RebuildParams:
    """What `run` commits before it sends the build: as if the process died right after."""
    server = await h.client.server(operation.server_id)
    params = RebuildParams.of(operation).model_copy(
        update={"sent_at": h.clock(), "previous_built": server.built}
    )
    async with h.uow() as uow:
        await uow.operations.transition(
            operation.id,
            expected=[OS.APPROVED],
            new=OS.RUNNING,
            now=h.clock(),
            change=OperationChange(params=params.to_json()),
        )
        await uow.commit()
    return params


def _builds(h: Harness, server_id: int) -> list[object]:
    return [c.body for c in h.panel.calls("POST", rf"^/servers/{server_id}/build$")]


async def _everything_stored(h: Harness) -> str:
    """Every event, audit entry and operation vfbot stored, as one text."""
    async with h.uow() as uow:
        audit = await uow.audit.list_recent(limit=500)
        operations = await uow.operations.list_by_states(list(OperationState))
        stored = [a.detail for a in audit] + [o.params for o in operations]
        stored += [o.result for o in operations]
        for operation in operations:
            stored += [e.payload for e in await uow.events.list_for_operation(operation.id)]
    return json.dumps(stored, default=str)


async def test_a_rebuild_keeps_the_keys_is_sent_once_and_followed_to_built(
    harness: Harness,
) -> None:
    resolved, instance = await _built(harness)
    sid = resolved.server_id
    operation = await _asked(harness, resolved, "debian-12")
    params = RebuildParams.of(operation)
    assert (params.template, params.ssh_key_ids, params.name) == (
        "Debian 12 Bookworm",
        [1],
        "test-server",
    )

    run = await harness.servers.rebuilds.run(operation.id)
    assert run.operation.state is OS.BUILDING
    assert run.password is None  # the server has an SSH key: no password is shown
    assert _builds(harness, sid)[-1] == {
        "operatingSystemId": 3,
        "name": "test-server",
        "hostname": "test-server",
        "sshKeys": [1],
    }
    with pytest.raises(AlreadyDecidedError):  # a second run (a replica, a retry) sends nothing
        await harness.servers.rebuilds.run(operation.id)

    done = await _track(harness, operation.id)
    assert done.state is OS.DONE and "rebuilt with Debian 12 Bookworm" in (done.result or "")
    assert len(_builds(harness, sid)) == 2  # the create's build and this one, nothing more
    async with harness.uow() as uow:
        stream = await uow.events.list_for_operation(operation.id)
        record = await uow.instances.get(instance.id)
    assert [e.kind for e in stream] == [
        events.OPERATION_REQUESTED,
        events.OPERATION_STARTED,
        events.OPERATION_FINISHED,
    ]
    assert stream[1].payload["detail"] == "OS install of Debian 12 Bookworm, 1 SSH key kept"
    assert record is not None and record.os_name == "Debian 12 Bookworm"


async def test_without_keys_the_password_is_returned_once_and_stored_nowhere(
    harness: Harness,
) -> None:
    resolved, _ = await _built(harness)
    harness.panel.servers[resolved.server_id].build.ssh_key_ids = []
    operation = await _asked(harness, resolved)
    params = RebuildParams.of(operation)
    assert params.ssh_key_ids == [1]  # falls back to the keys vfbot built it with
    async with harness.uow() as uow:  # a server vfbot did not make with keys: none to keep
        await uow.operations.transition(
            operation.id,
            expected=[OS.APPROVED],
            new=OS.APPROVED,
            now=harness.clock(),
            change=OperationChange(params={**operation.params, "ssh_key_ids": []}),
        )
        await uow.commit()

    run = await harness.servers.rebuilds.run(operation.id)

    assert run.password is not None
    secret = run.password.get_secret_value()
    assert secret == harness.panel.issued_secrets[-1]
    assert secret not in repr(run)
    assert "sshKeys" not in _builds(harness, resolved.server_id)[-1]
    await _track(harness, operation.id)
    assert secret not in await _everything_stored(harness)


async def test_a_rebuild_is_refused_while_a_build_runs(harness: Harness) -> None:
    record = await harness.submit_file("create.json")
    await harness.engine.run_once()  # created, not yet built
    _, instances = await harness.requests.get(record.id)
    resolved = ResolvedServer(instances[0].server_id or 0, "test-server", instances[0], record)
    with pytest.raises(ServerBuildingError):
        await harness.servers.rebuilds.plan(resolved)

    await harness.run_until_done(record.id)
    resolved = await _resolve(harness)
    await harness.client.rebuild_server(
        resolved.server_id,
        RebuildParams(template_id=1, template="x").body(),
    )
    with pytest.raises(BuildInProgressError) as caught:  # the panel is installing right now
        await harness.servers.rebuilds.plan(resolved)
    assert "queued" in str(caught.value)


async def _resolve(h: Harness) -> ResolvedServer:
    return await h.servers.resolver.resolve("test-server")


async def test_a_second_click_is_refused_with_the_open_operation(harness: Harness) -> None:
    resolved, _ = await _built(harness)
    first = await _asked(harness, resolved, approval=True)
    with pytest.raises(OperationPendingError) as caught:
        await _asked(harness, resolved)
    assert caught.value.operation_id == first.id
    assert "rebuild" in str(caught.value) and "waiting for approval" in str(caught.value)
    with pytest.raises(AlreadyDecidedError):  # not approved: nothing is sent
        await harness.servers.rebuilds.run(first.id)
    await harness.servers.deletes.approve(first.id, actor="U_APPROVER")
    assert (await harness.servers.rebuilds.run(first.id)).operation.state is OS.BUILDING


async def test_two_replicas_send_it_once(harness: Harness) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved)

    results = await asyncio.gather(
        harness.servers.rebuilds.run(operation.id),
        harness.servers.rebuilds.run(operation.id),
        return_exceptions=True,
    )

    assert sum(isinstance(r, AlreadyDecidedError) for r in results) == 1
    assert len(_builds(harness, resolved.server_id)) == 2  # the create's build + one rebuild


async def test_a_crash_before_the_call_is_settled_without_sending(harness: Harness) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved)
    server = await harness.client.server(resolved.server_id)
    params = RebuildParams.of(operation).model_copy(
        update={"sent_at": harness.clock(), "previous_built": server.built}
    )
    async with harness.uow() as uow:  # the intent committed, then the process died
        await uow.operations.transition(
            operation.id,
            expected=[OS.APPROVED],
            new=OS.RUNNING,
            now=harness.clock(),
            change=OperationChange(params=params.to_json()),
        )
        await uow.commit()
    harness.clock.advance(60)
    assert await harness.servers.rebuilds.track_due() == []  # not stale yet: the runner may live
    harness.clock.advance(600)

    (settled,) = await harness.servers.rebuilds.track_due()

    assert settled.state is OS.FAILED
    assert "stopped before the panel answered" in (settled.result or "")
    assert len(_builds(harness, resolved.server_id)) == 1  # only the create's build


async def test_a_crash_after_the_call_is_followed_not_repeated(harness: Harness) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved)
    params = await _intent(harness, operation)
    await harness.client.rebuild_server(resolved.server_id, params.body())  # then it died
    harness.clock.advance(601)

    done = await _track(harness, operation.id)

    assert done.state is OS.DONE
    assert len(_builds(harness, resolved.server_id)) == 2


async def test_a_lost_answer_is_followed_by_reading_the_server(harness: Harness) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved)
    harness.panel.faults.script.append(ScriptedFault("POST", r"/build$", "commit_then_drop"))

    run = await harness.servers.rebuilds.run(operation.id)

    assert run.unclear and run.password is None and run.operation.state is OS.BUILDING
    assert (await _track(harness, operation.id)).state is OS.DONE
    assert len(_builds(harness, resolved.server_id)) == 2


async def test_a_lost_answer_of_a_build_that_never_started_fails_after_the_grace(
    harness: Harness,
) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved)
    # The connection drops before the handler runs: the panel never saw the build.
    harness.panel.faults.script.append(ScriptedFault("POST", r"/build$", "drop"))

    run = await harness.servers.rebuilds.run(operation.id)

    assert run.unclear
    failed = await _track(harness, operation.id)
    assert failed.state is OS.FAILED and "nothing was changed" in (failed.result or "")


async def test_a_refusal_names_the_field_and_a_failed_install_is_reported(
    harness: Harness,
) -> None:
    resolved, _ = await _built(harness)
    with pytest.raises(InvalidValueError) as caught:
        await _asked(harness, resolved, "windows-11")
    assert "no OS template 'windows-11'" in str(caught.value)

    harness.panel.timing.fail_next = 1
    operation = await _asked(harness, resolved, "2")
    await harness.servers.rebuilds.run(operation.id)
    failed = await _track(harness, operation.id)
    assert failed.state is OS.FAILED and "installation failed" in (failed.result or "")

    # The panel refuses the body (a 422 names the field): not sent, nothing changed.
    operation = await _asked(harness, resolved, "2")
    async with harness.uow() as uow:
        await uow.operations.transition(
            operation.id,
            expected=[OS.APPROVED],
            new=OS.APPROVED,
            now=harness.clock(),
            change=OperationChange(params={**operation.params, "hostname": "bad_host!"}),
        )
        await uow.commit()
    refused = (await harness.servers.rebuilds.run(operation.id)).operation
    assert refused.state is OS.FAILED
    assert "hostname field format is invalid" in (refused.result or "")


async def test_an_approved_rebuild_nobody_ran_is_run_once_later(harness: Harness) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved, approval=True)
    await harness.servers.deletes.approve(operation.id, actor="U_APPROVER")
    # The approver's process died before running it.
    assert await harness.servers.rebuilds.track_due() == []
    harness.clock.advance(121)

    (started,) = await harness.servers.rebuilds.track_due()

    assert started.state is OS.BUILDING
    assert (await _track(harness, operation.id)).state is OS.DONE
    assert len(_builds(harness, resolved.server_id)) == 2


async def test_a_run_of_an_old_approval_is_not_taken_for_a_dead_one(harness: Harness) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved)  # approved now (no approval needed)
    harness.clock.advance(3600)  # ... and run an hour later: the intent is what counts
    await _intent(harness, operation)

    assert await harness.servers.rebuilds.track_due() == []  # its runner may be sending it now

    assert (await harness.servers.deletes.get(operation.id)).state is OS.RUNNING


async def test_a_panel_that_cannot_be_read_is_tried_again_next_tick(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    resolved, _ = await _built(harness)
    operation = await _asked(harness, resolved)
    await harness.servers.rebuilds.run(operation.id)
    harness.panel.faults.script.append(ScriptedFault("GET", r"^/servers/user/", "503", times=50))

    assert await harness.servers.rebuilds.track_due() == []

    assert "rebuilds: the panel could not be read" in caplog.text
    harness.panel.faults.script.clear()
    assert (await _track(harness, operation.id)).state is OS.DONE
