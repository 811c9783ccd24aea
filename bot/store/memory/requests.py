"""Requests in memory behind `RequestRepo`: idempotent on their key, changed by compare-and-set."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection
from datetime import datetime

from bot.provisioning.model import RequestRecord, RequestState
from bot.provisioning.ports import NewRequest, RequestChange
from bot.store._base import Transitions, Values
from bot.store._values import utc
from bot.store.memory._tables import Repo, copied

__all__ = ["MemoryRequestRepo"]


class MemoryRequestRepo(Repo, Transitions[RequestRecord, RequestState, RequestChange]):
    """Requests of one memory unit of work; see `bot.provisioning.ports.RequestRepo`."""

    async def add_or_get(self, new: NewRequest, *, now: datetime) -> tuple[RequestRecord, bool]:
        existing = await self.get_by_key(new.key)
        if existing is not None:
            return existing, False
        record = RequestRecord(
            id=self._t.new_id("requests"),
            **dataclasses.asdict(new),
            created_at=now,
            updated_at=now,
            decided_by=None,
            decided_at=None,
            decision_note=None,
            cancel_requested=False,
            delete_on_cancel=False,
        )
        return self._save(self._t.requests, record), True

    def _sorted(self) -> list[RequestRecord]:
        return sorted(self._t.requests.values(), key=lambda r: r.id)

    async def get(self, request_id: int) -> RequestRecord | None:
        record = self._t.requests.get(request_id)
        return None if record is None else copied(record)

    async def get_many(self, request_ids: Collection[int]) -> dict[int, RequestRecord]:
        return {i: copied(self._t.requests[i]) for i in set(request_ids) if i in self._t.requests}

    async def get_by_key(self, key: str) -> RequestRecord | None:
        return next((copied(r) for r in self._t.requests.values() if r.key == key), None)

    async def list_recent(
        self, *, requester: str | None = None, limit: int = 20
    ) -> list[RequestRecord]:
        rows = [
            r for r in reversed(self._sorted()) if (requester is None or r.requester == requester)
        ]
        return [copied(r) for r in rows[: max(limit, 0)]]

    async def list_by_state(self, states: Collection[RequestState]) -> list[RequestRecord]:
        return [copied(r) for r in self._sorted() if r.state in states]

    async def list_expired(self, now: datetime) -> list[RequestRecord]:
        now = utc(now)
        return [
            copied(r)
            for r in self._sorted()
            if r.state is RequestState.PENDING_APPROVAL
            and r.expires_at is not None
            and r.expires_at <= now
        ]

    async def count_by_state(self) -> dict[RequestState, int]:
        return dict(Counter(r.state for r in self._t.requests.values()))

    async def _compare_and_set(
        self, row_id: int, expected: Collection[RequestState], values: Values, now: datetime
    ) -> RequestRecord | None:
        now = utc(now)  # a naive one is refused even when nothing changes, as in SQL
        current = self._t.requests.get(row_id)
        if current is None or current.state not in expected:
            return None
        return self._save(self._t.requests, current, {**values, "updated_at": now})
