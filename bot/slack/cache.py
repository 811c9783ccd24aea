"""A small time-limited cache with one load in flight per key, for what Slack asks often.

Used for the create modal's panel choices (`choices.py`) and user-group membership
(`membership.py`): both must answer within Slack's 3 seconds and must not repeat slow calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    fresh_until: float


class TtlCache(Generic[K, V]):
    """Values of `load(key)`, kept `ttl_s` seconds by `clock` (monotonic seconds).

    Concurrent callers of a stale key share one load. When `fallback` is given, a load that
    raises one of `errors` is replaced by `fallback(key, error, last_value_or_None)`, kept for
    `retry_s`; otherwise the error reaches every waiting caller.
    """

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        *,
        ttl_s: float,
        clock: Callable[[], float],
        fallback: Callable[[K, Exception, V | None], V] | None = None,
        errors: tuple[type[Exception], ...] = (),
        retry_s: float | None = None,
    ) -> None:
        if ttl_s < 0:
            raise ValueError("ttl_s must not be negative")
        self._load = load
        self._ttl_s = ttl_s
        self._clock = clock
        self._fallback = fallback
        self._errors = errors
        self._retry_s = ttl_s if retry_s is None else retry_s
        self._entries: dict[K, _Entry[V]] = {}
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def peek(self, key: K) -> V | None:
        """The cached value while it is fresh, without waiting."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry.fresh_until:
            return entry.value
        return None

    async def get(self, key: K) -> V:
        """The fresh value, loading it if needed."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry.fresh_until:
            return entry.value
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._refresh(key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: one caller giving up must not cancel the load others are waiting for.
        return await asyncio.shield(task)

    def clear(self) -> None:
        """Forget every cached value; the next `get` loads again."""
        self._entries.clear()

    def _forget(self, key: K, task: asyncio.Task[V]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _refresh(self, key: K) -> V:
        try:
            value = await self._load(key)
        except self._errors as error:
            if self._fallback is None:
                raise
            previous = self._entries.get(key)
            value = self._fallback(key, error, previous.value if previous else None)
            self._entries[key] = _Entry(value, self._clock() + self._retry_s)
            return value
        self._entries[key] = _Entry(value, self._clock() + self._ttl_s)
        return value
