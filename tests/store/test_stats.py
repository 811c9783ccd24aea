"""The counts `/metrics` reads (requests and servers by state, leases held, outbox backlog)."""

from __future__ import annotations

from datetime import timedelta

from bot.provisioning.model import InstanceState, RequestState
from bot.provisioning.ports import Backlog, Claim, NewEvent
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_instances, add_operation, add_request


async def test_an_empty_store_counts_nothing(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        assert await uow.requests.count_by_state() == {}
        assert await uow.instances.count_by_state() == {}
        assert await uow.instances.count_leased("w1", NOW) == 0
        assert await uow.events.backlog("slack") == Backlog(0, None)


async def test_requests_and_instances_by_state(store: StoreUnderTest) -> None:
    first = await add_request(store, "k1", state=RequestState.RUNNING)
    await add_request(store, "k2", state=RequestState.RUNNING)
    await add_request(store, "k3", state=RequestState.PENDING_APPROVAL)
    planned = await add_instances(store, first.id, 3)
    async with store.uow() as uow:
        moved = await uow.instances.transition(
            planned[0].id, expected=[InstanceState.PLANNED], new=InstanceState.CREATING, now=NOW
        )
        assert moved is not None
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.requests.count_by_state() == {
            RequestState.RUNNING: 2,
            RequestState.PENDING_APPROVAL: 1,
        }
        assert await uow.instances.count_by_state() == {
            InstanceState.PLANNED: 2,
            InstanceState.CREATING: 1,
        }


async def test_leases_count_only_the_workers_live_ones(store: StoreUnderTest) -> None:
    record = await add_request(store, state=RequestState.RUNNING)
    await add_instances(store, record.id, 4)

    async def claim(worker: str, limit: int, lease_s: float) -> None:
        async with store.uow() as uow:
            claim = Claim(
                worker=worker,
                states=[InstanceState.PLANNED],
                now=NOW,
                lease_s=lease_s,
                limit=limit,
            )
            await uow.instances.claim(claim)
            await uow.commit()

    await claim("w1", 2, 60)
    await claim("w2", 1, 10)
    async with store.uow() as uow:
        assert await uow.instances.count_leased("w1", NOW) == 2
        assert await uow.instances.count_leased("w2", NOW) == 1
        assert await uow.instances.count_leased("w3", NOW) == 0
        # w2's lease has run out: it holds nothing any more, w1 still does.
        later = NOW + timedelta(seconds=30)
        assert await uow.instances.count_leased("w2", later) == 0
        assert await uow.instances.count_leased("w1", later) == 2
        assert await uow.instances.count_leased("w1", NOW + timedelta(seconds=60)) == 0


async def test_backlog_is_per_subscriber_and_names_the_oldest(store: StoreUnderTest) -> None:
    record = await add_request(store)
    operation = await add_operation(store)
    written = []
    for i, (request_id, operation_id) in enumerate(
        [(record.id, None), (None, operation.id), (record.id, None)]
    ):
        async with store.uow() as uow:
            event = NewEvent(
                "request.started", {}, request_id=request_id, operation_id=operation_id
            )
            written.append(await uow.events.add(event, now=NOW + timedelta(minutes=i)))
            await uow.commit()
    async with store.uow() as uow:
        assert await uow.events.backlog("slack") == Backlog(3, NOW)
        assert await uow.events.backlog("cli") == Backlog(3, NOW)
        # A claimed (leased) event is still waiting; a delivered one is not.
        claimed = await uow.events.claim_next(
            subscriber="slack", worker="w", now=NOW, lease_s=60, limit=10
        )
        assert [e.id for e in claimed] == [written[0].id, written[1].id]
        assert await uow.events.backlog("slack") == Backlog(3, NOW)
        assert await uow.events.mark_delivered(
            written[0].id, subscriber="slack", worker="w", now=NOW
        )
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.events.backlog("slack") == Backlog(2, NOW + timedelta(minutes=1))
        assert await uow.events.backlog("cli") == Backlog(3, NOW)
