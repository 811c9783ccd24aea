"""OperationRepo contract: add and read back, compare-and-set decisions, pending and expired."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.provisioning.model import Operation, OperationKind, OperationState
from bot.provisioning.ports import NewOperation, OperationChange
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_operation

PENDING = OperationState.PENDING_APPROVAL


async def test_add_and_get_round_trip(store: StoreUnderTest) -> None:
    operation = await add_operation(store, request_id=7)

    async with store.uow() as uow:
        again = await uow.operations.get(operation.id)
        missing = await uow.operations.get(operation.id + 100)

    assert again == operation
    assert missing is None
    assert operation.human_id == f"OP-{operation.id}"
    assert operation.target == "server 101 (web-101)"
    assert operation.delay_min == 5
    assert operation.kind is OperationKind.DELETE
    assert operation.state is PENDING
    assert operation.params == {"delay_min": 5, "nested": {"a": [1, None]}}
    assert operation.created_at == NOW
    assert operation.expires_at == NOW + timedelta(hours=1)
    assert operation.request_id == 7
    assert operation.channel == "C1"
    assert operation.decided_by is None and operation.result is None


async def test_add_may_record_the_decision(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        operation = await uow.operations.add(
            NewOperation(
                kind=OperationKind.DELETE,
                server_id=5,
                server_name="",
                requester="U1",
                state=OperationState.APPROVED,
                params={},
                decided_by="U1",
                decided_at=NOW,
                decision_note="self-approved",
            ),
            now=NOW,
        )
        await uow.commit()
    assert (operation.decided_by, operation.decided_at) == ("U1", NOW)
    assert operation.decision_note == "self-approved"
    assert operation.target == "server 5"
    assert (operation.channel, operation.request_id, operation.expires_at) == (None, None, None)
    async with store.uow() as uow:
        assert await uow.operations.get(operation.id) == operation


async def test_transition_is_compare_and_set(store: StoreUnderTest) -> None:
    operation = await add_operation(store)
    later = NOW + timedelta(minutes=1)
    async with store.uow() as uow:
        approved = await uow.operations.transition(
            operation.id,
            expected=[PENDING],
            new=OperationState.APPROVED,
            now=later,
            change=OperationChange(decided_by="U2", decided_at=later),
        )
        again = await uow.operations.transition(
            operation.id, expected=[PENDING], new=OperationState.REJECTED, now=later
        )
        missing = await uow.operations.transition(
            operation.id + 50, expected=[PENDING], new=OperationState.REJECTED, now=later
        )
        await uow.commit()

    assert approved is not None
    assert approved.state is OperationState.APPROVED
    assert approved.decided_by == "U2"
    assert approved.decided_at == later
    assert approved.params == operation.params
    assert approved.channel == "C1"
    assert again is None
    assert missing is None
    async with store.uow() as uow:
        stored = await uow.operations.get(operation.id)
        assert stored == approved
        done = await uow.operations.transition(
            operation.id,
            expected=[OperationState.APPROVED],
            new=OperationState.DONE,
            now=later,
            change=OperationChange(result="deleted"),
        )
        await uow.commit()
    assert done is not None
    assert (done.state, done.result, done.decided_by) == (OperationState.DONE, "deleted", "U2")


async def test_uncommitted_work_is_rolled_back(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        await uow.operations.add(
            NewOperation(
                kind=OperationKind.DELETE,
                server_id=1,
                server_name="x",
                requester="U1",
                state=PENDING,
                params={},
            ),
            now=NOW,
        )
    async with store.uow() as uow:
        assert await uow.operations.list_pending() == []


async def test_pending_expired_and_by_state_queries(store: StoreUnderTest) -> None:
    fresh = await add_operation(store, 101, expires_in_s=3600)
    stale = await add_operation(store, 102, expires_in_s=60)
    forever = await add_operation(store, 103, expires_in_s=None)
    approved = await add_operation(store, 101, state=OperationState.APPROVED, expires_in_s=None)
    later = NOW + timedelta(minutes=5)

    async with store.uow() as uow:
        pending_all = await uow.operations.list_pending()
        pending_now = await uow.operations.list_pending(later)
        expired = await uow.operations.list_expired(later)
        not_yet = await uow.operations.list_expired(NOW + timedelta(seconds=59))
        open_101 = await uow.operations.list_by_states(
            [PENDING, OperationState.APPROVED], server_id=101
        )
        approved_any = await uow.operations.list_by_states([OperationState.APPROVED])

    assert [o.id for o in pending_all] == [fresh.id, stale.id, forever.id]
    assert [o.id for o in pending_now] == [fresh.id, forever.id]
    assert [o.id for o in expired] == [stale.id]
    assert not_yet == []
    assert [o.id for o in open_101] == [fresh.id, approved.id]
    assert [o.id for o in approved_any] == [approved.id]


async def test_concurrent_approvals_have_one_winner(store: StoreUnderTest) -> None:
    operation = await add_operation(store)
    barrier = asyncio.Barrier(3)

    async def approve(actor: str) -> Operation | None:
        async with store.uow() as uow:
            await barrier.wait()
            changed = await uow.operations.transition(
                operation.id,
                expected=[PENDING],
                new=OperationState.APPROVED,
                now=NOW,
                change=OperationChange(decided_by=actor),
            )
            await uow.commit()
        return changed

    results = await asyncio.gather(*(approve(f"U{n}") for n in range(3)))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    async with store.uow() as uow:
        stored = await uow.operations.get(operation.id)
    assert stored is not None and stored.decided_by == winners[0].decided_by


async def test_a_transition_may_replace_the_params(store: StoreUnderTest) -> None:
    operation = await add_operation(store)
    params = {"template_id": 3, "sent_at": "2025-01-09T13:30:00+00:00", "keys": [1, 2]}
    async with store.uow() as uow:
        running = await uow.operations.transition(
            operation.id,
            expected=[PENDING],
            new=OperationState.BUILDING,
            now=NOW,
            change=OperationChange(params=params),
        )
        await uow.commit()
    assert running is not None and running.params == params
    params["keys"].append(3)  # type: ignore[attr-defined]  # the stored copy is not shared
    async with store.uow() as uow:
        again = await uow.operations.get(operation.id)
        building = await uow.operations.list_by_states([OperationState.BUILDING])
    assert again is not None and again.params["keys"] == [1, 2]
    assert again.kind is OperationKind.DELETE and again.state is OperationState.BUILDING
    assert [o.id for o in building] == [operation.id]
