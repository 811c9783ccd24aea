"""RequestRepo on both engines: idempotent insert, compare-and-set transitions, queries."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.store import TERMINAL_REQUEST_STATES, RequestNotFoundError, RequestRecord, RequestState
from bot.store.sql import Database
from tests.store.conftest import NOW
from tests.store.helpers import add_request

PENDING = RequestState.PENDING_APPROVAL


async def _add(
    db: Database, key: str, barrier: asyncio.Barrier | None = None
) -> tuple[RequestRecord, bool]:
    async with db.uow() as uow:
        if barrier is not None:
            await barrier.wait()
        result = await uow.requests.add_or_get(
            key=key,
            requester="U1",
            source="slack",
            project_name="proj",
            payload={"a": [1, 2], "b": {"c": None}},
            plan={"servers": [{"name": "vm-0"}]},
            state=PENDING,
            now=NOW,
            expires_at=NOW + timedelta(hours=1),
            slack_channel="C1",
        )
        await uow.commit()
    return result


async def test_add_or_get_is_idempotent(db: Database) -> None:
    first, created = await _add(db, "slack-view:V1")
    again, created_again = await _add(db, "slack-view:V1")
    assert created is True
    assert created_again is False
    assert again == first
    assert first.human_id == f"VF-{first.id}"
    assert first.payload == {"a": [1, 2], "b": {"c": None}}
    assert first.plan == {"servers": [{"name": "vm-0"}]}
    assert first.state is PENDING
    assert first.slack_channel == "C1"
    assert first.cancel_requested is False
    assert first.delete_on_cancel is False
    assert first.created_at == NOW
    assert first.expires_at == NOW + timedelta(hours=1)


async def test_add_or_get_concurrent_same_key_makes_one_row(db: Database) -> None:
    barrier = asyncio.Barrier(3)
    results = await asyncio.gather(*(_add(db, "cli:same", barrier) for _ in range(3)))
    assert sorted(created for _, created in results) == [False, False, True]
    assert len({record.id for record, _ in results}) == 1
    async with db.uow() as uow:
        assert len(await uow.requests.list_recent()) == 1


async def test_transition_is_compare_and_set(db: Database) -> None:
    record, _ = await _add(db, "cli:cas")
    later = NOW + timedelta(minutes=5)
    async with db.uow() as uow:
        approved = await uow.requests.transition(
            record.id,
            expected={PENDING},
            new=RequestState.APPROVED,
            now=later,
            decided_by="U2",
            decided_at=later,
            decision_note="ok",
        )
        await uow.commit()
    assert approved is not None
    assert approved.state is RequestState.APPROVED
    assert approved.decided_by == "U2"
    assert approved.decided_at == later
    assert approved.updated_at == later
    assert approved.created_at == NOW

    async with db.uow() as uow:
        second = await uow.requests.transition(
            record.id, expected={PENDING}, new=RequestState.REJECTED, now=later, decided_by="U3"
        )
        await uow.commit()
        assert second is None
        current = await uow.requests.get(record.id)
    assert current == approved
    async with db.uow() as uow:
        missing = await uow.requests.transition(
            999_999, expected={PENDING}, new=RequestState.APPROVED, now=later
        )
    assert missing is None


async def test_concurrent_transitions_only_one_wins(db: Database) -> None:
    record, _ = await _add(db, "cli:race")

    async def decide(new: RequestState) -> RequestRecord | None:
        async with db.uow() as uow:
            result = await uow.requests.transition(record.id, expected={PENDING}, new=new, now=NOW)
            await uow.commit()
        return result

    results = await asyncio.gather(decide(RequestState.APPROVED), decide(RequestState.REJECTED))
    assert sum(r is not None for r in results) == 1


async def test_transition_rejects_unknown_fields(db: Database) -> None:
    record, _ = await _add(db, "cli:f")
    async with db.uow() as uow:
        with pytest.raises(ValueError, match="state"):
            await uow.requests.transition(
                record.id, expected={PENDING}, new=RequestState.APPROVED, now=NOW, state="x"
            )
        with pytest.raises(ValueError, match="bogus"):
            await uow.requests.update(record.id, now=NOW, bogus=1)


async def test_update_sets_fields_without_state_change(db: Database) -> None:
    record, _ = await _add(db, "cli:u")
    later = NOW + timedelta(seconds=1)
    async with db.uow() as uow:
        updated = await uow.requests.update(
            record.id,
            now=later,
            slack_ts="1700000000.000100",
            slack_notice_ts="1700000000.000200",
            plan={"x": 1},
            cancel_requested=True,
            delete_on_cancel=True,
        )
        await uow.commit()
    assert updated.state is PENDING
    assert updated.slack_ts == "1700000000.000100"
    assert updated.slack_notice_ts == "1700000000.000200"
    assert updated.plan == {"x": 1}
    assert updated.cancel_requested is True
    assert updated.delete_on_cancel is True
    assert updated.updated_at == later
    async with db.uow() as uow:
        assert await uow.requests.get(record.id) == updated
        with pytest.raises(RequestNotFoundError):
            await uow.requests.update(999_999, now=later, slack_ts="1")


async def test_queries(db: Database) -> None:
    a = await add_request(db, "cli:a", state=PENDING, expires_at=NOW - timedelta(seconds=1))
    b = await add_request(db, "cli:b", state=PENDING, expires_at=NOW + timedelta(hours=1))
    c = await add_request(db, "cli:c", state=RequestState.RUNNING, requester="U2")
    d = await add_request(db, "cli:d", state=RequestState.COMPLETED, expires_at=NOW)
    e = await add_request(db, "cli:e", state=PENDING, expires_at=NOW)
    async with db.uow() as uow:
        assert await uow.requests.get_by_key("cli:b") == b
        assert await uow.requests.get(123_456) is None
        assert await uow.requests.get_by_key("nope") is None
        recent = await uow.requests.list_recent()
        assert [r.id for r in recent] == [e.id, d.id, c.id, b.id, a.id]
        assert [r.id for r in await uow.requests.list_recent(limit=2)] == [e.id, d.id]
        assert [r.id for r in await uow.requests.list_recent(requester="U2")] == [c.id]
        terminal = await uow.requests.list_recent(states=TERMINAL_REQUEST_STATES)
        assert [r.id for r in terminal] == [d.id]
        by_state = await uow.requests.list_by_state({PENDING, RequestState.RUNNING})
        assert [r.id for r in by_state] == [a.id, b.id, c.id, e.id]
        assert [r.id for r in await uow.requests.list_expired(NOW)] == [a.id, e.id]
