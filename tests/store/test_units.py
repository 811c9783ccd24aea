"""Unit-of-work contract: commit and rollback, and how values come back (UTC, JSON copies)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from bot.provisioning.model import (
    InstanceState,
    NewInstance,
    OperationKind,
    OperationState,
    RequestState,
)
from bot.provisioning.ports import (
    Claim,
    InstanceChange,
    NewAudit,
    NewEvent,
    NewOperation,
    NewRequest,
    RequestChange,
    UnitOfWork,
)
from bot.slack.threads import SlackStore
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_instances, add_operation, add_request, undelivered


async def _add_request_uncommitted(store: StoreUnderTest, key: str) -> None:
    async with store.uow() as uow:
        await uow.requests.add_or_get(
            NewRequest(
                key=key,
                requester="U1",
                source="cli",
                project_name="p",
                payload={},
                plan=None,
                state=RequestState.PENDING_APPROVAL,
            ),
            now=NOW,
        )
        await uow.audit.add(NewAudit("U1", "submit", "x", "ok"), at=NOW)


async def test_leaving_without_commit_rolls_back(store: StoreUnderTest) -> None:
    await _add_request_uncommitted(store, "cli:gone")
    async with store.uow() as uow:
        assert await uow.requests.get_by_key("cli:gone") is None
        assert await uow.requests.list_recent() == []
        assert await uow.audit.list_recent() == []


async def test_leaving_without_commit_undoes_every_repository(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (instance,) = await add_instances(store, request.id, 1)
    operation = await add_operation(store)
    async with store.uow() as uow:
        await uow.events.add(NewEvent(request_id=request.id, kind="old", payload={}), now=NOW)
        await uow.commit()
    later = NOW + timedelta(minutes=1)
    async with store.uow() as uow:
        await uow.requests.transition(
            request.id,
            expected={RequestState.APPROVED},
            new=RequestState.RUNNING,
            now=later,
            change=RequestChange(cancel_requested=True),
        )
        await uow.instances.add_many(request.id, [NewInstance(1, "extra", {})], later)
        await uow.instances.claim(
            Claim(worker="w1", states={InstanceState.PLANNED}, now=later, lease_s=60, limit=10)
        )
        await uow.instances.update(instance.id, now=later, change=InstanceChange(server_id=9))
        await uow.events.add(NewEvent(request_id=request.id, kind="new", payload={}), now=later)
        (head,) = await uow.events.claim_next(
            subscriber="s", worker="w1", now=later, lease_s=60, limit=10
        )
        assert await uow.events.mark_delivered(head.id, subscriber="s", worker="w1", now=later)
        await uow.operations.transition(
            operation.id,
            expected={operation.state},
            new=OperationState.REJECTED,
            now=later,
        )
        await uow.operations.add(
            NewOperation(
                kind=OperationKind.DELETE,
                server_id=2,
                server_name="y",
                requester="U1",
                state=operation.state,
                params={},
            ),
            now=later,
        )
        await uow.audit.add(NewAudit("U1", "x", "t", "ok"), at=later)
    async with store.uow() as uow:
        assert await uow.requests.get(request.id) == request
        assert await uow.instances.list_for_request(request.id) == [instance]
        assert await uow.instances.claimed_server_ids() == set()
        assert [e.kind for e in await uow.events.list_for_request(request.id)] == ["old"]
        assert [o.id for o in await uow.operations.list_pending()] == [operation.id]
        assert await uow.audit.list_recent() == []
    # The claim and the delivery were undone too: the event is still there to deliver.
    assert await undelivered(store, "s") == 1
    async with store.uow() as uow:
        claimed = await uow.instances.claim(
            Claim(worker="w2", states={InstanceState.PLANNED}, now=later, lease_s=60, limit=10)
        )
    assert [i.id for i in claimed] == [instance.id]


async def test_explicit_rollback_then_commit(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=NOW)
        await uow.rollback()
        await uow.audit.add(NewAudit("b", "x", "t", "ok"), at=NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert [a.actor for a in await uow.audit.list_recent()] == ["b"]


async def test_commit_keeps_the_unit_usable(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=NOW)
        await uow.commit()
        await uow.audit.add(NewAudit("b", "x", "t", "ok"), at=NOW)
        await uow.commit()
        await uow.audit.add(NewAudit("c", "x", "t", "ok"), at=NOW)
    async with store.uow() as uow:
        assert [a.actor for a in await uow.audit.list_recent()] == ["b", "a"]


async def test_exception_in_block_rolls_back(store: StoreUnderTest) -> None:
    with pytest.raises(KeyError):
        async with store.uow() as uow:
            await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=NOW)
            raise KeyError("boom")
    async with store.uow() as uow:
        assert await uow.audit.list_recent() == []


async def test_aware_datetimes_come_back_in_utc(store: StoreUnderTest) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    record = await add_request(store, now=local, expires_at=local + timedelta(hours=1))
    async with store.uow() as uow:
        loaded = await uow.requests.get(record.id)
        logged = await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=local)
        await uow.commit()
    assert loaded is not None
    for value in (loaded.created_at, loaded.updated_at, loaded.expires_at, logged.at):
        assert value is not None
        assert value.tzinfo is UTC
    assert loaded.created_at == local
    assert loaded.created_at.hour == 12
    assert loaded.expires_at == local + timedelta(hours=1)
    # Expiry compares instants, whatever zone they were given in.
    pending = await add_request(
        store, "cli:p", state=RequestState.PENDING_APPROVAL, expires_at=local
    )
    instant = local.astimezone(UTC)
    async with store.uow() as uow:
        assert await uow.requests.list_expired(instant - timedelta(microseconds=1)) == []
        assert [r.id for r in await uow.requests.list_expired(instant)] == [pending.id]


NAIVE = datetime(2025, 1, 1)


async def _naive_audit(uow: UnitOfWork, slack: SlackStore) -> object:
    return await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=NAIVE)


async def _naive_transition(uow: UnitOfWork, slack: SlackStore) -> object:
    # Refused even though no request 1 exists (SQL binds every value first).
    return await uow.requests.transition(
        1, expected={RequestState.PENDING_APPROVAL}, new=RequestState.APPROVED, now=NAIVE
    )


async def _naive_claim(uow: UnitOfWork, slack: SlackStore) -> object:
    return await uow.instances.claim(
        Claim(worker="w", states={InstanceState.PLANNED}, now=NAIVE, lease_s=1, limit=1)
    )


async def _naive_claim_next(uow: UnitOfWork, slack: SlackStore) -> object:
    return await uow.events.claim_next(subscriber="s", worker="w", now=NAIVE, lease_s=1, limit=1)


async def _naive_expiry(uow: UnitOfWork, slack: SlackStore) -> object:
    return await uow.operations.list_expired(NAIVE)


async def _naive_slack_event(uow: UnitOfWork, slack: SlackStore) -> object:
    return await slack.remember_event("Ev1", NAIVE)


@pytest.mark.parametrize(
    "call",
    [
        _naive_audit,
        _naive_transition,
        _naive_claim,
        _naive_claim_next,
        _naive_expiry,
        _naive_slack_event,
    ],
)
async def test_naive_datetime_is_rejected(
    store: StoreUnderTest, call: Callable[[UnitOfWork, SlackStore], Awaitable[object]]
) -> None:
    async with store.uow() as uow:
        with pytest.raises((ValueError, StatementError)) as info:
            await call(uow, store.slack)
    # SQLAlchemy wraps the store's ValueError in a StatementError.
    error = info.value
    cause = error.orig if isinstance(error, StatementError) else error
    assert isinstance(cause, ValueError)
    assert "naive" in str(cause)


async def test_json_comes_back_as_json_and_is_never_shared(store: StoreUnderTest) -> None:
    payload: dict[str, object] = {"list": (1, 2), "nested": {"a": [None, True, 1.5]}}
    async with store.uow() as uow:
        record, _ = await uow.requests.add_or_get(
            NewRequest(
                key="cli:json",
                requester="U1",
                source="cli",
                project_name="p",
                payload=payload,
                plan={"servers": []},
                state=RequestState.APPROVED,
            ),
            now=NOW,
        )
        await uow.commit()
    payload["list"] = "changed by the caller after the insert"
    assert record.payload == {"list": [1, 2], "nested": {"a": [None, True, 1.5]}}
    # Changing what a read returned changes nothing stored.
    record.payload["nested"] = "changed by a reader"
    (instance,) = await add_instances(store, record.id, 1)
    instance.spec["n"] = "changed"
    instance.ipv4.append("192.0.2.1")
    async with store.uow() as uow:
        again = await uow.requests.get(record.id)
        assert again is not None
        assert again.payload == {"list": [1, 2], "nested": {"a": [None, True, 1.5]}}
        reread = await uow.instances.get(instance.id)
        assert reread is not None
        assert (reread.spec, reread.ipv4) == ({"n": 0}, [])
