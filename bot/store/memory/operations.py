"""Day-2 operations in memory behind `OperationRepo`, decided and run by compare-and-set."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime

from bot.provisioning.model import Operation, OperationState
from bot.provisioning.ports import NewOperation, OperationChange
from bot.store._base import Transitions, Values
from bot.store._values import utc
from bot.store.memory._tables import Repo, copied

__all__ = ["MemoryOperationRepo"]

_PENDING = OperationState.PENDING_APPROVAL


class MemoryOperationRepo(Repo, Transitions[Operation, OperationState, OperationChange]):
    """Operations of one memory unit of work; see `bot.provisioning.ports.OperationRepo`."""

    async def add(self, new: NewOperation, *, now: datetime) -> Operation:
        record = Operation(
            id=self._t.new_id("operations"), created_at=now, **dataclasses.asdict(new)
        )
        return self._save(self._t.operations, record)

    async def get(self, operation_id: int) -> Operation | None:
        record = self._t.operations.get(operation_id)
        return None if record is None else copied(record)

    async def _compare_and_set(
        self, row_id: int, expected: Collection[OperationState], values: Values, now: datetime
    ) -> Operation | None:
        utc(now)  # kept by SQL only (operations have no updated_at field), but checked alike
        current = self._t.operations.get(row_id)
        if current is None or current.state not in expected:
            return None
        return self._save(self._t.operations, current, values)

    def _sorted(self) -> list[Operation]:
        return sorted(self._t.operations.values(), key=lambda o: o.id)

    async def list_by_states(
        self, states: Collection[OperationState], *, server_id: int | None = None
    ) -> list[Operation]:
        return [
            copied(o)
            for o in self._sorted()
            if o.state in states and (server_id is None or o.server_id == server_id)
        ]

    async def list_pending(self, now: datetime | None = None) -> list[Operation]:
        after = None if now is None else utc(now)
        return [
            copied(o)
            for o in self._sorted()
            if o.state is _PENDING
            and (after is None or o.expires_at is None or o.expires_at > after)
        ]

    async def list_expired(self, now: datetime) -> list[Operation]:
        now = utc(now)
        return [
            copied(o)
            for o in self._sorted()
            if o.state is _PENDING and o.expires_at is not None and o.expires_at <= now
        ]
