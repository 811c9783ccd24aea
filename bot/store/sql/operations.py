"""The ``operations`` table behind `OperationRepo` (day-2 actions with approval)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, or_, select

from bot.provisioning.model import Operation, OperationState
from bot.provisioning.ports import NewOperation, OperationChange
from bot.store._base import Transitions, Values
from bot.store.sql._rows import (
    READ_OPTS,
    SqlRepo,
    compare_and_set,
    operation_record,
    row_values,
)
from bot.store.sql.tables import OperationRow

__all__ = ["SqlOperationRepo"]

_PENDING = OperationState.PENDING_APPROVAL.value


class SqlOperationRepo(SqlRepo, Transitions[Operation, OperationState, OperationChange]):
    """Operations table access; see `bot.provisioning.ports.OperationRepo`."""

    async def add(self, new: NewOperation, *, now: datetime) -> Operation:
        row = OperationRow(**row_values(new, created_at=now, updated_at=now))
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

    async def _compare_and_set(
        self, row_id: int, expected: Collection[OperationState], values: Values, now: datetime
    ) -> Operation | None:
        row = await compare_and_set(self._session, OperationRow, row_id, expected, values, now)
        return operation_record(row) if row is not None else None

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
