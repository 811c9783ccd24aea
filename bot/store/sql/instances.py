"""The ``instances`` table behind `InstanceRepo`: leases, compare-and-set, unique server ids."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    TERMINAL_INSTANCE_STATES,
    InstanceRecord,
    InstanceState,
    NewInstance,
    RequestState,
)
from bot.provisioning.ports import (
    Claim,
    ExpiryStage,
    ServerAlreadyClaimedError,
    ServerQuery,
)
from bot.store._base import InstanceWrites, States, Values
from bot.store._values import json_copy, utc
from bot.store.sql._rows import READ_OPTS, WRITE_OPTS, SqlRepo, instance_record
from bot.store.sql.tables import InstanceRow, RequestRow

__all__ = ["SqlInstanceRepo"]


class SqlInstanceRepo(SqlRepo, InstanceWrites):
    """Instances table access, with leases; see `bot.provisioning.ports.InstanceRepo`."""

    async def add_many(
        self, request_id: int, items: Sequence[NewInstance], now: datetime
    ) -> list[InstanceRecord]:
        rows = [
            InstanceRow(
                request_id=request_id,
                position=item.position,
                name=item.name,
                state=InstanceState.PLANNED.value,
                spec=json_copy(item.spec),
                ipv4=[],
                attempts=0,
                created_at=utc(now),
                updated_at=utc(now),
            )
            for item in items
        ]
        self._session.add_all(rows)
        await self._session.flush()
        records = [instance_record(row) for row in rows]
        # Drop the rows from the identity map: later reads always go to the database.
        for row in rows:
            self._session.expunge(row)
        return sorted(records, key=lambda r: r.position)

    async def _many(self, stmt: Select[InstanceRow]) -> list[InstanceRecord]:
        rows = (await self._session.scalars(stmt.execution_options(**READ_OPTS))).all()
        return [instance_record(row) for row in rows]

    async def _one(self, stmt: Select[InstanceRow]) -> InstanceRecord | None:
        found = await self._many(stmt)
        return found[0] if found else None

    async def get(self, instance_id: int, *, lock: bool = False) -> InstanceRecord | None:
        stmt = select(InstanceRow).where(InstanceRow.id == instance_id)
        return await self._one(stmt.with_for_update() if lock else stmt)

    async def list_for_request(self, request_id: int) -> list[InstanceRecord]:
        stmt = (
            select(InstanceRow)
            .where(InstanceRow.request_id == request_id)
            .order_by(InstanceRow.position, InstanceRow.id)
        )
        return await self._many(stmt)

    async def get_by_server_id(self, server_id: int) -> InstanceRecord | None:
        return await self._one(select(InstanceRow).where(InstanceRow.server_id == server_id))

    async def get_by_server_ids(self, server_ids: Collection[int]) -> dict[int, InstanceRecord]:
        if not server_ids:
            return {}
        stmt = select(InstanceRow).where(InstanceRow.server_id.in_(set(server_ids)))
        return {r.server_id: r for r in await self._many(stmt) if r.server_id is not None}

    async def claimed_server_ids(self) -> set[int]:
        stmt = select(InstanceRow.server_id).where(InstanceRow.server_id.is_not(None))
        return {sid for sid in (await self._session.scalars(stmt)).all() if sid is not None}

    async def expiring(
        self,
        *,
        before: datetime,
        requester: str | None = None,
        limit: int = 200,
        pending_only: bool = False,
    ) -> list[InstanceRecord]:
        stmt = (
            select(InstanceRow)
            .where(
                InstanceRow.expires_at.is_not(None),
                InstanceRow.expires_at <= utc(before),
                *self._live_with_server(),
            )
            .order_by(InstanceRow.expires_at, InstanceRow.id)
            .limit(max(limit, 0))
        )
        if requester is not None:
            stmt = stmt.where(
                InstanceRow.request_id.in_(
                    select(RequestRow.id).where(RequestRow.requester == requester)
                )
            )
        if pending_only:
            done = InstanceRow.expiry_done_for
            stmt = stmt.where(or_(done.is_(None), done != InstanceRow.expires_at))
        return await self._many(stmt)

    async def claim_expiry(
        self, instance_id: int, /, *, stage: ExpiryStage, expires_at: datetime, now: datetime
    ) -> InstanceRecord | None:
        column = getattr(InstanceRow, stage.value)
        stmt = (
            update(InstanceRow)
            .where(
                InstanceRow.id == instance_id,
                InstanceRow.expires_at == utc(expires_at),
                InstanceRow.state != InstanceState.DELETED.value,
                or_(column.is_(None), column != utc(expires_at)),
            )
            .values({stage.value: utc(expires_at), "updated_at": utc(now)})
            .returning(InstanceRow)
            .execution_options(**WRITE_OPTS)
        )
        row = (await self._session.scalars(stmt)).one_or_none()
        return None if row is None else instance_record(row)

    async def list_in_flight(self) -> list[InstanceRecord]:
        return await self.list_by_states(IN_FLIGHT_INSTANCE_STATES)

    async def unfinished_counts(self, request_ids: Collection[int]) -> dict[int, int]:
        counts = dict.fromkeys(request_ids, 0)
        if not counts:
            return counts
        stmt = (
            select(InstanceRow.request_id, func.count())
            .where(
                InstanceRow.request_id.in_(list(counts)),
                InstanceRow.state.not_in([s.value for s in TERMINAL_INSTANCE_STATES]),
            )
            .group_by(InstanceRow.request_id)
        )
        for request_id, count in (await self._session.execute(stmt)).all():
            counts[request_id] = int(count)
        return counts

    async def list_by_states(
        self,
        states: Collection[InstanceState],
        *,
        request_states: Collection[RequestState] | None = None,
    ) -> list[InstanceRecord]:
        stmt = (
            select(InstanceRow)
            .where(InstanceRow.state.in_([s.value for s in states]))
            .order_by(InstanceRow.id)
        )
        if request_states is not None:
            stmt = stmt.join(RequestRow, RequestRow.id == InstanceRow.request_id).where(
                RequestRow.state.in_([s.value for s in request_states])
            )
        return await self._many(stmt)

    async def count_by_state(self) -> dict[InstanceState, int]:
        stmt = select(InstanceRow.state, func.count()).group_by(InstanceRow.state)
        return {InstanceState(state): n for state, n in (await self._session.execute(stmt)).all()}

    async def count_leased(self, worker: str, now: datetime) -> int:
        stmt = select(func.count()).where(
            InstanceRow.lease_owner == worker, InstanceRow.lease_until > utc(now)
        )
        return int((await self._session.execute(stmt)).scalar_one())

    async def claim(self, claim: Claim) -> list[InstanceRecord]:
        now = claim.now
        due = (
            select(InstanceRow.id)
            .where(
                InstanceRow.state.in_([s.value for s in claim.states]),
                or_(InstanceRow.lease_until.is_(None), InstanceRow.lease_until <= now),
                or_(InstanceRow.next_check_at.is_(None), InstanceRow.next_check_at <= now),
            )
            .order_by(InstanceRow.id)
            .limit(claim.limit)
        )
        if claim.request_states is not None:
            due = due.join(RequestRow, RequestRow.id == InstanceRow.request_id).where(
                RequestRow.state.in_([s.value for s in claim.request_states])
            )
        if self._dialect == "postgresql":
            # Lock the picked rows and skip rows another claimer holds: no double lease.
            due = due.with_for_update(skip_locked=True, of=InstanceRow)
        # On SQLite this single UPDATE holds the one write lock, so the sub-select cannot race.
        stmt = (
            update(InstanceRow)
            .where(InstanceRow.id.in_(due))
            .values(
                lease_owner=claim.worker,
                lease_until=now + timedelta(seconds=claim.lease_s),
                updated_at=now,
            )
            .returning(InstanceRow)
            .execution_options(**WRITE_OPTS)
        )
        rows = (await self._session.scalars(stmt)).all()
        return sorted((instance_record(row) for row in rows), key=lambda r: r.id)

    def _live_with_server(self) -> list[ColumnElement[bool]]:
        return [
            InstanceRow.server_id.is_not(None),
            InstanceRow.state != InstanceState.DELETED.value,
        ]

    async def find_by_name(self, name: str) -> list[InstanceRecord]:
        stmt = (
            select(InstanceRow)
            .where(func.lower(InstanceRow.name) == name.strip().lower(), *self._live_with_server())
            .order_by(InstanceRow.id.desc())
        )
        return await self._many(stmt)

    async def managed_names(self, *, limit: int = 1000) -> list[str]:
        stmt = (
            select(InstanceRow.name)
            .where(*self._live_with_server())
            .distinct()
            .order_by(InstanceRow.name)
            .limit(limit)
        )
        return list((await self._session.scalars(stmt)).all())

    async def list_with_servers(self, query: ServerQuery) -> tuple[list[InstanceRecord], int]:
        conditions: list[ColumnElement[bool]] = [InstanceRow.server_id.is_not(None)]
        if not query.include_deleted:
            conditions.append(InstanceRow.state != InstanceState.DELETED.value)
        if query.request_id is not None:
            conditions.append(InstanceRow.request_id == query.request_id)
        if query.requester is not None:
            conditions.append(
                InstanceRow.request_id.in_(
                    select(RequestRow.id).where(RequestRow.requester == query.requester)
                )
            )
        total_stmt = select(func.count()).select_from(InstanceRow).where(*conditions)
        total = int((await self._session.execute(total_stmt)).scalar_one())
        stmt = (
            select(InstanceRow)
            .where(*conditions)
            .order_by(InstanceRow.id.desc())
            .limit(max(query.limit, 0))
            .offset(max(query.offset, 0))
        )
        return await self._many(stmt), total

    async def _write(
        self, instance_id: int, now: datetime, worker: str | None, expected: States, values: Values
    ) -> InstanceRecord | None:
        stmt = update(InstanceRow).where(InstanceRow.id == instance_id)
        if expected is not None:
            stmt = stmt.where(InstanceRow.state.in_([s.value for s in expected]))
        if worker is not None:
            stmt = stmt.where(InstanceRow.lease_owner == worker)
        final = (
            stmt.values(updated_at=now, **values)
            .returning(InstanceRow)
            .execution_options(**WRITE_OPTS)
        )
        server_id = values.get("server_id")
        # A savepoint keeps the caller's PostgreSQL transaction usable after a unique violation;
        # SQLite rolls back only the failing statement, never the transaction.
        nested: AbstractAsyncContextManager[object] = (
            self._session.begin_nested()
            if server_id is not None and self._dialect == "postgresql"
            else nullcontext()
        )
        try:
            async with nested:
                row = (await self._session.scalars(final)).one_or_none()
        except IntegrityError as exc:
            if not isinstance(server_id, int):
                raise
            raise ServerAlreadyClaimedError(server_id) from exc
        return None if row is None else instance_record(row)

    async def release(
        self, instance_id: int, *, worker: str, next_check_at: datetime | None, now: datetime
    ) -> None:
        stmt = (
            update(InstanceRow)
            .where(InstanceRow.id == instance_id, InstanceRow.lease_owner == worker)
            .values(lease_owner=None, lease_until=None, next_check_at=next_check_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(stmt)
