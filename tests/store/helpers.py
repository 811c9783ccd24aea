"""Shared builders for store tests."""

from __future__ import annotations

from datetime import datetime

from bot.store import InstanceRecord, NewInstance, RequestRecord, RequestState
from bot.store.sql import Database
from tests.store.conftest import NOW


async def add_request(
    db: Database,
    key: str = "cli:1",
    *,
    state: RequestState = RequestState.APPROVED,
    now: datetime = NOW,
    expires_at: datetime | None = None,
    requester: str = "U1",
) -> RequestRecord:
    """Commit one request and return it."""
    async with db.uow() as uow:
        record, _ = await uow.requests.add_or_get(
            key=key,
            requester=requester,
            source="cli",
            project_name="proj",
            payload={"servers": 1},
            plan=None,
            state=state,
            now=now,
            expires_at=expires_at,
        )
        await uow.commit()
    return record


async def add_instances(
    db: Database, request_id: int, count: int, *, now: datetime = NOW
) -> list[InstanceRecord]:
    """Commit ``count`` planned instances for the request and return them."""
    async with db.uow() as uow:
        items = [NewInstance(position=i, name=f"vm-{i}", spec={"n": i}) for i in range(count)]
        records = await uow.instances.add_many(request_id, items, now)
        await uow.commit()
    return records
