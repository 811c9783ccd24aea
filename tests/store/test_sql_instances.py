"""InstanceRepo on both engines: leases, compare-and-set with lease owner, server id uniqueness."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.store import (
    IN_FLIGHT_INSTANCE_STATES,
    InstanceRecord,
    InstanceState,
    RequestState,
    ServerAlreadyClaimedError,
)
from bot.store.sql import Database
from tests.store.conftest import NOW
from tests.store.helpers import add_instances, add_request

PLANNED = InstanceState.PLANNED
CREATING = InstanceState.CREATING
CREATED = InstanceState.CREATED


async def _claim(
    db: Database,
    worker: str,
    *,
    limit: int = 10,
    lease_s: float = 60,
    at_s: float = 0,
    request_states: set[RequestState] | None = None,
) -> list[InstanceRecord]:
    async with db.uow() as uow:
        claimed = await uow.instances.claim(
            worker=worker,
            states={PLANNED},
            now=NOW + timedelta(seconds=at_s),
            lease_s=lease_s,
            limit=limit,
            request_states=request_states,
        )
        await uow.commit()
    return claimed


async def test_add_many_and_reads(db: Database) -> None:
    request = await add_request(db)
    other = await add_request(db, "cli:2")
    added = await add_instances(db, request.id, 3)
    await add_instances(db, other.id, 1)
    assert [i.position for i in added] == [0, 1, 2]
    first = added[0]
    assert first.state is PLANNED
    assert first.request_id == request.id
    assert first.spec == {"n": 0}
    assert first.ipv4 == []
    assert first.attempts == 0
    assert first.server_id is None
    assert first.lease_owner is None
    assert first.created_at == NOW
    assert first.updated_at == NOW
    async with db.uow() as uow:
        assert await uow.instances.get(first.id) == first
        assert await uow.instances.get(999_999) is None
        assert await uow.instances.list_for_request(request.id) == added
        assert await uow.instances.list_in_flight() == []
        assert await uow.instances.claimed_server_ids() == set()


async def test_transition_and_queries(db: Database) -> None:
    request = await add_request(db)
    pending = await add_request(db, "cli:p", state=RequestState.PENDING_APPROVAL)
    a, b = await add_instances(db, request.id, 2)
    (c,) = await add_instances(db, pending.id, 1)
    later = NOW + timedelta(seconds=10)
    async with db.uow() as uow:
        moved = await uow.instances.transition(
            a.id, expected={PLANNED}, new=CREATING, now=later, intent_at=later, attempts=1
        )
        assert moved is not None
        assert moved.state is CREATING
        assert moved.intent_at == later
        assert moved.attempts == 1
        assert moved.updated_at == later
        created = await uow.instances.transition(
            a.id,
            expected={CREATING, InstanceState.CREATE_UNKNOWN},
            new=CREATED,
            now=later,
            server_id=101,
            hypervisor_id=7,
            group_id=3,
            ipv4=["192.0.2.10", "192.0.2.11"],
            os_name="Debian 12",
        )
        assert created is not None
        assert created.ipv4 == ["192.0.2.10", "192.0.2.11"]
        # A redelivered step is a no-op.
        assert (
            await uow.instances.transition(a.id, expected={PLANNED}, new=CREATING, now=later)
            is None
        )
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.instances.get(a.id) == created
        assert await uow.instances.get_by_server_id(101) == created
        assert await uow.instances.get_by_server_id(102) is None
        assert await uow.instances.claimed_server_ids() == {101}
        assert [i.id for i in await uow.instances.list_in_flight()] == [a.id]
        planned = await uow.instances.list_by_states({PLANNED})
        assert [i.id for i in planned] == [b.id, c.id]
        approved_only = await uow.instances.list_by_states(
            {PLANNED}, request_states={RequestState.APPROVED}
        )
        assert [i.id for i in approved_only] == [b.id]
        assert set(IN_FLIGHT_INSTANCE_STATES) >= {CREATED}


async def test_unknown_field_is_a_programming_error(db: Database) -> None:
    request = await add_request(db)
    (a,) = await add_instances(db, request.id, 1)
    async with db.uow() as uow:
        with pytest.raises(ValueError, match="colour"):
            await uow.instances.transition(
                a.id, expected={PLANNED}, new=CREATING, now=NOW, colour="red"
            )
        with pytest.raises(ValueError, match="state"):
            await uow.instances.update(a.id, now=NOW, state="built")


async def test_concurrent_claimers_never_share_a_row(db: Database) -> None:
    request = await add_request(db)
    instances = await add_instances(db, request.id, 20)

    async def claimer(worker: str) -> list[int]:
        got: list[int] = []
        while True:
            batch = await _claim(db, worker, limit=3)
            if not batch:
                return got
            assert all(i.lease_owner == worker for i in batch)
            got.extend(i.id for i in batch)

    results = await asyncio.gather(*(claimer(f"w{n}") for n in range(3)))
    claimed = [i for ids in results for i in ids]
    assert sorted(claimed) == sorted(i.id for i in instances)
    assert len(claimed) == len(set(claimed))


async def test_claim_respects_lease_limit_order_and_next_check(db: Database) -> None:
    request = await add_request(db)
    a, b, c = await add_instances(db, request.id, 3)
    async with db.uow() as uow:
        await uow.instances.update(c.id, now=NOW, next_check_at=NOW + timedelta(seconds=30))
        await uow.commit()
    first = await _claim(db, "w1", limit=1, lease_s=60)
    assert [i.id for i in first] == [a.id]
    assert first[0].lease_until == NOW + timedelta(seconds=60)
    # a is leased, c is not due yet.
    assert [i.id for i in await _claim(db, "w2", lease_s=120)] == [b.id]
    assert await _claim(db, "w3", at_s=29) == []
    # At 61 s a's lease has expired and c is due.
    assert [i.id for i in await _claim(db, "w3", at_s=61)] == [a.id, c.id]


async def test_claim_filters_on_request_state(db: Database) -> None:
    approved = await add_request(db, "cli:a")
    cancelled = await add_request(db, "cli:c", state=RequestState.CANCELLED)
    (a,) = await add_instances(db, approved.id, 1)
    await add_instances(db, cancelled.id, 1)
    claimed = await _claim(db, "w1", request_states={RequestState.APPROVED, RequestState.RUNNING})
    assert [i.id for i in claimed] == [a.id]


async def test_stolen_lease_blocks_the_old_worker(db: Database) -> None:
    request = await add_request(db)
    (a,) = await add_instances(db, request.id, 1)
    assert len(await _claim(db, "w1", lease_s=30)) == 1
    assert await _claim(db, "w2", at_s=10) == []
    (stolen,) = await _claim(db, "w2", at_s=31, lease_s=30)
    assert stolen.lease_owner == "w2"
    later = NOW + timedelta(seconds=32)
    async with db.uow() as uow:
        assert (
            await uow.instances.transition(
                a.id, expected={PLANNED}, new=CREATING, now=later, worker="w1"
            )
            is None
        )
        assert await uow.instances.update(a.id, now=later, worker="w1", attempts=5) is None
        await uow.instances.release(a.id, worker="w1", next_check_at=None, now=later)
        mine = await uow.instances.transition(
            a.id, expected={PLANNED}, new=CREATING, now=later, worker="w2", attempts=1
        )
        assert mine is not None
        assert mine.lease_owner == "w2"
        await uow.commit()


async def test_release_clears_lease_and_sets_next_check(db: Database) -> None:
    request = await add_request(db)
    (a,) = await add_instances(db, request.id, 1)
    await _claim(db, "w1", lease_s=300)
    async with db.uow() as uow:
        await uow.instances.release(
            a.id, worker="w1", next_check_at=NOW + timedelta(seconds=20), now=NOW
        )
        released = await uow.instances.get(a.id)
        await uow.commit()
    assert released is not None
    assert released.lease_owner is None
    assert released.lease_until is None
    assert released.next_check_at == NOW + timedelta(seconds=20)
    assert await _claim(db, "w2", at_s=19) == []
    assert [i.id for i in await _claim(db, "w2", at_s=20)] == [a.id]


async def test_server_id_is_adopted_by_one_instance_only(db: Database) -> None:
    request = await add_request(db)
    a, b = await add_instances(db, request.id, 2)
    async with db.uow() as uow:
        await uow.instances.update(a.id, now=NOW, server_id=555)
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(ServerAlreadyClaimedError) as info:
            await uow.instances.transition(
                b.id, expected={PLANNED}, new=CREATED, now=NOW, server_id=555
            )
        assert info.value.server_id == 555
        with pytest.raises(ServerAlreadyClaimedError):
            await uow.instances.update(b.id, now=NOW, server_id=555)
        # The transaction is still usable after the violation.
        failed = await uow.instances.transition(
            b.id, expected={PLANNED}, new=InstanceState.FAILED, now=NOW, error="server taken"
        )
        assert failed is not None
        await uow.commit()
    async with db.uow() as uow:
        reread = await uow.instances.get(b.id)
        assert reread is not None
        assert reread.state is InstanceState.FAILED
        assert reread.server_id is None
        assert await uow.instances.claimed_server_ids() == {555}


async def test_update_reads_back_fresh_values_in_the_same_unit(db: Database) -> None:
    request = await add_request(db)
    (a,) = await add_instances(db, request.id, 1)
    async with db.uow() as uow:
        before = await uow.instances.get(a.id)
        assert before is not None
        await uow.instances.update(a.id, now=NOW, error="x", spec={"new": True})
        await uow.instances.release(a.id, worker="nobody", next_check_at=None, now=NOW)
        after = await uow.instances.get(a.id)
    assert after is not None
    assert after.error == "x"
    assert after.spec == {"new": True}


async def test_concurrent_adoption_of_one_server_has_one_winner(db: Database) -> None:
    request = await add_request(db)
    instances = await add_instances(db, request.id, 3)

    async def adopt(instance_id: int) -> bool:
        async with db.uow() as uow:
            try:
                await uow.instances.update(instance_id, now=NOW, server_id=777)
            except ServerAlreadyClaimedError:
                return False
            await uow.commit()
        return True

    results = await asyncio.gather(*(adopt(i.id) for i in instances))
    assert sorted(results) == [False, False, True]
    async with db.uow() as uow:
        assert await uow.instances.claimed_server_ids() == {777}
