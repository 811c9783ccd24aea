"""The outbox (``events`` with per-subscriber ``event_deliveries``) and the audit log."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import String, and_, exists, func, literal, or_, select, update
from sqlalchemy.orm import aliased

from bot.provisioning.model import AuditRecord, EventRecord
from bot.provisioning.ports import Backlog, NewAudit, NewEvent
from bot.store.sql._rows import SqlRepo, audit_record, event_record, insert, row_values
from bot.store.sql.tables import AuditRow, EventDeliveryRow, EventRow, UtcDateTime

__all__ = ["SqlAuditRepo", "SqlEventRepo"]


class SqlEventRepo(SqlRepo):
    """Outbox access with per-subscriber leases; see `bot.provisioning.ports.EventRepo`."""

    async def add(self, event: NewEvent, *, now: datetime) -> EventRecord:
        if (event.request_id is None) == (event.operation_id is None):
            raise ValueError("an event belongs to exactly one request or one operation")
        row = EventRow(**row_values(event, created_at=now))
        self._session.add(row)
        await self._session.flush()
        record = event_record(row)
        self._session.expunge(row)
        return record

    async def claim_next(
        self, *, subscriber: str, worker: str, now: datetime, lease_s: float, limit: int
    ) -> list[EventRecord]:
        """Lease the oldest undelivered event of up to ``limit`` streams, by event id.

        A stream whose oldest undelivered event is leased by another worker is skipped, so a
        stream's events are delivered one at a time, in order, across replicas.
        """
        delivered = select(EventDeliveryRow.event_id).where(
            EventDeliveryRow.event_id == EventRow.id,
            EventDeliveryRow.subscriber == subscriber,
            EventDeliveryRow.delivered_at.is_not(None),
        )
        heads = (
            select(func.min(EventRow.id).label("event_id"))
            .where(~exists(delivered))
            .group_by(EventRow.request_id, EventRow.operation_id)
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
        insert_stmt = insert(self._dialect, EventDeliveryRow).from_select(
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
        return [event_record(row) for row in rows.all()]

    async def mark_delivered(
        self, event_id: int, *, subscriber: str, worker: str, now: datetime
    ) -> bool:
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

    async def renew(
        self, event_ids: Collection[int], *, subscriber: str, worker: str, until: datetime
    ) -> None:
        if not event_ids:
            return
        stmt = (
            update(EventDeliveryRow)
            .where(
                EventDeliveryRow.event_id.in_(list(event_ids)),
                EventDeliveryRow.subscriber == subscriber,
                EventDeliveryRow.worker == worker,
                EventDeliveryRow.delivered_at.is_(None),
            )
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(stmt)

    async def backlog(self, subscriber: str) -> Backlog:
        # One anti-join over the primary key of event_deliveries (event_id, subscriber).
        delivered = select(EventDeliveryRow.event_id).where(
            EventDeliveryRow.event_id == EventRow.id,
            EventDeliveryRow.subscriber == subscriber,
            EventDeliveryRow.delivered_at.is_not(None),
        )
        stmt = select(func.count(), func.min(EventRow.created_at)).where(~exists(delivered))
        count, oldest = (await self._session.execute(stmt)).one()
        return Backlog(int(count), oldest)  # min() keeps the column's type: aware UTC

    async def list_for_request(self, request_id: int) -> list[EventRecord]:
        rows = await self._session.scalars(
            select(EventRow).where(EventRow.request_id == request_id).order_by(EventRow.id)
        )
        return [event_record(row) for row in rows.all()]

    async def list_for_operation(self, operation_id: int) -> list[EventRecord]:
        rows = await self._session.scalars(
            select(EventRow).where(EventRow.operation_id == operation_id).order_by(EventRow.id)
        )
        return [event_record(row) for row in rows.all()]

    async def has_undelivered(self, subscriber: str) -> bool:
        delivered = select(EventDeliveryRow.event_id).where(
            EventDeliveryRow.event_id == EventRow.id,
            EventDeliveryRow.subscriber == subscriber,
            EventDeliveryRow.delivered_at.is_not(None),
        )
        stmt = select(exists(select(EventRow.id).where(~exists(delivered))))
        return bool((await self._session.execute(stmt)).scalar())

    async def list_for_instance(
        self, request_id: int, instance_id: int, kinds: Collection[str]
    ) -> list[EventRecord]:
        # By request first: ix_events_request_id_id narrows it to the request's stream.
        stmt = (
            select(EventRow)
            .where(
                EventRow.request_id == request_id,
                EventRow.instance_id == instance_id,
                EventRow.kind.in_(list(kinds)),
            )
            .order_by(EventRow.id)
        )
        return [event_record(row) for row in (await self._session.scalars(stmt)).all()]


class SqlAuditRepo(SqlRepo):
    """Audit log access; see `bot.provisioning.ports.AuditRepo`."""

    async def add(self, entry: NewAudit, *, at: datetime) -> AuditRecord:
        row = AuditRow(**row_values(entry, at=at, detail=entry.detail or {}))
        self._session.add(row)
        await self._session.flush()
        record = audit_record(row)
        self._session.expunge(row)
        return record

    async def list_recent(self, limit: int = 20, actor: str | None = None) -> list[AuditRecord]:
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if actor is not None:
            stmt = stmt.where(AuditRow.actor == actor)
        rows = await self._session.scalars(stmt)
        return [audit_record(row) for row in rows.all()]
