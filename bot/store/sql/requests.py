"""The ``requests`` table behind `RequestRepo`."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, func, select

from bot.provisioning.model import RequestRecord, RequestState
from bot.provisioning.ports import NewRequest, RequestChange
from bot.store._base import Transitions, Values
from bot.store.sql._rows import (
    READ_OPTS,
    SqlRepo,
    compare_and_set,
    insert,
    request_record,
    row_values,
)
from bot.store.sql.tables import RequestRow

__all__ = ["SqlRequestRepo"]


class SqlRequestRepo(SqlRepo, Transitions[RequestRecord, RequestState, RequestChange]):
    """Requests table access; see `bot.provisioning.ports.RequestRepo`."""

    async def add_or_get(self, new: NewRequest, *, now: datetime) -> tuple[RequestRecord, bool]:
        values = row_values(
            new, created_at=now, updated_at=now, cancel_requested=False, delete_on_cancel=False
        )
        stmt = (
            insert(self._dialect, RequestRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(RequestRow.id)
        )
        created = (await self._session.execute(stmt)).scalar_one_or_none() is not None
        record = await self.get_by_key(new.key)
        if record is None:  # pragma: no cover - the row was inserted or already existed
            raise RuntimeError(f"request with key {new.key!r} vanished after insert")
        return record, created

    async def _one(self, stmt: Select[RequestRow]) -> RequestRecord | None:
        row = (await self._session.scalars(stmt.execution_options(**READ_OPTS))).one_or_none()
        return None if row is None else request_record(row)

    async def _many(self, stmt: Select[RequestRow]) -> list[RequestRecord]:
        rows = (await self._session.scalars(stmt.execution_options(**READ_OPTS))).all()
        return [request_record(row) for row in rows]

    async def get(self, request_id: int) -> RequestRecord | None:
        return await self._one(select(RequestRow).where(RequestRow.id == request_id))

    async def get_many(self, request_ids: Collection[int]) -> dict[int, RequestRecord]:
        if not request_ids:
            return {}
        records = await self._many(select(RequestRow).where(RequestRow.id.in_(set(request_ids))))
        return {r.id: r for r in records}

    async def get_by_key(self, key: str) -> RequestRecord | None:
        return await self._one(select(RequestRow).where(RequestRow.key == key))

    async def list_recent(
        self, *, requester: str | None = None, limit: int = 20
    ) -> list[RequestRecord]:
        stmt = select(RequestRow).order_by(RequestRow.id.desc()).limit(limit)
        if requester is not None:
            stmt = stmt.where(RequestRow.requester == requester)
        return await self._many(stmt)

    async def list_by_state(self, states: Collection[RequestState]) -> list[RequestRecord]:
        stmt = (
            select(RequestRow)
            .where(RequestRow.state.in_([s.value for s in states]))
            .order_by(RequestRow.id)
        )
        return await self._many(stmt)

    async def list_expired(self, now: datetime) -> list[RequestRecord]:
        stmt = (
            select(RequestRow)
            .where(
                RequestRow.state == RequestState.PENDING_APPROVAL.value,
                RequestRow.expires_at.is_not(None),
                RequestRow.expires_at <= now,
            )
            .order_by(RequestRow.id)
        )
        return await self._many(stmt)

    async def count_by_state(self) -> dict[RequestState, int]:
        stmt = select(RequestRow.state, func.count()).group_by(RequestRow.state)
        return {RequestState(state): n for state, n in (await self._session.execute(stmt)).all()}

    async def _compare_and_set(
        self, row_id: int, expected: Collection[RequestState], values: Values, now: datetime
    ) -> RequestRecord | None:
        row = await compare_and_set(self._session, RequestRow, row_id, expected, values, now)
        return request_record(row) if row is not None else None
