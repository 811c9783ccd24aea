"""Memory store only: what it documents beyond the contract (its undo log under interleaving)."""

from __future__ import annotations

from bot.provisioning.model import RequestState
from bot.provisioning.ports import RequestChange
from bot.store.memory import MemoryStore
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_request


def _store() -> tuple[MemoryStore, StoreUnderTest]:
    memory = MemoryStore()
    return memory, StoreUnderTest("memory", memory.uow, memory.slack_store())


async def test_rollback_never_discards_a_later_write_of_another_unit() -> None:
    memory, store = _store()
    request = await add_request(store, state=RequestState.PENDING_APPROVAL)
    first = memory.uow()
    approved = await first.requests.transition(
        request.id,
        expected={RequestState.PENDING_APPROVAL},
        new=RequestState.APPROVED,
        now=NOW,
        change=RequestChange(decided_by="U1"),
    )
    assert approved is not None
    # Another unit sees the uncommitted write (read-uncommitted), moves on and commits.
    async with memory.uow() as second:
        running = await second.requests.transition(
            request.id, expected={RequestState.APPROVED}, new=RequestState.RUNNING, now=NOW
        )
        assert running is not None
        await second.commit()
    await first.rollback()
    async with memory.uow() as uow:
        current = await uow.requests.get(request.id)
    assert current == running


async def test_rollback_undoes_repeated_writes_to_one_row_in_order() -> None:
    memory, store = _store()
    request = await add_request(store, state=RequestState.PENDING_APPROVAL)
    async with memory.uow() as uow:
        for new in (RequestState.APPROVED, RequestState.RUNNING, RequestState.COMPLETED):
            moved = await uow.requests.transition(
                request.id, expected=set(RequestState), new=new, now=NOW
            )
            assert moved is not None
    async with memory.uow() as uow:
        assert await uow.requests.get(request.id) == request


async def test_stores_are_independent() -> None:
    one, two = MemoryStore(), MemoryStore()
    await add_request(StoreUnderTest("memory", one.uow, one.slack_store()))
    assert await one.slack_store().remember_event("Ev1", NOW) is True
    async with two.uow() as uow:
        assert await uow.requests.list_recent() == []
    assert await two.slack_store().remember_event("Ev1", NOW) is True
