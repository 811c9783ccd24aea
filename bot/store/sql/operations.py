"""The ``operations`` table behind `OperationRepo` (day-2 actions with approval)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, or_, select

from bot.provisioning.model import JsonDict, Operation, OperationKind, OperationState
from bot.provisioning.ports import OperationChange, changed_fields
from bot.store._values import json_copy, utc
from bot.store.sql._rows import READ_OPTS, SqlRepo, compare_and_set, operation_record
from bot.store.sql.tables import OperationRow

__all__ = ["SqlOperationRepo"]

_PENDING = OperationState.PENDING_APPROVAL.value


class SqlOperationRepo(SqlRepo):
    """Operations table access; see `bot.provisioning.ports.OperationRepo`."""

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
        row = OperationRow(
            kind=kind.value,
            server_id=server_id,
            server_name=server_name,
            requester=requester,
            state=state.value,
            params=json_copy(params),
            created_at=utc(now),
            updated_at=utc(now),
            expires_at=utc(expires_at),
            request_id=request_id,
            channel=channel,
            decided_by=decided_by,
            decided_at=utc(decided_at),
            decision_note=decision_note,
        )
        self._session.add(row)
        await self._session.flush()
        record = operation_record(row)
        self._session.expunge(row)
        return record

    async def _many(self, stmt: Select[OperationRow]) -> list[Operation]:
        rows = await self._session.scalars(stmt.execution_options(**READ_OPTS))
        return [operation_record(row) for row in rows.all()]

    async def get(self, operation_id: int) -> Operation | None:
        found = await self._many(select(OperationRow).where(OperationRow.id == operation_id))
        return found[0] if found else None

    async def transition(
        self,
        operation_id: int,
        *,
        expected: Collection[OperationState],
        new: OperationState,
        now: datetime,
        change: OperationChange = OperationChange(),  # noqa: B008  # frozen: safe to share
    ) -> Operation | None:
        values = {"state": new.value, "updated_at": now, **changed_fields(change)}
        row = await compare_and_set(
            self._session, OperationRow, operation_id, expected=expected, values=values
        )
        return None if row is None else operation_record(row)

    async def list_by_states(
        self, states: Collection[OperationState], *, server_id: int | None = None
    ) -> list[Operation]:
        stmt = select(OperationRow).where(OperationRow.state.in_([s.value for s in states]))
        if server_id is not None:
            stmt = stmt.where(OperationRow.server_id == server_id)
        return await self._many(stmt.order_by(OperationRow.id))

    async def list_pending(self, now: datetime | None = None) -> list[Operation]:
        stmt = select(OperationRow).where(OperationRow.state == _PENDING)
        if now is not None:
            stmt = stmt.where(or_(OperationRow.expires_at.is_(None), OperationRow.expires_at > now))
        return await self._many(stmt.order_by(OperationRow.id))

    async def list_expired(self, now: datetime) -> list[Operation]:
        stmt = select(OperationRow).where(
            OperationRow.state == _PENDING,
            OperationRow.expires_at.is_not(None),
            OperationRow.expires_at <= now,
        )
        return await self._many(stmt.order_by(OperationRow.id))
