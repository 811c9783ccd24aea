"""EventRepo (outbox) on both engines: per-request order, leases, exactly-once delivery."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.store import EventRecord
from bot.store.sql import Database
from tests.store.conftest import NOW
from tests.store.helpers import add_instances, add_request

SUB = "slack"


async def _claim(
    db: Database, worker: str, *, at_s: float = 0, lease_s: float = 60, limit: int = 10
) -> list[EventRecord]:
    async with db.uow() as uow:
        events = await uow.events.claim_next(
            subscriber=SUB,
            worker=worker,
            now=NOW + timedelta(seconds=at_s),
            lease_s=lease_s,
            limit=limit,
        )
        await uow.commit()
    return events


async def _deliver(db: Database, event_id: int, worker: str, *, subscriber: str = SUB) -> bool:
    async with db.uow() as uow:
        ok = await uow.events.mark_delivered(
            event_id, subscriber=subscriber, worker=worker, now=NOW
        )
        await uow.commit()
    return ok


async def _add_events(db: Database, request_id: int, kinds: list[str]) -> list[EventRecord]:
    async with db.uow() as uow:
        added = [
            await uow.events.add(request_id=request_id, kind=k, payload={"k": k}, now=NOW)
            for k in kinds
        ]
        await uow.commit()
    return added


async def test_add_and_list(db: Database) -> None:
    request = await add_request(db)
    (instance,) = await add_instances(db, request.id, 1)
    async with db.uow() as uow:
        first = await uow.events.add(
            request_id=request.id, instance_id=instance.id, kind="created", payload={}, now=NOW
        )
        second = await uow.events.add(
            request_id=request.id, kind="done", payload={"n": [1]}, now=NOW
        )
        await uow.commit()
    assert first.instance_id == instance.id
    assert first.created_at == NOW
    assert second.id > first.id
    assert second.payload == {"n": [1]}
    async with db.uow() as uow:
        assert await uow.events.list_for_request(request.id) == [first, second]
        assert await uow.events.undelivered_count(SUB) == 2
        assert await uow.events.undelivered_count("other") == 2


async def test_one_head_per_request_in_order(db: Database) -> None:
    r1 = await add_request(db, "cli:1")
    r2 = await add_request(db, "cli:2")
    e1, e2 = await _add_events(db, r1.id, ["a", "b"])
    (e3,) = await _add_events(db, r2.id, ["c"])
    assert [e.id for e in await _claim(db, "w1")] == [e1.id, e3.id]
    # Both heads are leased: nothing for anyone until one is delivered.
    assert await _claim(db, "w2") == []
    assert await _deliver(db, e1.id, "w1") is True
    assert [e.id for e in await _claim(db, "w2")] == [e2.id]
    async with db.uow() as uow:
        assert await uow.events.undelivered_count(SUB) == 2


async def test_mark_delivered_requires_the_lease(db: Database) -> None:
    request = await add_request(db)
    (e1,) = await _add_events(db, request.id, ["a"])
    assert await _deliver(db, e1.id, "w1") is False  # never claimed
    await _claim(db, "w1")
    assert await _deliver(db, e1.id, "w2") is False
    assert await _deliver(db, e1.id, "w1", subscriber="other") is False
    assert await _deliver(db, e1.id, "w1") is True
    assert await _deliver(db, e1.id, "w1") is False  # already delivered
    assert await _claim(db, "w1") == []


async def test_expired_lease_moves_to_another_worker(db: Database) -> None:
    request = await add_request(db)
    (e1, _) = await _add_events(db, request.id, ["a", "b"])
    assert [e.id for e in await _claim(db, "w1", lease_s=30)] == [e1.id]
    assert await _claim(db, "w2", at_s=29) == []
    assert [e.id for e in await _claim(db, "w2", at_s=30)] == [e1.id]
    assert await _deliver(db, e1.id, "w1") is False
    assert await _deliver(db, e1.id, "w2") is True


async def test_subscribers_are_independent(db: Database) -> None:
    request = await add_request(db)
    (e1,) = await _add_events(db, request.id, ["a"])
    await _claim(db, "w1")
    await _deliver(db, e1.id, "w1")
    async with db.uow() as uow:
        other = await uow.events.claim_next(
            subscriber="audit", worker="w1", now=NOW, lease_s=60, limit=10
        )
        await uow.commit()
        assert [e.id for e in other] == [e1.id]
        assert await uow.events.undelivered_count(SUB) == 0
        assert await uow.events.undelivered_count("audit") == 1


async def test_limit_takes_oldest_heads(db: Database) -> None:
    requests = [await add_request(db, f"cli:{n}") for n in range(4)]
    heads = [(await _add_events(db, r.id, ["x"]))[0] for r in requests]
    assert [e.id for e in await _claim(db, "w1", limit=2)] == [heads[0].id, heads[1].id]
    assert [e.id for e in await _claim(db, "w2", limit=5)] == [heads[2].id, heads[3].id]


async def test_concurrent_consumers_deliver_each_event_once_in_order(db: Database) -> None:
    requests = [await add_request(db, f"cli:{n}") for n in range(4)]
    expected: dict[int, list[int]] = {}
    for request in requests:
        events = await _add_events(db, request.id, [f"k{i}" for i in range(5)])
        expected[request.id] = [e.id for e in events]
    delivered: list[EventRecord] = []
    # Held across commit + append so the list order is the delivery commit order.
    delivering = asyncio.Lock()

    async def consumer(worker: str) -> None:
        idle = 0
        while idle < 3:
            batch = await _claim(db, worker, limit=2)
            idle = 0 if batch else idle + 1
            for event in batch:
                async with delivering:
                    assert await _deliver(db, event.id, worker)
                    delivered.append(event)
            await asyncio.sleep(0)

    await asyncio.gather(consumer("w1"), consumer("w2"))
    assert sorted(e.id for e in delivered) == sorted(i for ids in expected.values() for i in ids)
    for request_id, ids in expected.items():
        assert [e.id for e in delivered if e.request_id == request_id] == ids
    async with db.uow() as uow:
        assert await uow.events.undelivered_count(SUB) == 0
