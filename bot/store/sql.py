"""SQL adapter of the store (SQLite/aiosqlite and PostgreSQL/asyncpg); never commits for the caller.

The only module importing ``sqlalchemy.ext.asyncio``. Every state change is one compare-and-set
``UPDATE ... WHERE state IN (:expected)`` and every claim is one atomic statement, so SQLite (one
writer at a time) and PostgreSQL (``FOR UPDATE SKIP LOCKED`` / ``ON CONFLICT``) agree.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from sqlalchemy import (
    Select,
    String,
    and_,
    delete,
    event,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import aliased
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import ColumnElement

from bot.store.models import (
    AuditRow,
    Base,
    EventDeliveryRow,
    EventRow,
    InstanceRow,
    OperationRow,
    RequestRow,
    SlackEventRow,
    UtcDateTime,
)
from bot.store.records import (
    IN_FLIGHT_INSTANCE_STATES,
    AuditRecord,
    EventRecord,
    InstanceRecord,
    InstanceState,
    JsonDict,
    NewInstance,
    Operation,
    OperationKind,
    OperationState,
    RequestNotFoundError,
    RequestRecord,
    RequestState,
    ServerAlreadyClaimedError,
)

__all__ = [
    "Database",
    "SqlAuditRepo",
    "SqlEventRepo",
    "SqlInstanceRepo",
    "SqlOperationRepo",
    "SqlRequestRepo",
    "SqlSlackEventRepo",
    "SqlUnitOfWork",
    "normalize_database_url",
]

_SCHEME_ALIASES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Serialises `create_all` across replicas starting at once (arbitrary constant key).
_DDL_LOCK_KEY = 0x76666274

_REQUEST_FIELDS = frozenset(
    {
        "decided_by",
        "decided_at",
        "decision_note",
        "cancel_requested",
        "delete_on_cancel",
        "plan",
        "slack_channel",
        "slack_ts",
        "slack_notice_ts",
    }
)
_INSTANCE_FIELDS = frozenset(
    {
        "server_id",
        "hypervisor_id",
        "group_id",
        "ipv4",
        "os_name",
        "error",
        "attempts",
        "intent_at",
        "build_started_at",
        "finished_at",
        "next_check_at",
        "lease_owner",
        "lease_until",
        "spec",
    }
)
_OPERATION_FIELDS = frozenset(
    {
        "decided_by",
        "decided_at",
        "decision_note",
        "result",
        "params",
        "expires_at",
        "slack_channel",
        "slack_ts",
    }
)
# ORM-enabled UPDATE/INSERT: don't evaluate the WHERE against loaded objects, and refresh any
# object already in the identity map from RETURNING so a UoW never reads its own stale copy.
_WRITE_OPTS = {"synchronize_session": False, "populate_existing": True}
_READ_OPTS = {"populate_existing": True}


def normalize_database_url(url: str) -> str:
    """Rewrite ``postgres://``, ``postgresql://`` and ``sqlite://`` URLs to their async drivers.

    Raises ``ValueError`` for any other scheme (the message names the scheme, never the URL).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("database URL must look like scheme://...")
    target = _SCHEME_ALIASES.get(scheme.lower())
    if target is None:
        raise ValueError(f"unsupported database URL scheme {scheme!r}")
    return f"{target}://{rest}"


def _check_fields(fields: Mapping[str, object], allowed: frozenset[str]) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")


