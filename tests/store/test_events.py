"""EventRepo (outbox) contract: order per stream, leases, exactly-once delivery per subscriber.

A stream is one request, one operation or the fleet (alerts); streams are delivered
independently of each other.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.provisioning.model import EventRecord
from bot.provisioning.ports import NewEvent
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_instances, add_operation, add_request, undelivered

SUB = "slack"


async def _claim(
    store: StoreUnderTest,
    worker: str,
    *,
    at_s: float = 0,
    lease_s: float = 60,
    limit: int = 10,
    subscriber: str = SUB,
    per_stream: int = 1,
) -> list[EventRecord]:
    async with store.uow() as uow:
        events = await uow.events.claim_next(
            subscriber=subscriber,
            worker=worker,
            now=NOW + timedelta(seconds=at_s),
            lease_s=lease_s,
            limit=limit,
            per_stream=per_stream,
        )
        await uow.commit()
    return events


async def _deliver(
    store: StoreUnderTest, event_id: int, worker: str, *, subscriber: str = SUB
) -> bool:
    async with store.uow() as uow:
        ok = await uow.events.mark_delivered(
            event_id, subscriber=subscriber, worker=worker, now=NOW
        )
        await uow.commit()
    return ok


async def _add_events(
    store: StoreUnderTest,
    kinds: list[str],
    *,
    request_id: int | None = None,
    operation_id: int | None = None,
) -> list[EventRecord]:
    async with store.uow() as uow:
        added = [
            await uow.events.add(
                NewEvent(
                    request_id=request_id, operation_id=operation_id, kind=k, payload={"k": k}
                ),
                now=NOW,
            )
            for k in kinds
        ]
        await uow.commit()
    return added


def _stream(event: EventRecord) -> tuple[str, int | None]:
    if event.request_id is not None:
        return ("request", event.request_id)
    return ("operation", event.operation_id)


async def test_add_and_list(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (instance,) = await add_instances(store, request.id, 1)
    async with store.uow() as uow:
        first = await uow.events.add(
            NewEvent(request_id=request.id, instance_id=instance.id, kind="created", payload={}),
            now=NOW,
        )
        second = await uow.events.add(
            NewEvent(request_id=request.id, kind="done", payload={"n": [1]}), now=NOW
        )
        await uow.commit()
    assert first.instance_id == instance.id
    assert first.request_id == request.id
    assert first.operation_id is None
    assert first.created_at == NOW
    assert second.id > first.id
    assert second.payload == {"n": [1]}
    async with store.uow() as uow:
        assert await uow.events.list_for_request(request.id) == [first, second]
        assert await uow.events.list_for_request(999_999) == []
    assert await undelivered(store, SUB) == 2
    assert await undelivered(store, "other") == 2


async def test_operation_stream_add_and_list(store: StoreUnderTest) -> None:
    request = await add_request(store)
    operation = await add_operation(store, request_id=request.id)
    (on_request,) = await _add_events(store, ["r"], request_id=request.id)
    first, second = await _add_events(store, ["requested", "decided"], operation_id=operation.id)
    assert (first.operation_id, first.request_id) == (operation.id, None)
    assert second.payload == {"k": "decided"}
    async with store.uow() as uow:
        assert await uow.events.list_for_operation(operation.id) == [first, second]
        assert await uow.events.list_for_operation(999_999) == []
        # The operation's events are not the request's, even for the request's server.
        assert await uow.events.list_for_request(request.id) == [on_request]


async def test_an_event_belongs_to_one_stream(store: StoreUnderTest) -> None:
    request = await add_request(store)
    operation = await add_operation(store)
    async with store.uow() as uow:
        with pytest.raises(ValueError, match="one request, one operation, or the fleet"):
            await uow.events.add(
                NewEvent(kind="x", payload={}, request_id=request.id, operation_id=operation.id),
                now=NOW,
            )
        # The unit is still usable.
        await uow.events.add(NewEvent(kind="ok", payload={}, request_id=request.id), now=NOW)
        await uow.commit()
    async with store.uow() as uow:
        assert [e.kind for e in await uow.events.list_for_request(request.id)] == ["ok"]
        assert await uow.events.list_for_operation(operation.id) == []


async def test_the_fleet_stream_is_one_stream_in_order(store: StoreUnderTest) -> None:
    """Events of neither a request nor an operation (alerts, reports) form one stream."""
    request = await add_request(store)
    f1, f2, f3 = await _add_events(store, ["f1", "f2", "f3"])
    (r1,) = await _add_events(store, ["r1"], request_id=request.id)
    assert (f1.request_id, f1.operation_id) == (None, None)
    claimed = await _claim(store, "w1", per_stream=2)
    assert [e.id for e in claimed] == [f1.id, f2.id, r1.id]
    # The fleet stream's head is leased: another worker gets nothing of it.
    assert await _claim(store, "w2", per_stream=2) == []
    assert await _deliver(store, f1.id, "w1") is True
    assert await _deliver(store, f2.id, "w1") is True
    assert [e.id for e in await _claim(store, "w2", per_stream=2)] == [f3.id]


async def test_one_head_per_request_in_order(store: StoreUnderTest) -> None:
    r1 = await add_request(store, "cli:1")
    r2 = await add_request(store, "cli:2")
    e1, e2 = await _add_events(store, ["a", "b"], request_id=r1.id)
    (e3,) = await _add_events(store, ["c"], request_id=r2.id)
    assert [e.id for e in await _claim(store, "w1")] == [e1.id, e3.id]
    # Both heads are leased: nothing for anyone until one is delivered.
    assert await _claim(store, "w2") == []
    assert await _deliver(store, e1.id, "w1") is True
    assert [e.id for e in await _claim(store, "w2")] == [e2.id]
    assert await undelivered(store, SUB) == 2


async def test_request_and_operation_streams_are_independent(store: StoreUnderTest) -> None:
    request = await add_request(store)
    op1 = await add_operation(store, 101, request_id=request.id)
    op2 = await add_operation(store, 102)
    r1, r2 = await _add_events(store, ["r1", "r2"], request_id=request.id)
    o1, o2 = await _add_events(store, ["o1", "o2"], operation_id=op1.id)
    (p1,) = await _add_events(store, ["p1"], operation_id=op2.id)
    # One head per stream, by event id.
    assert [e.id for e in await _claim(store, "w1")] == [r1.id, o1.id, p1.id]
    assert await _claim(store, "w2") == []
    # Delivering the operation's head frees its next event only.
    assert await _deliver(store, o1.id, "w1") is True
    assert [e.id for e in await _claim(store, "w2")] == [o2.id]
    assert await _deliver(store, r1.id, "w1") is True
    assert await _deliver(store, p1.id, "w1") is True
    assert [e.id for e in await _claim(store, "w2")] == [r2.id]
    assert await undelivered(store, SUB) == 2
    for event, worker in ((o2, "w2"), (r2, "w2")):
        assert await _deliver(store, event.id, worker) is True
    assert await undelivered(store, SUB) == 0
    assert await _claim(store, "w3", at_s=3600) == []


async def test_mark_delivered_requires_the_lease(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (e1,) = await _add_events(store, ["a"], request_id=request.id)
    assert await _deliver(store, e1.id, "w1") is False  # never claimed
    await _claim(store, "w1")
    assert await _deliver(store, e1.id, "w2") is False
    assert await _deliver(store, e1.id, "w1", subscriber="other") is False
    assert await _deliver(store, e1.id, "w1") is True
    assert await _deliver(store, e1.id, "w1") is False  # already delivered
    assert await _claim(store, "w1") == []
    assert await _claim(store, "w1", at_s=3600) == []  # delivered stays delivered


async def test_expired_lease_moves_to_another_worker(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (e1, _) = await _add_events(store, ["a", "b"], request_id=request.id)
    assert [e.id for e in await _claim(store, "w1", lease_s=30)] == [e1.id]
    assert await _claim(store, "w2", at_s=29) == []
    assert [e.id for e in await _claim(store, "w2", at_s=30)] == [e1.id]
    assert await _deliver(store, e1.id, "w1") is False
    assert await _deliver(store, e1.id, "w2") is True


async def test_renew_keeps_the_lease_of_its_worker_only(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (e1,) = await _add_events(store, ["a"], request_id=request.id)
    assert [e.id for e in await _claim(store, "w1", lease_s=6)] == [e1.id]
    async with store.uow() as uow:
        until = NOW + timedelta(seconds=60)
        await uow.events.renew([e1.id], subscriber=SUB, worker="w1", until=until)
        await uow.events.renew([e1.id], subscriber=SUB, worker="w2", until=until + timedelta(1))
        await uow.commit()
    assert await _claim(store, "w2", at_s=59) == []  # renewed: w1 still delivers it
    assert [e.id for e in await _claim(store, "w2", at_s=60)] == [e1.id]  # not w2's renewal
    assert await _deliver(store, e1.id, "w2") is True
    async with store.uow() as uow:  # a delivered event's lease is never renewed again
        await uow.events.renew(
            [e1.id], subscriber=SUB, worker="w2", until=until + timedelta(days=9)
        )
        await uow.commit()
    assert await _claim(store, "w3", at_s=61) == []


async def test_subscribers_are_independent(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (e1,) = await _add_events(store, ["a"], request_id=request.id)
    await _claim(store, "w1")
    await _deliver(store, e1.id, "w1")
    other = await _claim(store, "w1", subscriber="audit")
    assert [e.id for e in other] == [e1.id]
    assert await undelivered(store, SUB) == 0
    assert await undelivered(store, "audit") == 1


async def test_limit_takes_oldest_heads(store: StoreUnderTest) -> None:
    requests = [await add_request(store, f"cli:{n}") for n in range(4)]
    heads = [(await _add_events(store, ["x"], request_id=r.id))[0] for r in requests]
    assert await _claim(store, "w1", limit=0) == []
    assert [e.id for e in await _claim(store, "w1", limit=2)] == [heads[0].id, heads[1].id]
    assert [e.id for e in await _claim(store, "w2", limit=5)] == [heads[2].id, heads[3].id]


async def test_concurrent_consumers_deliver_each_event_once_in_order(
    store: StoreUnderTest,
) -> None:
    requests = [await add_request(store, f"cli:{n}") for n in range(3)]
    operations = [await add_operation(store, 100 + n) for n in range(2)]
    expected: dict[tuple[str, int | None], list[int]] = {}
    for request in requests:
        events = await _add_events(store, [f"k{i}" for i in range(5)], request_id=request.id)
        expected[("request", request.id)] = [e.id for e in events]
    for operation in operations:
        events = await _add_events(store, [f"k{i}" for i in range(3)], operation_id=operation.id)
        expected[("operation", operation.id)] = [e.id for e in events]
    delivered: list[EventRecord] = []
    # Held across commit + append so the list order is the delivery commit order.
    delivering = asyncio.Lock()

    async def consumer(worker: str) -> None:
        idle = 0
        while idle < 3:
            batch = await _claim(store, worker, limit=2)
            idle = 0 if batch else idle + 1
            for event in batch:
                async with delivering:
                    assert await _deliver(store, event.id, worker)
                    delivered.append(event)
            await asyncio.sleep(0)

    await asyncio.gather(consumer("w1"), consumer("w2"))
    assert sorted(e.id for e in delivered) == sorted(i for ids in expected.values() for i in ids)
    for stream, ids in expected.items():
        assert [e.id for e in delivered if _stream(e) == stream] == ids
    assert await undelivered(store, SUB) == 0


async def test_a_batch_per_stream_in_order(store: StoreUnderTest) -> None:
    r1 = await add_request(store, "cli:1")
    r2 = await add_request(store, "cli:2")
    operation = await add_operation(store)
    first = await _add_events(store, [f"a{i}" for i in range(5)], request_id=r1.id)
    (other,) = await _add_events(store, ["b0"], request_id=r2.id)
    more = await _add_events(store, ["a5"], request_id=r1.id)
    ops = await _add_events(store, ["o0", "o1"], operation_id=operation.id)
    claimed = await _claim(store, "w1", per_stream=3)
    assert [e.id for e in claimed] == sorted(
        [*(e.id for e in first[:3]), other.id, *(e.id for e in ops)]
    )
    # The rest of a leased stream waits for the batch: nobody else starts it meanwhile.
    assert await _claim(store, "w2", per_stream=3) == []
    for event in first[:2]:
        assert await _deliver(store, event.id, "w1") is True
    assert await _claim(store, "w2", per_stream=3) == []  # its head (a2) is still w1's
    assert await _deliver(store, first[2].id, "w1") is True
    rest = await _claim(store, "w2", per_stream=10)
    assert [e.id for e in rest] == [first[3].id, first[4].id, more[0].id]
    # per_stream=1 is the one-event-per-stream claim.
    assert [e.id for e in await _claim(store, "w3", at_s=3600)] == sorted(
        [first[3].id, other.id, ops[0].id]
    )


async def test_a_batch_stops_before_an_event_someone_else_holds(store: StoreUnderTest) -> None:
    request = await add_request(store)
    events = await _add_events(store, [f"k{i}" for i in range(4)], request_id=request.id)
    assert [e.id for e in await _claim(store, "w1", per_stream=4, lease_s=10)] == [
        e.id for e in events
    ]
    assert await _deliver(store, events[0].id, "w1") is True
    async with store.uow() as uow:  # w1 still holds k2 only
        until = NOW + timedelta(seconds=100)
        await uow.events.renew([events[2].id], subscriber=SUB, worker="w1", until=until)
        await uow.commit()
    # k1 is free, k2 is not: w2 gets k1 alone, and k3 is not held past the gap.
    (head,) = await _claim(store, "w2", at_s=10, lease_s=50, per_stream=4)
    assert head.id == events[1].id
    assert await _deliver(store, events[1].id, "w2") is True
    assert await _claim(store, "w3", at_s=11, per_stream=4) == []  # k2 is w1's until 100 s
    later = await _claim(store, "w3", at_s=100, per_stream=4)
    assert [e.id for e in later] == [events[2].id, events[3].id]


async def test_prune_deletes_old_delivered_events_only(store: StoreUnderTest) -> None:
    request = await add_request(store)
    operation = await add_operation(store)
    old = await _add_events(store, ["a", "b", "c"], request_id=request.id)
    (op_old,) = await _add_events(store, ["o"], operation_id=operation.id)
    async with store.uow() as uow:
        (new,) = [
            await uow.events.add(
                NewEvent(request_id=request.id, kind="new", payload={}),
                now=NOW + timedelta(days=2),
            )
        ]
        await uow.commit()
    claimed = await _claim(store, "w1", per_stream=10)
    for event in (old[0], old[1], op_old, new):
        assert await _deliver(store, event.id, "w1") is True
    await _claim(store, "w1", subscriber="cli")  # another subscriber's lease: no matter
    async with store.uow() as uow:
        pruned = await uow.events.prune_delivered(subscriber=SUB, before=NOW + timedelta(days=1))
        await uow.commit()
    assert pruned == 3  # a, b and o; c is undelivered, "new" is recent
    assert len(claimed) == 5
    async with store.uow() as uow:
        assert [e.kind for e in await uow.events.list_for_request(request.id)] == ["c", "new"]
        assert await uow.events.list_for_operation(operation.id) == []
    # c is still leased by w1 and is delivered in order afterwards.
    assert await _deliver(store, old[2].id, "w1") is True
    assert await undelivered(store, SUB) == 0
    async with store.uow() as uow:  # a unit that is not committed deletes nothing
        assert await uow.events.prune_delivered(subscriber=SUB, before=NOW + timedelta(days=9))
    async with store.uow() as uow:
        assert len(await uow.events.list_for_request(request.id)) == 2


async def test_list_for_instance_returns_its_milestones_of_the_kinds_asked(
    store: StoreUnderTest,
) -> None:
    request = await add_request(store)
    first, second = await add_instances(store, request.id, 2)
    async with store.uow() as uow:
        for instance, kind in (
            (first, "instance.created"),
            (second, "instance.created"),
            (first, "instance.build_started"),
            (first, "instance.built"),
        ):
            new = NewEvent(kind, {"server_id": 7}, request_id=request.id, instance_id=instance.id)
            await uow.events.add(new, now=NOW)
        await uow.commit()
    async with store.uow() as uow:
        kinds = ["instance.created", "instance.built"]
        found = await uow.events.list_for_instance(request.id, first.id, kinds)
        none = await uow.events.list_for_instance(request.id, second.id, ["instance.built"])
        elsewhere = await uow.events.list_for_instance(request.id + 1, first.id, kinds)
    assert [e.kind for e in found] == ["instance.created", "instance.built"]
    assert all(e.instance_id == first.id for e in found)
    assert none == [] and elsewhere == []


async def test_has_undelivered_sees_leased_events_until_they_are_delivered(
    store: StoreUnderTest,
) -> None:
    request = await add_request(store)
    async with store.uow() as uow:
        assert not await uow.events.has_undelivered(SUB)
    (event,) = await _add_events(store, ["request.submitted"], request_id=request.id)
    claimed = await _claim(store, "w1")
    assert [e.id for e in claimed] == [event.id]
    async with store.uow() as uow:
        assert await uow.events.has_undelivered(SUB)  # leased, not delivered
        assert await uow.events.has_undelivered("cli")  # another subscriber's view
    assert await _deliver(store, event.id, "w1")
    async with store.uow() as uow:
        assert not await uow.events.has_undelivered(SUB)
        assert await uow.events.has_undelivered("cli")
