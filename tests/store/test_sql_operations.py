"""OperationRepo (and the InstanceRepo queries day-2 operations use) on both engines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.provisioning import ops_model
from bot.store import InstanceState, Operation, OperationKind, OperationState
from bot.store.sql import Database
from tests.store.conftest import NOW
from tests.store.helpers import add_instances, add_request

PENDING = OperationState.PENDING_APPROVAL


async def _add(
    db: Database,
    server_id: int = 101,
    *,
    state: OperationState = PENDING,
    expires_in_s: float | None = 3600,
    request_id: int | None = None,
) -> Operation:
    async with db.uow() as uow:
        operation = await uow.operations.add(
            kind=OperationKind.DELETE,
            server_id=server_id,
            server_name=f"web-{server_id}",
            requester="U1",
            state=state,
            params={"delay_min": 5, "nested": {"a": [1, None]}},
            now=NOW,
            expires_at=None if expires_in_s is None else NOW + timedelta(seconds=expires_in_s),
            request_id=request_id,
            slack_channel="C1",
        )
        await uow.commit()
    return operation


def test_ops_model_re_exports_the_store_types() -> None:
    assert ops_model.Operation is Operation
    assert ops_model.OperationState is OperationState
    assert ops_model.OperationKind is OperationKind


async def test_add_and_get_round_trip(db: Database) -> None:
    operation = await _add(db, request_id=7)

    async with db.uow() as uow:
        again = await uow.operations.get(operation.id)
        missing = await uow.operations.get(operation.id + 100)

    assert again == operation
    assert missing is None
    assert operation.human_id == f"OP-{operation.id}"
    assert operation.kind is OperationKind.DELETE
    assert operation.state is PENDING
    assert operation.params == {"delay_min": 5, "nested": {"a": [1, None]}}
    assert operation.created_at == NOW
    assert operation.expires_at == NOW + timedelta(hours=1)
    assert operation.request_id == 7
    assert operation.slack_channel == "C1"
    assert operation.decided_by is None and operation.result is None


async def test_transition_is_compare_and_set_and_checks_field_names(db: Database) -> None:
    operation = await _add(db)
    later = NOW + timedelta(minutes=1)
    async with db.uow() as uow:
        approved = await uow.operations.transition(
            operation.id,
            expected=[PENDING],
            new=OperationState.APPROVED,
            now=later,
            decided_by="U2",
            decided_at=later,
        )
        again = await uow.operations.transition(
            operation.id, expected=[PENDING], new=OperationState.REJECTED, now=later
        )
        with pytest.raises(ValueError, match="server_id"):
            await uow.operations.transition(
                operation.id, expected=[PENDING], new=OperationState.DONE, now=later, server_id=1
            )
        await uow.commit()

    assert approved is not None
    assert approved.state is OperationState.APPROVED
    assert approved.decided_by == "U2"
    assert approved.decided_at == later
    assert again is None
    async with db.uow() as uow:
        stored = await uow.operations.get(operation.id)
    assert stored == approved


async def test_update_sets_fields_without_a_state_change(db: Database) -> None:
    operation = await _add(db)
    async with db.uow() as uow:
        updated = await uow.operations.update(
            operation.id, now=NOW, slack_channel="C9", slack_ts="171.1"
        )
        missing = await uow.operations.update(operation.id + 50, now=NOW, slack_ts="1")
        with pytest.raises(ValueError, match="state"):
            await uow.operations.update(operation.id, now=NOW, state="done")
        await uow.commit()

    assert updated is not None
    assert (updated.state, updated.slack_channel, updated.slack_ts) == (PENDING, "C9", "171.1")
    assert missing is None


async def test_uncommitted_work_is_rolled_back(db: Database) -> None:
    async with db.uow() as uow:
        await uow.operations.add(
            kind=OperationKind.DELETE,
            server_id=1,
            server_name="x",
            requester="U1",
            state=PENDING,
            params={},
            now=NOW,
        )
    async with db.uow() as uow:
        assert await uow.operations.list_pending() == []


async def test_pending_expired_and_by_state_queries(db: Database) -> None:
    fresh = await _add(db, 101, expires_in_s=3600)
    stale = await _add(db, 102, expires_in_s=60)
    forever = await _add(db, 103, expires_in_s=None)
    approved = await _add(db, 101, state=OperationState.APPROVED, expires_in_s=None)
    later = NOW + timedelta(minutes=5)

    async with db.uow() as uow:
        pending_all = await uow.operations.list_pending()
        pending_now = await uow.operations.list_pending(later)
        expired = await uow.operations.list_expired(later)
        open_101 = await uow.operations.list_by_states(
            [PENDING, OperationState.APPROVED], server_id=101
        )
        approved_any = await uow.operations.list_by_states([OperationState.APPROVED])

    assert [o.id for o in pending_all] == [fresh.id, stale.id, forever.id]
    assert [o.id for o in pending_now] == [fresh.id, forever.id]
    assert [o.id for o in expired] == [stale.id]
    assert [o.id for o in open_101] == [fresh.id, approved.id]
    assert [o.id for o in approved_any] == [approved.id]


async def test_concurrent_approvals_have_one_winner(db: Database) -> None:
    operation = await _add(db)
    barrier = asyncio.Barrier(3)

    async def approve(actor: str) -> Operation | None:
        async with db.uow() as uow:
            await barrier.wait()
            changed = await uow.operations.transition(
                operation.id,
                expected=[PENDING],
                new=OperationState.APPROVED,
                now=NOW,
                decided_by=actor,
            )
            await uow.commit()
        return changed

    results = await asyncio.gather(*(approve(f"U{n}") for n in range(3)))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    async with db.uow() as uow:
        stored = await uow.operations.get(operation.id)
    assert stored is not None and stored.decided_by == winners[0].decided_by


async def test_find_by_name_and_list_with_servers(db: Database) -> None:
    first = await add_request(db, "cli:a", requester="U1")
    second = await add_request(db, "cli:b", requester="U2")
    a = await add_instances(db, first.id, 3)  # vm-0, vm-1, vm-2
    b = await add_instances(db, second.id, 2)  # vm-0, vm-1
    async with db.uow() as uow:
        for instance, server_id in ((a[0], 11), (a[1], 12), (b[0], 21), (b[1], 22)):
            await uow.instances.update(instance.id, now=NOW, server_id=server_id)
        await uow.instances.transition(
            b[1].id, expected=[InstanceState.PLANNED], new=InstanceState.DELETED, now=NOW
        )
        await uow.commit()

    async with db.uow() as uow:
        named = await uow.instances.find_by_name("VM-0")
        deleted_name = await uow.instances.find_by_name("vm-1")
        no_server = await uow.instances.find_by_name("vm-2")
        page, total = await uow.instances.list_with_servers(limit=2)
        rest, _ = await uow.instances.list_with_servers(limit=2, offset=2)
        mine, mine_total = await uow.instances.list_with_servers(requester="U1")
        of_request, _ = await uow.instances.list_with_servers(request_id=second.id)
        everything, all_total = await uow.instances.list_with_servers(include_deleted=True)

    assert [i.server_id for i in named] == [21, 11]  # newest first
    assert [i.server_id for i in deleted_name] == [12]
    assert no_server == []
    assert total == 3
    assert [i.server_id for i in page] == [21, 12]
    assert [i.server_id for i in rest] == [11]
    assert ([i.server_id for i in mine], mine_total) == ([12, 11], 2)
    assert [i.server_id for i in of_request] == [21]
    assert ([i.server_id for i in everything], all_total) == ([22, 21, 12, 11], 4)
