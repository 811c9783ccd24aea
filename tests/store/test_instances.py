"""InstanceRepo contract: leases, compare-and-set with lease owner, server id uniqueness."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    InstanceRecord,
    InstanceState,
    RequestState,
)
from bot.provisioning.ports import (
    RELEASE,
    Claim,
    InstanceChange,
    ServerAlreadyClaimedError,
    ServerQuery,
)
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_instances, add_request, set_server

PLANNED = InstanceState.PLANNED
CREATING = InstanceState.CREATING
CREATED = InstanceState.CREATED


async def _claim(
    store: StoreUnderTest,
    worker: str,
    *,
    limit: int = 10,
    lease_s: float = 60,
    at_s: float = 0,
    request_states: set[RequestState] | None = None,
) -> list[InstanceRecord]:
    async with store.uow() as uow:
        claimed = await uow.instances.claim(
            Claim(
                worker=worker,
                states={PLANNED},
                now=NOW + timedelta(seconds=at_s),
                lease_s=lease_s,
                limit=limit,
                request_states=request_states,
            )
        )
        await uow.commit()
    return claimed


async def test_add_many_and_reads(store: StoreUnderTest) -> None:
    request = await add_request(store)
    other = await add_request(store, "cli:2")
    added = await add_instances(store, request.id, 3)
    await add_instances(store, other.id, 1)
    assert [i.position for i in added] == [0, 1, 2]
    first = added[0]
    assert first.state is PLANNED
    assert first.request_id == request.id
    assert first.human_request_id == request.human_id
    assert first.name == "vm-0"
    assert first.spec == {"n": 0}
    assert first.ipv4 == []
    assert first.attempts == 0
    assert first.server_id is None
    assert first.lease_owner is None
    assert first.created_at == NOW
    assert first.updated_at == NOW
    async with store.uow() as uow:
        assert await uow.instances.get(first.id) == first
        assert await uow.instances.get(999_999) is None
        assert await uow.instances.list_for_request(request.id) == added
        assert await uow.instances.list_for_request(999_999) == []
        assert await uow.instances.list_in_flight() == []
        assert await uow.instances.claimed_server_ids() == set()


async def test_transition_and_queries(store: StoreUnderTest) -> None:
    request = await add_request(store)
    pending = await add_request(store, "cli:p", state=RequestState.PENDING_APPROVAL)
    a, b = await add_instances(store, request.id, 2)
    (c,) = await add_instances(store, pending.id, 1)
    later = NOW + timedelta(seconds=10)
    async with store.uow() as uow:
        moved = await uow.instances.transition(
            a.id,
            expected={PLANNED},
            new=CREATING,
            now=later,
            change=InstanceChange(intent_at=later, attempts=1),
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
            change=InstanceChange(
                server_id=101,
                hypervisor_id=7,
                group_id=3,
                ipv4=["192.0.2.10", "192.0.2.11"],
                os_name="Debian 12",
            ),
        )
        assert created is not None
        assert created.ipv4 == ["192.0.2.10", "192.0.2.11"]
        assert (created.hypervisor_id, created.group_id, created.os_name) == (7, 3, "Debian 12")
        assert created.attempts == 1  # left UNSET: kept
        # A redelivered step is a no-op.
        assert (
            await uow.instances.transition(a.id, expected={PLANNED}, new=CREATING, now=later)
            is None
        )
        assert (
            await uow.instances.transition(999_999, expected={PLANNED}, new=CREATING, now=later)
            is None
        )
        await uow.commit()
    async with store.uow() as uow:
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


async def test_get_by_server_ids_maps_adopted_servers(store: StoreUnderTest) -> None:
    request = await add_request(store)
    a, b, _ = await add_instances(store, request.id, 3)
    a = await set_server(store, a.id, 11)
    b = await set_server(store, b.id, 12)
    async with store.uow() as uow:
        found = await uow.instances.get_by_server_ids([12, 11, 99, 11])
        assert found == {11: a, 12: b}
        assert await uow.instances.get_by_server_ids([]) == {}
        assert await uow.instances.get_by_server_ids({99}) == {}


async def test_claim_respects_lease_limit_order_and_next_check(store: StoreUnderTest) -> None:
    request = await add_request(store)
    a, b, c = await add_instances(store, request.id, 3)
    async with store.uow() as uow:
        await uow.instances.update(
            c.id, now=NOW, change=InstanceChange(next_check_at=NOW + timedelta(seconds=30))
        )
        await uow.commit()
    first = await _claim(store, "w1", limit=1, lease_s=60)
    assert [i.id for i in first] == [a.id]
    assert first[0].lease_owner == "w1"
    assert first[0].lease_until == NOW + timedelta(seconds=60)
    # a is leased, c is not due yet.
    assert [i.id for i in await _claim(store, "w2", lease_s=120)] == [b.id]
    assert await _claim(store, "w3", at_s=29) == []
    assert await _claim(store, "w3", at_s=61, limit=0) == []
    # At 61 s a's lease has expired and c is due.
    assert [i.id for i in await _claim(store, "w3", at_s=61)] == [a.id, c.id]


async def test_claim_filters_on_request_state(store: StoreUnderTest) -> None:
    approved = await add_request(store, "cli:a")
    cancelled = await add_request(store, "cli:c", state=RequestState.CANCELLED)
    (a,) = await add_instances(store, approved.id, 1)
    await add_instances(store, cancelled.id, 1)
    claimed = await _claim(
        store, "w1", request_states={RequestState.APPROVED, RequestState.RUNNING}
    )
    assert [i.id for i in claimed] == [a.id]


async def test_concurrent_claimers_never_share_a_row(store: StoreUnderTest) -> None:
    request = await add_request(store)
    instances = await add_instances(store, request.id, 20)

    async def claimer(worker: str) -> list[int]:
        got: list[int] = []
        while True:
            batch = await _claim(store, worker, limit=3)
            if not batch:
                return got
            assert all(i.lease_owner == worker for i in batch)
            got.extend(i.id for i in batch)

    results = await asyncio.gather(*(claimer(f"w{n}") for n in range(3)))
    claimed = [i for ids in results for i in ids]
    assert sorted(claimed) == sorted(i.id for i in instances)
    assert len(claimed) == len(set(claimed))


async def test_stolen_lease_blocks_the_old_worker(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (a,) = await add_instances(store, request.id, 1)
    assert len(await _claim(store, "w1", lease_s=30)) == 1
    assert await _claim(store, "w2", at_s=10) == []
    (stolen,) = await _claim(store, "w2", at_s=31, lease_s=30)
    assert stolen.lease_owner == "w2"
    later = NOW + timedelta(seconds=32)
    async with store.uow() as uow:
        assert (
            await uow.instances.transition(
                a.id, expected={PLANNED}, new=CREATING, now=later, worker="w1"
            )
            is None
        )
        stale = await uow.instances.update(
            a.id, now=later, worker="w1", change=InstanceChange(attempts=5)
        )
        assert stale is None
        await uow.instances.release(a.id, worker="w1", next_check_at=None, now=later)
        mine = await uow.instances.transition(
            a.id,
            expected={PLANNED},
            new=CREATING,
            now=later,
            worker="w2",
            change=InstanceChange(attempts=1),
        )
        assert mine is not None
        assert mine.lease_owner == "w2"
        assert mine.attempts == 1
        await uow.commit()


async def test_release_clears_lease_and_sets_next_check(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (a,) = await add_instances(store, request.id, 1)
    await _claim(store, "w1", lease_s=300)
    async with store.uow() as uow:
        await uow.instances.release(
            a.id, worker="w1", next_check_at=NOW + timedelta(seconds=20), now=NOW
        )
        released = await uow.instances.get(a.id)
        await uow.commit()
    assert released is not None
    assert released.lease_owner is None
    assert released.lease_until is None
    assert released.next_check_at == NOW + timedelta(seconds=20)
    assert await _claim(store, "w2", at_s=19) == []
    assert [i.id for i in await _claim(store, "w2", at_s=20)] == [a.id]


async def test_release_change_clears_the_lease_in_a_transition(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (a,) = await add_instances(store, request.id, 1)
    await _claim(store, "w1", lease_s=300)
    async with store.uow() as uow:
        done = await uow.instances.transition(
            a.id,
            expected={PLANNED},
            new=InstanceState.FAILED,
            now=NOW,
            worker="w1",
            change=dataclasses.replace(RELEASE, error="gone"),
        )
        await uow.commit()
    assert done is not None
    assert (done.lease_owner, done.lease_until, done.error) == (None, None, "gone")


async def test_server_id_is_adopted_by_one_instance_only(store: StoreUnderTest) -> None:
    request = await add_request(store)
    a, b, c = await add_instances(store, request.id, 3)
    await set_server(store, a.id, 555)
    async with store.uow() as uow:
        # Work done before the violation survives it.
        kept = await uow.instances.update(c.id, now=NOW, change=InstanceChange(os_name="Alma"))
        assert kept is not None
        with pytest.raises(ServerAlreadyClaimedError) as info:
            await uow.instances.transition(
                b.id,
                expected={PLANNED},
                new=CREATED,
                now=NOW,
                change=InstanceChange(server_id=555),
            )
        assert info.value.server_id == 555
        with pytest.raises(ServerAlreadyClaimedError):
            await uow.instances.update(b.id, now=NOW, change=InstanceChange(server_id=555))
        # The transaction is still usable after the violation.
        failed = await uow.instances.transition(
            b.id,
            expected={PLANNED},
            new=InstanceState.FAILED,
            now=NOW,
            change=InstanceChange(error="server taken"),
        )
        assert failed is not None
        # Setting the server an instance already has is no conflict.
        again = await uow.instances.update(a.id, now=NOW, change=InstanceChange(server_id=555))
        assert again is not None
        await uow.commit()
    async with store.uow() as uow:
        reread = await uow.instances.get(b.id)
        assert reread is not None
        assert reread.state is InstanceState.FAILED
        assert reread.server_id is None
        assert reread.error == "server taken"
        assert await uow.instances.get(c.id) == kept
        assert await uow.instances.claimed_server_ids() == {555}


async def test_update_reads_back_fresh_values_in_the_same_unit(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (a,) = await add_instances(store, request.id, 1)
    async with store.uow() as uow:
        before = await uow.instances.get(a.id)
        assert before is not None
        await uow.instances.update(a.id, now=NOW, change=InstanceChange(error="x", os_name="Deb"))
        await uow.instances.release(a.id, worker="nobody", next_check_at=None, now=NOW)
        after = await uow.instances.get(a.id)
    assert after is not None
    assert after.error == "x"
    assert after.os_name == "Deb"
    assert after.state is before.state


async def test_update_of_a_missing_instance_is_none(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        assert (
            await uow.instances.update(999_999, now=NOW, change=InstanceChange(error="x")) is None
        )


async def test_concurrent_adoption_of_one_server_has_one_winner(store: StoreUnderTest) -> None:
    request = await add_request(store)
    instances = await add_instances(store, request.id, 3)

    async def adopt(instance_id: int) -> bool:
        async with store.uow() as uow:
            try:
                await uow.instances.update(
                    instance_id, now=NOW, change=InstanceChange(server_id=777)
                )
            except ServerAlreadyClaimedError:
                return False
            await uow.commit()
        return True

    results = await asyncio.gather(*(adopt(i.id) for i in instances))
    assert sorted(results) == [False, False, True]
    async with store.uow() as uow:
        assert await uow.instances.claimed_server_ids() == {777}


async def test_find_by_name_and_list_with_servers(store: StoreUnderTest) -> None:
    first = await add_request(store, "cli:a", requester="U1")
    second = await add_request(store, "cli:b", requester="U2")
    a = await add_instances(store, first.id, 3)  # vm-0, vm-1, vm-2
    b = await add_instances(store, second.id, 2)  # vm-0, vm-1
    for instance, server_id in ((a[0], 11), (a[1], 12), (b[0], 21), (b[1], 22)):
        await set_server(store, instance.id, server_id)
    async with store.uow() as uow:
        await uow.instances.transition(
            b[1].id, expected=[InstanceState.PLANNED], new=InstanceState.DELETED, now=NOW
        )
        await uow.commit()

    async with store.uow() as uow:
        named = await uow.instances.find_by_name(" VM-0 ")
        deleted_name = await uow.instances.find_by_name("vm-1")
        no_server = await uow.instances.find_by_name("vm-2")
        page, total = await uow.instances.list_with_servers(ServerQuery(limit=2))
        rest, _ = await uow.instances.list_with_servers(ServerQuery(limit=2, offset=2))
        mine, mine_total = await uow.instances.list_with_servers(ServerQuery(requester="U1"))
        of_request, _ = await uow.instances.list_with_servers(ServerQuery(request_id=second.id))
        everything, all_total = await uow.instances.list_with_servers(
            ServerQuery(include_deleted=True)
        )

    assert [i.server_id for i in named] == [21, 11]  # newest first
    assert [i.server_id for i in deleted_name] == [12]
    assert no_server == []
    assert total == 3
    assert [i.server_id for i in page] == [21, 12]
    assert [i.server_id for i in rest] == [11]
    assert ([i.server_id for i in mine], mine_total) == ([12, 11], 2)
    assert [i.server_id for i in of_request] == [21]
    assert ([i.server_id for i in everything], all_total) == ([22, 21, 12, 11], 4)


async def test_managed_names_are_distinct_sorted_and_live(store: StoreUnderTest) -> None:
    first = await add_request(store, "cli:a")
    second = await add_request(store, "cli:b")
    a = await add_instances(store, first.id, 4)  # vm-0 … vm-3
    b = await add_instances(store, second.id, 3)  # vm-0 … vm-2
    for instance, server_id in ((a[3], 13), (a[0], 10), (a[1], 11), (b[0], 20), (b[2], 22)):
        await set_server(store, instance.id, server_id)
    async with store.uow() as uow:
        # b's vm-2 is deleted; a's vm-2 never got a server: vm-2 is no managed name.
        await uow.instances.transition(
            b[2].id, expected=[InstanceState.PLANNED], new=InstanceState.DELETED, now=NOW
        )
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.instances.managed_names() == ["vm-0", "vm-1", "vm-3"]
        assert await uow.instances.managed_names(limit=2) == ["vm-0", "vm-1"]
        assert await uow.instances.managed_names(limit=0) == []


async def test_unfinished_counts_count_what_has_not_ended_per_request(
    store: StoreUnderTest,
) -> None:
    first = await add_request(store, "cli:a")
    second = await add_request(store, "cli:b")
    empty = await add_request(store, "cli:c")
    one, two, three = await add_instances(store, first.id, 3)
    (only,) = await add_instances(store, second.id, 1)
    async with store.uow() as uow:
        for instance, state in ((one, InstanceState.BUILT), (two, InstanceState.FAILED)):
            await uow.instances.transition(instance.id, expected=[PLANNED], new=state, now=NOW)
        await uow.instances.transition(
            only.id, expected=[PLANNED], new=InstanceState.CANCELLED, now=NOW
        )
        await uow.commit()
    async with store.uow() as uow:
        counts = await uow.instances.unfinished_counts([first.id, second.id, empty.id, 999])
        assert await uow.instances.unfinished_counts([]) == {}
    assert counts == {first.id: 1, second.id: 0, empty.id: 0, 999: 0}
    assert three.state is PLANNED


async def test_a_rename_is_found_by_the_new_name_only(store: StoreUnderTest) -> None:
    request = await add_request(store)
    (a,) = await add_instances(store, request.id, 1)  # vm-0
    await set_server(store, a.id, 31)
    async with store.uow() as uow:
        renamed = await uow.instances.update(a.id, now=NOW, change=InstanceChange(name="db-1"))
        await uow.commit()
    assert renamed is not None and renamed.name == "db-1"
    async with store.uow() as uow:
        assert [i.server_id for i in await uow.instances.find_by_name("DB-1")] == [31]
        assert await uow.instances.find_by_name("vm-0") == []
        assert await uow.instances.managed_names() == ["db-1"]


async def test_a_transition_can_replace_the_stored_plan(store: StoreUnderTest) -> None:
    # Group failover moves a refused server's plan to its next group in the same
    # compare-and-set that sends it back to planned.
    request = await add_request(store)
    (a,) = await add_instances(store, request.id, 1)
    await _claim(store, "w1", lease_s=300)
    moved = {**a.spec, "group_id": 2, "group_name": "Amsterdam", "fallback_groups": []}
    async with store.uow() as uow:
        creating = await uow.instances.transition(
            a.id, expected={PLANNED}, new=CREATING, now=NOW, worker="w1"
        )
        assert creating is not None
        back = await uow.instances.transition(
            a.id,
            expected={CREATING},
            new=PLANNED,
            now=NOW,
            worker="w1",
            change=dataclasses.replace(RELEASE, spec=moved, attempts=0),
        )
        await uow.commit()
    assert back is not None
    async with store.uow() as uow:
        stored = await uow.instances.get(a.id)
    assert stored is not None
    assert stored.spec == moved
    assert (stored.state, stored.attempts, stored.lease_owner) == (PLANNED, 0, None)
