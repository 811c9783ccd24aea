"""Shared builders for the store contract tests (each commits its own unit of work)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.provisioning.model import (
    InstanceRecord,
    NewInstance,
    Operation,
    OperationKind,
    OperationState,
    RequestRecord,
    RequestState,
)
from bot.provisioning.ports import InstanceChange, NewOperation, NewRequest
from tests.store.conftest import NOW, StoreUnderTest

__all__ = ["add_instances", "add_operation", "add_request", "set_server", "undelivered"]


async def add_request(
    store: StoreUnderTest,
    key: str = "cli:1",
    *,
    state: RequestState = RequestState.APPROVED,
    now: datetime = NOW,
    expires_at: datetime | None = None,
    requester: str = "U1",
) -> RequestRecord:
    """Commit one request and return it."""
    async with store.uow() as uow:
        record, _ = await uow.requests.add_or_get(
            NewRequest(
                key=key,
                requester=requester,
                source="cli",
                project_name="proj",
                payload={"servers": 1},
                plan=None,
                state=state,
                expires_at=expires_at,
            ),
            now=now,
        )
        await uow.commit()
    return record


async def add_instances(
    store: StoreUnderTest, request_id: int, count: int, *, now: datetime = NOW
) -> list[InstanceRecord]:
    """Commit ``count`` planned instances (``vm-0``…) for the request and return them."""
    async with store.uow() as uow:
        items = [NewInstance(position=i, name=f"vm-{i}", spec={"n": i}) for i in range(count)]
        records = await uow.instances.add_many(request_id, items, now)
        await uow.commit()
    return records


async def set_server(store: StoreUnderTest, instance_id: int, server_id: int) -> InstanceRecord:
    """Commit ``server_id`` on the instance and return it."""
    async with store.uow() as uow:
        record = await uow.instances.update(
            instance_id, now=NOW, change=InstanceChange(server_id=server_id)
        )
        await uow.commit()
    assert record is not None
    return record


async def add_operation(
    store: StoreUnderTest,
    server_id: int = 101,
    *,
    state: OperationState = OperationState.PENDING_APPROVAL,
    expires_in_s: float | None = 3600,
    request_id: int | None = None,
) -> Operation:
    """Commit one delete operation on ``server_id`` and return it."""
    async with store.uow() as uow:
        operation = await uow.operations.add(
            NewOperation(
                kind=OperationKind.DELETE,
                server_id=server_id,
                server_name=f"web-{server_id}",
                requester="U1",
                state=state,
                params={"delay_min": 5, "nested": {"a": [1, None]}},
                expires_at=None if expires_in_s is None else NOW + timedelta(seconds=expires_in_s),
                request_id=request_id,
                channel="C1",
            ),
            now=NOW,
        )
        await uow.commit()
    return operation


async def undelivered(store: StoreUnderTest, subscriber: str) -> int:
    """How many events ``subscriber`` has not had delivered yet (any lease held or not).

    Drains the outbox in one unit, far in the future so every lease has run out, then leaves
    the unit without committing: nothing changes. (The store no longer offers a count.)
    """
    later = NOW + timedelta(days=365)
    count = 0
    async with store.uow() as uow:
        while batch := await uow.events.claim_next(
            subscriber=subscriber, worker="counter", now=later, lease_s=60, limit=100
        ):
            for event in batch:
                assert await uow.events.mark_delivered(
                    event.id, subscriber=subscriber, worker="counter", now=later
                )
            count += len(batch)
    return count
