"""What both adapters share: the public compare-and-set methods of the ports, each written once
over one primitive that the memory and the SQL repositories implement."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import InstanceChange, OperationChange, RequestChange, changed_fields

__all__ = ["InstanceWrites", "States", "Transitions", "Values"]

States = Collection[InstanceState] | None
"""The states a write expects the row in (None: any)."""
Values = dict[str, object]
"""Column or field values to set, by name (from typed changes)."""

R = TypeVar("R")
S = TypeVar("S", bound=StrEnum)
C = TypeVar("C", RequestChange, OperationChange)


class Transitions(Generic[R, S, C]):
    """`transition` of the request and operation repositories."""

    async def transition(
        self,
        row_id: int,
        /,
        *,
        expected: Collection[S],
        new: S,
        now: datetime,
        change: C | None = None,
    ) -> R | None:
        """Move to `new` only if the state is in `expected`; None when it was not."""
        values = {"state": new, **(changed_fields(change) if change is not None else {})}
        return await self._compare_and_set(row_id, expected, values, now)

    async def _compare_and_set(
        self, row_id: int, expected: Collection[S], values: Values, now: datetime
    ) -> R | None:
        raise NotImplementedError


class InstanceWrites:
    """`transition` and `update` of the instance repositories."""

    async def transition(
        self,
        instance_id: int,
        /,
        *,
        expected: Collection[InstanceState],
        new: InstanceState,
        now: datetime,
        worker: str | None = None,
        change: InstanceChange | None = None,
    ) -> InstanceRecord | None:
        """Move to `new` only if the state is in `expected` and `worker` (if given) holds the
        lease; None otherwise."""
        values = {"state": new, **(changed_fields(change) if change is not None else {})}
        return await self._write(instance_id, now, worker, expected, values)

    async def update(
        self,
        instance_id: int,
        /,
        *,
        now: datetime,
        worker: str | None = None,
        change: InstanceChange,
    ) -> InstanceRecord | None:
        """Apply `change` without a state change; None if the id is missing or `worker` no
        longer holds the lease."""
        return await self._write(instance_id, now, worker, None, changed_fields(change))

    async def _write(
        self, instance_id: int, now: datetime, worker: str | None, expected: States, values: Values
    ) -> InstanceRecord | None:
        raise NotImplementedError