def _insert(dialect: str, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    if dialect == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


def _request_record(row: RequestRow) -> RequestRecord:
    return RequestRecord(
        id=row.id,
        key=row.key,
        requester=row.requester,
        source=row.source,
        project_name=row.project_name,
        payload=row.payload,
        plan=row.plan,
        state=RequestState(row.state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        expires_at=row.expires_at,
        slack_channel=row.slack_channel,
        slack_ts=row.slack_ts,
        slack_notice_ts=row.slack_notice_ts,
        cancel_requested=row.cancel_requested,
        delete_on_cancel=row.delete_on_cancel,
    )


def _instance_record(row: InstanceRow) -> InstanceRecord:
    return InstanceRecord(
        id=row.id,
        request_id=row.request_id,
        position=row.position,
        name=row.name,
        state=InstanceState(row.state),
        spec=row.spec,
        server_id=row.server_id,
        hypervisor_id=row.hypervisor_id,
        group_id=row.group_id,
        ipv4=list(row.ipv4),
        os_name=row.os_name,
        error=row.error,
        attempts=row.attempts,
        intent_at=row.intent_at,
        build_started_at=row.build_started_at,
        finished_at=row.finished_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        next_check_at=row.next_check_at,
        updated_at=row.updated_at,
        created_at=row.created_at,
    )


def _event_record(row: EventRow) -> EventRecord:
    return EventRecord(
        id=row.id,
        request_id=row.request_id,
        instance_id=row.instance_id,
        kind=row.kind,
        payload=row.payload,
        created_at=row.created_at,
    )


def _operation(row: OperationRow) -> Operation:
    return Operation(
        id=row.id,
        kind=OperationKind(row.kind),
        server_id=row.server_id,
        server_name=row.server_name,
        requester=row.requester,
        state=OperationState(row.state),
        params=dict(row.params),
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        result=row.result,
        request_id=row.request_id,
        slack_channel=row.slack_channel,
        slack_ts=row.slack_ts,
    )


def _audit_record(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        result=row.result,
        detail=row.detail,
    )


class SqlRequestRepo:
    """Requests table access; see ``bot.store.RequestRepo``."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._dialect = dialect

    async def add_or_get(
        self,
        *,
        key: str,
        requester: str,
        source: str,
        project_name: str,
        payload: JsonDict,
        plan: JsonDict | None,
        state: RequestState,
        now: datetime,
        expires_at: datetime | None = None,
        slack_channel: str | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Insert the request unless ``key`` exists; return it and whether it was created now."""
        stmt = (
            _insert(self._dialect, RequestRow)
            .values(
                key=key,
                requester=requester,
                source=source,
                project_name=project_name,
                payload=payload,
                plan=plan,
                state=state.value,
                created_at=now,
                updated_at=now,
                expires_at=expires_at,
                slack_channel=slack_channel,
                cancel_requested=False,
                delete_on_cancel=False,
            )
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(RequestRow.id)
        )
        created = (await self._session.execute(stmt)).scalar_one_or_none() is not None
        record = await self.get_by_key(key)
        if record is None:  # pragma: no cover - the row was inserted or already existed
            raise RuntimeError(f"request with key {key!r} vanished after insert")
        return record, created

    async def _one(self, stmt: Select[RequestRow]) -> RequestRecord | None:
        row = (await self._session.scalars(stmt.execution_options(**_READ_OPTS))).one_or_none()
        return None if row is None else _request_record(row)

    async def _many(self, stmt: Select[RequestRow]) -> list[RequestRecord]:
        rows = (await self._session.scalars(stmt.execution_options(**_READ_OPTS))).all()
        return [_request_record(row) for row in rows]

    async def get(self, request_id: int) -> RequestRecord | None:
        """Return the request with this id, or None."""
        return await self._one(select(RequestRow).where(RequestRow.id == request_id))

    async def get_by_key(self, key: str) -> RequestRecord | None:
        """Return the request with this idempotency key, or None."""
        return await self._one(select(RequestRow).where(RequestRow.key == key))

    async def list_recent(
        self,
        *,
        requester: str | None = None,
        limit: int = 20,
        states: Collection[RequestState] | None = None,
    ) -> list[RequestRecord]:
        """Return up to ``limit`` requests, newest first, optionally filtered."""
        stmt = select(RequestRow).order_by(RequestRow.id.desc()).limit(limit)
        if requester is not None:
            stmt = stmt.where(RequestRow.requester == requester)
        if states is not None:
            stmt = stmt.where(RequestRow.state.in_([s.value for s in states]))
        return await self._many(stmt)

    async def list_by_state(self, states: Collection[RequestState]) -> list[RequestRecord]:
        """Return every request in one of ``states``, oldest first."""
        stmt = (
            select(RequestRow)
            .where(RequestRow.state.in_([s.value for s in states]))
            .order_by(RequestRow.id)
        )
        return await self._many(stmt)

    async def list_expired(self, now: datetime) -> list[RequestRecord]:
        """Return pending requests whose ``expires_at`` is at or before ``now``."""
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

    async def transition(
        self,
        request_id: int,
        *,
        expected: Collection[RequestState],
        new: RequestState,
        now: datetime,
        **fields: object,
    ) -> RequestRecord | None:
        """Move to ``new`` only if the state is in ``expected``; None when it was not."""
        _check_fields(fields, _REQUEST_FIELDS)
        stmt = (
            update(RequestRow)
            .where(
                RequestRow.id == request_id,
                RequestRow.state.in_([s.value for s in expected]),
            )
            .values(state=new.value, updated_at=now, **fields)
            .returning(RequestRow)
            .execution_options(**_WRITE_OPTS)
        )
        row = (await self._session.scalars(stmt)).one_or_none()
        return None if row is None else _request_record(row)

    async def update(self, request_id: int, *, now: datetime, **fields: object) -> RequestRecord:
        """Set ``fields`` without changing the state; raises ``RequestNotFoundError``."""
        _check_fields(fields, _REQUEST_FIELDS)
        stmt = (
            update(RequestRow)
            .where(RequestRow.id == request_id)
            .values(updated_at=now, **fields)
            .returning(RequestRow)
            .execution_options(**_WRITE_OPTS)
        )
        row = (await self._session.scalars(stmt)).one_or_none()
        if row is None:
            raise RequestNotFoundError(request_id)
        return _request_record(row)


class SqlInstanceRepo:
    """Instances table access, with leases; see ``bot.store.InstanceRepo``."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._dialect = dialect

    async def add_many(
        self, request_id: int, items: Sequence[NewInstance], now: datetime
    ) -> list[InstanceRecord]:
        """Insert ``items`` as planned instances of the request; returned by position."""
        rows = [
            InstanceRow(
                request_id=request_id,
                position=item.position,
                name=item.name,
                state=InstanceState.PLANNED.value,
                spec=item.spec,
                ipv4=[],
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            for item in items
        ]
        self._session.add_all(rows)
        await self._session.flush()
        records = [_instance_record(row) for row in rows]
        # Drop the rows from the identity map: later reads always go to the database.
        for row in rows:
            self._session.expunge(row)
        return sorted(records, key=lambda r: r.position)

    async def _one(self, stmt: Select[InstanceRow]) -> InstanceRecord | None:
        row = (await self._session.scalars(stmt.execution_options(**_READ_OPTS))).one_or_none()
        return None if row is None else _instance_record(row)

    async def _many(self, stmt: Select[InstanceRow]) -> list[InstanceRecord]:
        rows = (await self._session.scalars(stmt.execution_options(**_READ_OPTS))).all()
        return [_instance_record(row) for row in rows]

    async def get(self, instance_id: int) -> InstanceRecord | None:
        """Return the instance with this id, or None."""
        return await self._one(select(InstanceRow).where(InstanceRow.id == instance_id))

    async def list_for_request(self, request_id: int) -> list[InstanceRecord]:
        """Return the request's instances by position."""
        stmt = (
            select(InstanceRow)
            .where(InstanceRow.request_id == request_id)
            .order_by(InstanceRow.position, InstanceRow.id)
        )
        return await self._many(stmt)

    async def get_by_server_id(self, server_id: int) -> InstanceRecord | None:
        """Return the instance that adopted this panel server, or None."""
        return await self._one(select(InstanceRow).where(InstanceRow.server_id == server_id))

    async def claimed_server_ids(self) -> set[int]:
        """Return every panel server id recorded on an instance."""
        stmt = select(InstanceRow.server_id).where(InstanceRow.server_id.is_not(None))
        return {sid for sid in (await self._session.scalars(stmt)).all() if sid is not None}

    async def list_in_flight(self) -> list[InstanceRecord]:
        """Return instances between create intent and a finished build, by id."""
        return await self.list_by_states(IN_FLIGHT_INSTANCE_STATES)

    async def list_by_states(
        self,
        states: Collection[InstanceState],
        *,
        request_states: Collection[RequestState] | None = None,
    ) -> list[InstanceRecord]:
        """Return instances in ``states`` (and whose request is in ``request_states``), by id."""
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

    async def claim(
        self,
        *,
        worker: str,
        states: Collection[InstanceState],
        now: datetime,
        lease_s: float,
        limit: int,
        request_states: Collection[RequestState] | None = None,
    ) -> list[InstanceRecord]:
        """Lease up to ``limit`` due, unleased instances in ``states`` to ``worker``, by id."""
        due = (
            select(InstanceRow.id)
            .where(
                InstanceRow.state.in_([s.value for s in states]),
                or_(InstanceRow.lease_until.is_(None), InstanceRow.lease_until <= now),
                or_(InstanceRow.next_check_at.is_(None), InstanceRow.next_check_at <= now),
            )
            .order_by(InstanceRow.id)
            .limit(limit)
        )
        if request_states is not None:
            due = due.join(RequestRow, RequestRow.id == InstanceRow.request_id).where(
                RequestRow.state.in_([s.value for s in request_states])
            )
        if self._dialect == "postgresql":
            # Lock the picked rows and skip rows another claimer holds: no double lease.
            due = due.with_for_update(skip_locked=True, of=InstanceRow)
        # On SQLite this single UPDATE holds the one write lock, so the sub-select cannot race.
        stmt = (
            update(InstanceRow)
            .where(InstanceRow.id.in_(due))
            .values(
                lease_owner=worker,
                lease_until=now + timedelta(seconds=lease_s),
                updated_at=now,
            )
            .returning(InstanceRow)
            .execution_options(**_WRITE_OPTS)
        )
        rows = (await self._session.scalars(stmt)).all()
        return sorted((_instance_record(row) for row in rows), key=lambda r: r.id)

    async def find_by_name(self, name: str) -> list[InstanceRecord]:
        """Instances named ``name`` (any case) with a server, not ``deleted``, newest first."""
        stmt = (
            select(InstanceRow)
            .where(
                func.lower(InstanceRow.name) == name.strip().lower(),
                InstanceRow.server_id.is_not(None),
                InstanceRow.state != InstanceState.DELETED.value,
            )
            .order_by(InstanceRow.id.desc())
            .execution_options(**_READ_OPTS)
        )
        rows = await self._session.scalars(stmt)
        return [_instance_record(row) for row in rows.all()]

    async def list_with_servers(
        self,
        *,
        requester: str | None = None,
        request_id: int | None = None,
        limit: int = 20,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> tuple[list[InstanceRecord], int]:
        """One page of instances with a server, newest first, and how many there are in all."""
        conditions: list[ColumnElement[bool]] = [InstanceRow.server_id.is_not(None)]
        if not include_deleted:
            conditions.append(InstanceRow.state != InstanceState.DELETED.value)
        if request_id is not None:
            conditions.append(InstanceRow.request_id == request_id)
        if requester is not None:
            conditions.append(
                InstanceRow.request_id.in_(
                    select(RequestRow.id).where(RequestRow.requester == requester)
                )
            )
        total_stmt = select(func.count()).select_from(InstanceRow).where(*conditions)
        total = int((await self._session.execute(total_stmt)).scalar_one())
        stmt = (
            select(InstanceRow)
            .where(*conditions)
            .order_by(InstanceRow.id.desc())
            .limit(max(limit, 0))
            .offset(max(offset, 0))
            .execution_options(**_READ_OPTS)
        )
        rows = await self._session.scalars(stmt)
        return [_instance_record(row) for row in rows.all()], total

    async def _write(
        self,
        instance_id: int,
        *,
        now: datetime,
        worker: str | None,
        expected: Collection[InstanceState] | None,
        values: dict[str, object],
    ) -> InstanceRecord | None:
        stmt = update(InstanceRow).where(InstanceRow.id == instance_id)
        if expected is not None:
            stmt = stmt.where(InstanceRow.state.in_([s.value for s in expected]))
        if worker is not None:
            stmt = stmt.where(InstanceRow.lease_owner == worker)
        final = (
            stmt.values(updated_at=now, **values)
            .returning(InstanceRow)
            .execution_options(**_WRITE_OPTS)
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
        return None if row is None else _instance_record(row)

    async def transition(
        self,
        instance_id: int,
        *,
        expected: Collection[InstanceState],
        new: InstanceState,
        now: datetime,
        worker: str | None = None,
        **fields: object,
    ) -> InstanceRecord | None:
        """Move to ``new`` only if the state is in ``expected`` (and ``worker`` holds the lease).

        Returns None when the compare-and-set did not match. Raises ``ServerAlreadyClaimedError``
        when ``server_id`` is already on another instance; the transaction stays usable.
        """
        _check_fields(fields, _INSTANCE_FIELDS)
        return await self._write(
            instance_id,
            now=now,
            worker=worker,
            expected=expected,
            values={"state": new.value, **fields},
        )

    async def update(
        self, instance_id: int, *, now: datetime, worker: str | None = None, **fields: object
    ) -> InstanceRecord | None:
        """Set ``fields`` without a state change; None if missing or ``worker`` lost the lease."""
        _check_fields(fields, _INSTANCE_FIELDS)
        return await self._write(
            instance_id, now=now, worker=worker, expected=None, values=dict(fields)
        )

    async def release(
        self, instance_id: int, *, worker: str, next_check_at: datetime | None, now: datetime
    ) -> None:
        """Clear the lease if ``worker`` still holds it, and set when to look again."""
        stmt = (
            update(InstanceRow)
            .where(InstanceRow.id == instance_id, InstanceRow.lease_owner == worker)
            .values(lease_owner=None, lease_until=None, next_check_at=next_check_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(stmt)


class SqlEventRepo:
    """Outbox access with per-subscriber leases; see ``bot.store.EventRepo``."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._dialect = dialect

    async def add(
        self,
        *,
        request_id: int,
        instance_id: int | None = None,
        kind: str,
        payload: JsonDict,
        now: datetime,
    ) -> EventRecord:
        """Append an event; call it in the transaction of the change it reports."""
        row = EventRow(
            request_id=request_id,
            instance_id=instance_id,
            kind=kind,
            payload=payload,
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        record = _event_record(row)
        self._session.expunge(row)
        return record

    def _delivered(self, subscriber: str) -> Select[int]:
        return select(EventDeliveryRow.event_id).where(
            EventDeliveryRow.event_id == EventRow.id,
            EventDeliveryRow.subscriber == subscriber,
            EventDeliveryRow.delivered_at.is_not(None),
        )

    async def claim_next(
        self, *, subscriber: str, worker: str, now: datetime, lease_s: float, limit: int
    ) -> list[EventRecord]:
        """Lease the oldest undelivered event of up to ``limit`` requests, by event id.

        A request whose oldest undelivered event is leased by another worker is skipped, so a
        request's events are delivered one at a time, in order, across replicas.
        """
        heads = (
            select(EventRow.request_id, func.min(EventRow.id).label("event_id"))
            .where(~exists(self._delivered(subscriber)))
            .group_by(EventRow.request_id)
            .subquery("heads")
        )
        lease = aliased(EventDeliveryRow, name="lease")
        picked = (
            select(
                heads.c.event_id,
                literal(subscriber, String()),
                literal(worker, String()),
                literal(now + timedelta(seconds=lease_s), UtcDateTime()),
            )
            .select_from(heads)
            .outerjoin(
                lease,
                and_(lease.event_id == heads.c.event_id, lease.subscriber == subscriber),
            )
            .where(
                or_(
                    lease.event_id.is_(None),
                    lease.lease_until.is_(None),
                    lease.lease_until <= now,
                )
            )
            .order_by(heads.c.event_id)
            .limit(limit)
        )
        insert_stmt = _insert(self._dialect, EventDeliveryRow).from_select(
            ["event_id", "subscriber", "worker", "lease_until"], picked
        )
        # One statement on both engines. On PostgreSQL a concurrent claimer of the same event
        # waits on the unique key, then re-checks this WHERE against the committed row.
        stmt = insert_stmt.on_conflict_do_update(
            index_elements=["event_id", "subscriber"],
            set_={
                "worker": insert_stmt.excluded.worker,
                "lease_until": insert_stmt.excluded.lease_until,
            },
            where=and_(
                EventDeliveryRow.delivered_at.is_(None),
                or_(EventDeliveryRow.lease_until.is_(None), EventDeliveryRow.lease_until <= now),
            ),
        ).returning(EventDeliveryRow.event_id)
        ids = list((await self._session.scalars(stmt)).all())
        if not ids:
            return []
        rows = await self._session.scalars(
            select(EventRow).where(EventRow.id.in_(ids)).order_by(EventRow.id)
        )
        return [_event_record(row) for row in rows.all()]

    async def mark_delivered(
        self, event_id: int, *, subscriber: str, worker: str, now: datetime
    ) -> bool:
        """Mark the event delivered to ``subscriber``; False unless ``worker`` holds its lease."""
        stmt = (
            update(EventDeliveryRow)
            .where(
                EventDeliveryRow.event_id == event_id,
                EventDeliveryRow.subscriber == subscriber,
                EventDeliveryRow.worker == worker,
                EventDeliveryRow.delivered_at.is_(None),
            )
            .values(delivered_at=now)
            .returning(EventDeliveryRow.event_id)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.scalars(stmt)).one_or_none() is not None

    async def list_for_request(self, request_id: int) -> list[EventRecord]:
        """Return the request's events in order."""
        rows = await self._session.scalars(
            select(EventRow).where(EventRow.request_id == request_id).order_by(EventRow.id)
        )
        return [_event_record(row) for row in rows.all()]

    async def undelivered_count(self, subscriber: str) -> int:
        """Return how many events ``subscriber`` has not had delivered."""
        stmt = (
            select(func.count()).select_from(EventRow).where(~exists(self._delivered(subscriber)))
        )
        return int((await self._session.execute(stmt)).scalar_one())


class SqlAuditRepo:
    """Audit log access; see ``bot.store.AuditRepo``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        target: str,
        result: str,
        detail: JsonDict | None = None,
    ) -> AuditRecord:
        """Append an audit entry."""
        row = AuditRow(
            at=at, actor=actor, action=action, target=target, result=result, detail=detail or {}
        )
        self._session.add(row)
        await self._session.flush()
        record = _audit_record(row)
        self._session.expunge(row)
        return record

    async def list_recent(self, limit: int = 20, actor: str | None = None) -> list[AuditRecord]:
        """Return up to ``limit`` entries, newest first."""
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if actor is not None:
            stmt = stmt.where(AuditRow.actor == actor)
        rows = await self._session.scalars(stmt)
        return [_audit_record(row) for row in rows.all()]


class SqlOperationRepo:
    """Operations table access; see ``bot.store.OperationRepo``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

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
        slack_channel: str | None = None,
        decided_by: str | None = None,
        decided_at: datetime | None = None,
        decision_note: str | None = None,
    ) -> Operation:
        """Insert an operation and return it."""
        row = OperationRow(
            kind=kind.value,
            server_id=server_id,
            server_name=server_name,
            requester=requester,
            state=state.value,
            params=params,
            created_at=now,
            updated_at=now,
            expires_at=expires_at,
            request_id=request_id,
            slack_channel=slack_channel,
            decided_by=decided_by,
            decided_at=decided_at,
            decision_note=decision_note,
        )
        self._session.add(row)
        await self._session.flush()
        record = _operation(row)
        self._session.expunge(row)
        return record

    async def get(self, operation_id: int) -> Operation | None:
        """Return the operation with this id, or None."""
        stmt = (
            select(OperationRow)
            .where(OperationRow.id == operation_id)
            .execution_options(**_READ_OPTS)
        )
        row = (await self._session.scalars(stmt)).one_or_none()
        return None if row is None else _operation(row)

    async def _write(
        self,
        operation_id: int,
        *,
        now: datetime,
        expected: Collection[OperationState] | None,
        values: dict[str, object],
    ) -> Operation | None:
        stmt = update(OperationRow).where(OperationRow.id == operation_id)
        if expected is not None:
            stmt = stmt.where(OperationRow.state.in_([s.value for s in expected]))
        final = (
            stmt.values(updated_at=now, **values)
            .returning(OperationRow)
            .execution_options(**_WRITE_OPTS)
        )
        row = (await self._session.scalars(final)).one_or_none()
        return None if row is None else _operation(row)

    async def transition(
        self,
        operation_id: int,
        *,
        expected: Collection[OperationState],
        new: OperationState,
        now: datetime,
        **fields: object,
    ) -> Operation | None:
        """Move to ``new`` only if the state is in ``expected``; None when it was not."""
        _check_fields(fields, _OPERATION_FIELDS)
        return await self._write(
            operation_id, now=now, expected=expected, values={"state": new.value, **fields}
        )

    async def update(
        self, operation_id: int, *, now: datetime, **fields: object
    ) -> Operation | None:
        """Set ``fields`` without a state change; None if the id does not exist."""
        _check_fields(fields, _OPERATION_FIELDS)
        return await self._write(operation_id, now=now, expected=None, values=dict(fields))

    async def list_by_states(
        self, states: Collection[OperationState], *, server_id: int | None = None
    ) -> list[Operation]:
        """Return operations in ``states`` (of one server, if given), oldest first."""
        stmt = select(OperationRow).where(OperationRow.state.in_([s.value for s in states]))
        if server_id is not None:
            stmt = stmt.where(OperationRow.server_id == server_id)
        rows = await self._session.scalars(
            stmt.order_by(OperationRow.id).execution_options(**_READ_OPTS)
        )
        return [_operation(row) for row in rows.all()]

    async def list_pending(self, now: datetime | None = None) -> list[Operation]:
        """Operations waiting for approval, oldest first; with ``now``, only unexpired ones."""
        stmt = select(OperationRow).where(
            OperationRow.state == OperationState.PENDING_APPROVAL.value
        )
        if now is not None:
            stmt = stmt.where(or_(OperationRow.expires_at.is_(None), OperationRow.expires_at > now))
        rows = await self._session.scalars(
            stmt.order_by(OperationRow.id).execution_options(**_READ_OPTS)
        )
        return [_operation(row) for row in rows.all()]

    async def list_expired(self, now: datetime) -> list[Operation]:
        """Pending operations whose ``expires_at`` is at or before ``now``, oldest first."""
        stmt = (
            select(OperationRow)
            .where(
                OperationRow.state == OperationState.PENDING_APPROVAL.value,
                OperationRow.expires_at.is_not(None),
                OperationRow.expires_at <= now,
            )
            .order_by(OperationRow.id)
            .execution_options(**_READ_OPTS)
        )
        rows = await self._session.scalars(stmt)
        return [_operation(row) for row in rows.all()]


class SqlSlackEventRepo:
    """Seen Slack event ids; see ``bot.store.SlackEventRepo``."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._dialect = dialect

    async def remember(self, event_id: str, now: datetime) -> bool:
        """Record the event id; True the first time, False for a redelivery."""
        stmt = (
            _insert(self._dialect, SlackEventRow)
            .values(event_id=event_id, seen_at=now)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(SlackEventRow.event_id)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none() is not None

    async def forget_older_than(self, cutoff: datetime) -> int:
        """Delete ids seen before ``cutoff``; return how many were deleted."""
        stmt = (
            delete(SlackEventRow)
            .where(SlackEventRow.seen_at < cutoff)
            .returning(SlackEventRow.event_id)
            .execution_options(synchronize_session=False)
        )
        return len((await self._session.scalars(stmt)).all())


class SqlUnitOfWork:
    """One session per unit; leaving the ``async with`` block without ``commit`` rolls back."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self.requests = SqlRequestRepo(session, dialect)
        self.instances = SqlInstanceRepo(session, dialect)
        self.events = SqlEventRepo(session, dialect)
        self.audit = SqlAuditRepo(session)
        self.slack_events = SqlSlackEventRepo(session, dialect)
        self.operations = SqlOperationRepo(session)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back anything not committed and returns the connection to the pool.
        await self._session.close()

    async def commit(self) -> None:
        """Commit the work so far; the unit stays usable for a new transaction."""
        await self._session.commit()

    async def rollback(self) -> None:
        """Discard the work since the last commit."""
        await self._session.rollback()


def _set_sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL may itself wait for a lock.
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: a power loss must not roll back a committed create intent, or the
        # engine would create that server a second time (docs/benchmarks.md has the cost).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


class Database:
    """Owns the async engine and session factory; ``start()`` also creates missing tables."""

    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None) -> None:
        self._url = normalize_database_url(url)
        self._dialect = "sqlite" if self._url.startswith("sqlite") else "postgresql"
        if schema is not None:
            if self._dialect != "postgresql":
                raise ValueError("schema is only supported on PostgreSQL")
            if not _SCHEMA_NAME.fullmatch(schema):
                raise ValueError("schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        self._schema = schema
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    async def start(self) -> None:
        """Create the engine and any missing tables (and the schema, if one was given)."""
        if self._engine is not None:
            return
        connect_args: dict[str, object] = {}
        if self._schema is not None:
            connect_args["server_settings"] = {"search_path": self._schema}
        engine = create_async_engine(self._url, echo=self._echo, connect_args=connect_args)
        if self._dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        try:
            async with engine.begin() as conn:
                if self._dialect == "postgresql":
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK_KEY}
                    )
                    if self._schema is not None:
                        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"'))
                await conn.run_sync(Base.metadata.create_all)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def stop(self) -> None:
        """Dispose of the engine and its pooled connections; safe to call twice."""
        engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    def uow(self) -> SqlUnitOfWork:
        """Return a new unit of work (one session); raises ``RuntimeError`` before ``start()``."""
        if self._sessions is None:
            raise RuntimeError("Database.start() has not been called")
        return SqlUnitOfWork(self._sessions(), self._dialect)

    async def ping(self) -> bool:
        """Return True if the database answers ``SELECT 1``."""
        if self._engine is None:
            return False
        try:
            async with self._engine.connect() as conn:
                await conn.execute(select(1))
        except (SQLAlchemyError, OSError):
            return False
        return True
