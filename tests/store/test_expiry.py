"""InstanceRepo contract for lifetimes: servers expiring before a time, and the reminder and
the action claimed once per expiry (compare-and-set), on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import ExpiryStage, InstanceChange
from bot.store.sql import Database
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_instances, add_request, set_server

HOUR = timedelta(hours=1)


async def _expire_at(store: StoreUnderTest, instance_id: int, when: datetime | None) -> None:
    async with store.uow() as uow:
        await uow.instances.update(instance_id, now=NOW, change=InstanceChange(expires_at=when))
        await uow.commit()


async def _servers(store: StoreUnderTest) -> list[InstanceRecord]:
    """Five servers: two of U1's request, three of U2's; each with a panel server."""
    first = await add_request(store, "k1", requester="U1")
    second = await add_request(store, "k2", requester="U2")
    made = await add_instances(store, first.id, 2) + await add_instances(store, second.id, 3)
    return [await set_server(store, i.id, 100 + n) for n, i in enumerate(made)]


async def test_expiring_lists_live_servers_soonest_first(store: StoreUnderTest) -> None:
    servers = await _servers(store)
    await _expire_at(store, servers[0].id, NOW + 3 * HOUR)
    await _expire_at(store, servers[1].id, NOW + HOUR)
    await _expire_at(store, servers[2].id, NOW + 2 * HOUR)
    await _expire_at(store, servers[3].id, NOW + 30 * HOUR)  # later than asked
    await _expire_at(store, servers[4].id, NOW + HOUR)
    async with store.uow() as uow:  # deleted: never listed
        await uow.instances.transition(
            servers[4].id, expected=[InstanceState.PLANNED], new=InstanceState.DELETED, now=NOW
        )
        await uow.commit()
    async with store.uow() as uow:
        soon = await uow.instances.expiring(before=NOW + 3 * HOUR)
        mine = await uow.instances.expiring(before=NOW + 3 * HOUR, requester="U1")
        first = await uow.instances.expiring(before=NOW + 3 * HOUR, limit=1)
        none = await uow.instances.expiring(before=NOW)
    assert [i.id for i in soon] == [servers[1].id, servers[2].id, servers[0].id]
    assert soon[0].expires_at == NOW + HOUR
    assert [i.id for i in mine] == [servers[1].id, servers[0].id]
    assert [i.id for i in first] == [servers[1].id]
    assert none == []
    async with store.uow() as uow:  # the action taken for server 1's expiry
        await uow.instances.claim_expiry(
            servers[1].id, stage=ExpiryStage.DONE, expires_at=NOW + HOUR, now=NOW
        )
        await uow.commit()
    async with store.uow() as uow:
        pending = await uow.instances.expiring(before=NOW + 3 * HOUR, pending_only=True)
        every = await uow.instances.expiring(before=NOW + 3 * HOUR)
    assert [i.id for i in pending] == [servers[2].id, servers[0].id]
    assert len(every) == 3


async def test_each_stage_is_claimed_once_per_expiry(store: StoreUnderTest) -> None:
    server = (await _servers(store))[0]
    when = NOW + HOUR
    await _expire_at(store, server.id, when)

    async def claim(stage: ExpiryStage, expires_at: datetime) -> InstanceRecord | None:
        async with store.uow() as uow:
            claimed = await uow.instances.claim_expiry(
                server.id, stage=stage, expires_at=expires_at, now=NOW
            )
            await uow.commit()
        return claimed

    warned = await claim(ExpiryStage.WARNED, when)
    assert warned is not None and warned.expiry_warned_for == when
    assert warned.expiry_done_for is None
    assert await claim(ExpiryStage.WARNED, when) is None  # once
    assert await claim(ExpiryStage.DONE, NOW + 2 * HOUR) is None  # not its expiry (extended)
    done = await claim(ExpiryStage.DONE, when)
    assert done is not None and done.expiry_done_for == when
    assert await claim(ExpiryStage.DONE, when) is None
    # Extended: a new expiry gets its own reminder and action.
    later = when + 4 * HOUR
    await _expire_at(store, server.id, later)
    assert await claim(ExpiryStage.WARNED, when) is None
    again = await claim(ExpiryStage.WARNED, later)
    assert again is not None and again.expiry_warned_for == later


async def test_racing_claims_give_the_reminder_to_one(store: StoreUnderTest) -> None:
    if store.kind == "memory":
        return  # one process; the SQL engines are the ones that race
    server = (await _servers(store))[0]
    when = NOW + HOUR
    await _expire_at(store, server.id, when)

    async def claim() -> bool:
        async with store.uow() as uow:
            claimed = await uow.instances.claim_expiry(
                server.id, stage=ExpiryStage.WARNED, expires_at=when, now=NOW
            )
            await uow.commit()
        return claimed is not None

    results = await asyncio.gather(*(claim() for _ in range(6)))
    assert sorted(results) == [False] * 5 + [True]


async def test_a_deleted_server_is_never_claimed(store: StoreUnderTest) -> None:
    server = (await _servers(store))[0]
    await _expire_at(store, server.id, NOW)
    async with store.uow() as uow:
        await uow.instances.transition(
            server.id, expected=[InstanceState.PLANNED], new=InstanceState.DELETED, now=NOW
        )
        assert (
            await uow.instances.claim_expiry(
                server.id, stage=ExpiryStage.DONE, expires_at=NOW, now=NOW
            )
            is None
        )


async def test_a_locked_read_makes_the_next_one_wait_for_its_write(db: Database) -> None:
    """Two extends at once on two replicas: the second reads only after the first wrote, so
    both count (`get(lock=True)`: FOR UPDATE on PostgreSQL, SQLite's single writer)."""
    store = StoreUnderTest("sql", db.uow, db.slack_store())
    (server, *_) = await _servers(store)
    await _expire_at(store, server.id, NOW + HOUR)

    async def extend(started: asyncio.Event | None = None) -> datetime | None:
        async with db.uow() as uow:
            current = await uow.instances.get(server.id, lock=True)
            assert current is not None and current.expires_at is not None
            if started is not None:
                started.set()
                await asyncio.sleep(0)  # let the other one ask while this one holds the row
                await second_asked.wait()
            new = current.expires_at + HOUR
            await uow.instances.update(server.id, now=NOW, change=InstanceChange(expires_at=new))
            await uow.commit()
            return new

    first_read, second_asked = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(extend(first_read))
    await first_read.wait()
    second = asyncio.create_task(extend())
    done, _ = await asyncio.wait([second], timeout=0.3)
    assert not done  # it waits for the first one's row
    second_asked.set()
    assert await first == NOW + 2 * HOUR
    assert await second == NOW + 3 * HOUR  # read after the first one's write: nothing lost
