"""RequestRepo contract: idempotent insert, compare-and-set transitions, queries."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.provisioning.model import RequestRecord, RequestState
from bot.provisioning.ports import NewRequest, RequestChange
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_request

PENDING = RequestState.PENDING_APPROVAL


async def _add(
    store: StoreUnderTest, key: str, barrier: asyncio.Barrier | None = None
) -> tuple[RequestRecord, bool]:
    async with store.uow() as uow:
        if barrier is not None:
            await barrier.wait()
        result = await uow.requests.add_or_get(
            NewRequest(
                key=key,
                requester="U1",
                source="slack",
                project_name="proj",
                payload={"a": [1, 2], "b": {"c": None}},
                plan={"servers": [{"name": "vm-0"}]},
                state=PENDING,
                expires_at=NOW + timedelta(hours=1),
                channel="C1",
            ),
            now=NOW,
        )
        await uow.commit()
    return result


async def test_add_or_get_is_idempotent(store: StoreUnderTest) -> None:
    first, created = await _add(store, "slack-view:V1")
    again, created_again = await _add(store, "slack-view:V1")
    assert created is True
    assert created_again is False
    assert again == first
    assert first.human_id == f"VF-{first.id}"
    assert first.payload == {"a": [1, 2], "b": {"c": None}}
    assert first.plan == {"servers": [{"name": "vm-0"}]}
    assert first.state is PENDING
    assert first.channel == "C1"
    assert first.cancel_requested is False
    assert first.delete_on_cancel is False
    assert first.created_at == NOW
    assert first.expires_at == NOW + timedelta(hours=1)
    assert (first.decided_by, first.decided_at, first.decision_note) == (None, None, None)


async def test_add_or_get_concurrent_same_key_makes_one_row(store: StoreUnderTest) -> None:
    barrier = asyncio.Barrier(3)
    results = await asyncio.gather(*(_add(store, "cli:same", barrier) for _ in range(3)))
    assert sorted(created for _, created in results) == [False, False, True]
    assert len({record.id for record, _ in results}) == 1
    async with store.uow() as uow:
        assert len(await uow.requests.list_recent()) == 1


async def test_transition_is_compare_and_set(store: StoreUnderTest) -> None:
    record, _ = await _add(store, "cli:cas")
    later = NOW + timedelta(minutes=5)
    async with store.uow() as uow:
        approved = await uow.requests.transition(
            record.id,
            expected={PENDING},
            new=RequestState.APPROVED,
            now=later,
            change=RequestChange(decided_by="U2", decided_at=later, decision_note="ok"),
        )
        await uow.commit()
    assert approved is not None
    assert approved.state is RequestState.APPROVED
    assert approved.decided_by == "U2"
    assert approved.decided_at == later
    assert approved.decision_note == "ok"
    assert approved.updated_at == later
    assert approved.created_at == NOW

    async with store.uow() as uow:
        second = await uow.requests.transition(
            record.id,
            expected={PENDING},
            new=RequestState.REJECTED,
            now=later,
            change=RequestChange(decided_by="U3"),
        )
        await uow.commit()
        assert second is None
        current = await uow.requests.get(record.id)
    assert current == approved
    async with store.uow() as uow:
        missing = await uow.requests.transition(
            999_999, expected={PENDING}, new=RequestState.APPROVED, now=later
        )
    assert missing is None


async def test_concurrent_transitions_only_one_wins(store: StoreUnderTest) -> None:
    record, _ = await _add(store, "cli:race")

    async def decide(new: RequestState) -> RequestRecord | None:
        async with store.uow() as uow:
            result = await uow.requests.transition(record.id, expected={PENDING}, new=new, now=NOW)
            await uow.commit()
        return result

    results = await asyncio.gather(decide(RequestState.APPROVED), decide(RequestState.REJECTED))
    assert sum(r is not None for r in results) == 1


async def test_change_sets_only_its_fields_and_keeps_the_rest(store: StoreUnderTest) -> None:
    # What `requests.update` used to do for the cancel flags is now a same-state transition.
    record, _ = await _add(store, "cli:u")
    later = NOW + timedelta(seconds=1)
    async with store.uow() as uow:
        decided = await uow.requests.transition(
            record.id,
            expected={PENDING},
            new=PENDING,
            now=NOW,
            change=RequestChange(decided_by="U2", decision_note="why"),
        )
        assert decided is not None
        flagged = await uow.requests.transition(
            record.id,
            expected={PENDING},
            new=PENDING,
            now=later,
            change=RequestChange(cancel_requested=True, delete_on_cancel=True, decision_note=None),
        )
        await uow.commit()
    assert flagged is not None
    assert flagged.state is PENDING
    assert flagged.cancel_requested is True
    assert flagged.delete_on_cancel is True
    assert flagged.decided_by == "U2"  # left UNSET: kept
    assert flagged.decision_note is None  # set to None: cleared
    assert flagged.payload == record.payload
    assert flagged.plan == record.plan
    assert flagged.updated_at == later
    async with store.uow() as uow:
        assert await uow.requests.get(record.id) == flagged


async def test_queries(store: StoreUnderTest) -> None:
    a = await add_request(store, "cli:a", state=PENDING, expires_at=NOW - timedelta(seconds=1))
    b = await add_request(store, "cli:b", state=PENDING, expires_at=NOW + timedelta(hours=1))
    c = await add_request(store, "cli:c", state=RequestState.RUNNING, requester="U2")
    d = await add_request(store, "cli:d", state=RequestState.COMPLETED, expires_at=NOW)
    e = await add_request(store, "cli:e", state=PENDING, expires_at=NOW)
    async with store.uow() as uow:
        assert await uow.requests.get_by_key("cli:b") == b
        assert await uow.requests.get(123_456) is None
        assert await uow.requests.get_by_key("nope") is None
        recent = await uow.requests.list_recent()
        assert [r.id for r in recent] == [e.id, d.id, c.id, b.id, a.id]
        assert [r.id for r in await uow.requests.list_recent(limit=2)] == [e.id, d.id]
        assert await uow.requests.list_recent(limit=0) == []
        assert [r.id for r in await uow.requests.list_recent(requester="U2")] == [c.id]
        assert [r.id for r in await uow.requests.list_recent(requester="U1", limit=2)] == [
            e.id,
            d.id,
        ]
        by_state = await uow.requests.list_by_state({PENDING, RequestState.RUNNING})
        assert [r.id for r in by_state] == [a.id, b.id, c.id, e.id]
        assert await uow.requests.list_by_state(set()) == []
        assert [r.id for r in await uow.requests.list_expired(NOW)] == [a.id, e.id]


async def test_get_many_returns_the_existing_ones_by_id(store: StoreUnderTest) -> None:
    a = await add_request(store, "cli:a")
    b = await add_request(store, "cli:b", state=PENDING)
    async with store.uow() as uow:
        found = await uow.requests.get_many([b.id, a.id, 999_999, a.id])
        assert found == {a.id: a, b.id: b}
        assert await uow.requests.get_many([]) == {}
        assert await uow.requests.get_many({999_999}) == {}
