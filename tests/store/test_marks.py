"""MarkRepo contract: compare-and-set on named marks, one winner among concurrent setters."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.store.conftest import NOW, StoreUnderTest


async def _put(
    store: StoreUnderTest, key: str, expected: str | None, value: str, *, at_s: float = 0
) -> bool:
    async with store.uow() as uow:
        done = await uow.marks.put_if(
            key, expected=expected, value=value, now=NOW + timedelta(seconds=at_s)
        )
        await uow.commit()
    return done


async def _get(store: StoreUnderTest, *keys: str) -> dict[str, str]:
    async with store.uow() as uow:
        return await uow.marks.get_many(keys)


async def test_set_once_then_compare_and_set(store: StoreUnderTest) -> None:
    assert await _get(store, "capacity:1:memory") == {}
    assert await _put(store, "capacity:1:memory", None, "low") is True
    assert await _put(store, "capacity:1:memory", None, "ok") is False  # set already
    assert await _put(store, "capacity:1:memory", "ok", "low") is False  # it holds low
    assert await _get(store, "capacity:1:memory", "other") == {"capacity:1:memory": "low"}
    assert await _put(store, "capacity:1:memory", "low", "ok") is True
    assert await _get(store, "capacity:1:memory") == {"capacity:1:memory": "ok"}
    async with store.uow() as uow:
        assert await uow.marks.get_many([]) == {}


async def test_without_commit_nothing_is_set(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        assert await uow.marks.put_if("daily-report", expected=None, value="a", now=NOW)
    assert await _get(store, "daily-report") == {}
    assert await _put(store, "daily-report", None, "b") is True


async def test_prune_by_prefix_and_age(store: StoreUnderTest) -> None:
    await _put(store, "traffic:1", None, "p1")
    await _put(store, "traffic:2", None, "p1", at_s=100)
    await _put(store, "traffic_x", None, "p1")  # "_" is no wildcard
    await _put(store, "capacity:1:disk", None, "low")
    async with store.uow() as uow:
        assert await uow.marks.prune("traffic:", before=NOW + timedelta(seconds=50)) == 1
        await uow.commit()
    keys = ("traffic:1", "traffic:2", "traffic_x", "capacity:1:disk")
    assert set(await _get(store, *keys)) == {"traffic:2", "traffic_x", "capacity:1:disk"}


async def test_concurrent_setters_one_wins(store: StoreUnderTest) -> None:
    """Replicas that read the same value race to move it: exactly one succeeds, whether the
    mark is new or moves from a value."""

    async def attempt(expected: str | None, value: str) -> bool:
        async with store.uow() as uow:
            done = await uow.marks.put_if("k", expected=expected, value=value, now=NOW)
            await asyncio.sleep(0)  # let the others reach the same row before committing
            await uow.commit()
        return done

    first = await asyncio.gather(*(attempt(None, f"w{i}") for i in range(4)))
    assert sum(first) == 1
    (winner,) = (await _get(store, "k")).values()
    second = await asyncio.gather(*(attempt(winner, f"v{i}") for i in range(4)))
    assert sum(second) == 1
