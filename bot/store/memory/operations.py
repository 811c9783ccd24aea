"""Day-2 operations in memory behind `OperationRepo`, decided and run by compare-and-set."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot.provisioning.model import JsonDict, Operation, OperationKind, OperationState
from bot.provisioning.ports import OperationChange, changed_fields
from bot.store._values import utc
from bot.store.memory._tables import Repo, copied

__all__ = ["MemoryOperationRepo"]

_PENDING = OperationState.PENDING_APPROVAL


class MemoryOperationRepo(Repo):
    """Operations of one memory unit of work; see `bot.provisioning.ports.OperationRepo`."""

    async def add(
        self,
        *,
        kind: OperationKind,
        server_id: int,
        server_name: str,
        requester: str,
        state: OperationState,
        params: JsonDict,
        now: datetime,
        expires_at: datetime | None = None,
        request_id: int | None = None,
        channel: str | None = None,
        decided_by: str | None = None,
        decided_at: datetime | None = None,
        decision_note: str | None = None,
    ) -> Operation:
        return self._save(
            self._t.operations,
            Operation(
                id=self._t.new_id("operations"),
                kind=kind,
                server_id=server_id,
                server_name=server_name,
                requester=requester,
                state=state,
                params=params,
                created_at=now,
                expires_at=expires_at,
                decided_by=decided_by,
                decided_at=decided_at,
                decision_note=decision_note,
                request_id=request_id,
                channel=channel,
            ),
        )

    async def get(self, operation_id: int) -> Operation | None:
        record = self._t.operations.get(operation_id)
        return None if record is None else copied(record)

    async def transition(
        self,
        operation_id: int,
        *,
        expected: Collection[OperationState],
        new: OperationState,
        now: datetime,
        change: OperationChange = OperationChange(),  # noqa: B008  # frozen: safe to share
    ) -> Operation | None:
        utc(now)  # kept by SQL only (operations have no updated_at field), but checked alike
        current = self._t.operations.get(operation_id)
        if current is None or current.state not in expected:
            return None
        return self._save(self._t.operations, current, {"state": new, **changed_fields(change)})

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
