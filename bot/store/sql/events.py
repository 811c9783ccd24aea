"""The outbox (``events`` with per-subscriber ``event_deliveries``) and the audit log."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.provisioning.model import AuditRecord, EventRecord
from bot.provisioning.ports import Backlog, NewAudit, NewEvent
from bot.store.sql._rows import SqlRepo, audit_record, event_record, insert, row_values
from bot.store.sql.tables import AuditRow, EventDeliveryRow, EventRow

__all__ = ["SqlAuditRepo", "SqlEventRepo"]


class SqlEventRepo(SqlRepo):
    """Outbox access with per-subscriber leases; see `bot.provisioning.ports.EventRepo`."""

    async def add(self, event: NewEvent, *, now: datetime) -> EventRecord:
        if event.request_id is not None and event.operation_id is not None:
            raise ValueError("an event belongs to one request, one operation, or the fleet")
        row = EventRow(**row_values(event, created_at=now))
        self._session.add(row)
        await self._session.flush()
        record = event_record(row)
        self._session.expunge(row)
        return record

    async def claim_next(
        self,
        *,
        subscriber: str,
        worker: str,
        now: datetime,
        lease_s: float,
        limit: int,
        per_stream: int = 1,
    ) -> list[EventRecord]:
        """Lease, in up to ``limit`` streams, the first ``per_stream`` undelivered events.

        A stream whose oldest undelivered event is leased by another worker is skipped, so a
        stream's events are delivered in order, one batch at a time, across replicas.
        """
        delivered = select(EventDeliveryRow.event_id).where(
            EventDeliveryRow.event_id == EventRow.id,
            EventDeliveryRow.subscriber == subscriber,
            EventDeliveryRow.delivered_at.is_not(None),
        )
        heads = (
            select(
                func.min(EventRow.id).label("event_id"), EventRow.request_id, EventRow.operation_id
            )
            .where(~exists(delivered))
            .group_by(EventRow.request_id, EventRow.operation_id)
            .subquery("heads")
        )
        lease = aliased(EventDeliveryRow, name="lease")
        free_heads = (
            select(heads.c.event_id, heads.c.request_id, heads.c.operation_id)
            .select_from(heads)
            .outerjoin(
                lease,
                and_(lease.event_id == heads.c.event_id, lease.subscriber == subscriber),
            )
            .where(_free(lease, now))
            .order_by(heads.c.event_id)
            .limit(limit)
        )
        wanted: list[tuple[int, _Stream]] = [
            (event_id, (request_id, operation_id))
            for event_id, request_id, operation_id in (await self._session.execute(free_heads))
        ]
        if per_stream > 1 and wanted:
            wanted = await self._following([i for i, _ in wanted], subscriber, per_stream)
        if not wanted:
            return []
        until = now + timedelta(seconds=lease_s)
        insert_stmt = insert(self._dialect, EventDeliveryRow).values(
            [
                {"event_id": event_id, "subscriber": subscriber, "worker": worker}
                | {"lease_until": until}
                for event_id, _ in wanted
            ]
        )
        # On PostgreSQL a concurrent claimer of the same event waits on the unique key, then
        # re-checks this WHERE against the committed row: a lease is never taken twice.
        stmt = insert_stmt.on_conflict_do_update(
            index_elements=["event_id", "subscriber"],
            set_={
                "worker": insert_stmt.excluded.worker,
                "lease_until": insert_stmt.excluded.lease_until,
            },
            where=and_(EventDeliveryRow.delivered_at.is_(None), _free(EventDeliveryRow, now)),
        ).returning(EventDeliveryRow.event_id)
        got = set((await self._session.scalars(stmt)).all())
        if not got:
            return []
        rows = (
            await self._session.scalars(
                select(EventRow).where(EventRow.id.in_(got)).order_by(EventRow.id)
            )
        ).all()
        kept, dropped = _in_order_runs([event_record(row) for row in rows], wanted)
        if dropped:  # another worker took an event mid-stream: hand back what follows it
            await self._session.execute(
                update(EventDeliveryRow)
                .where(
                    EventDeliveryRow.event_id.in_(dropped),
                    EventDeliveryRow.subscriber == subscriber,
                    EventDeliveryRow.worker == worker,
                )
                .values(lease_until=now)
                .execution_options(synchronize_session=False)
            )
        return kept

    async def _following(
        self, heads: list[int], subscriber: str, per_stream: int
    ) -> list[tuple[int, _Stream]]:
        """The heads' streams' undelivered events, at most ``per_stream`` each, by id."""
        head = aliased(EventRow, name="head")
        delivered = select(EventDeliveryRow.event_id).where(
            EventDeliveryRow.event_id == EventRow.id,
            EventDeliveryRow.subscriber == subscriber,
            EventDeliveryRow.delivered_at.is_not(None),
        )
        position = (
            func.row_number()
            .over(partition_by=(EventRow.request_id, EventRow.operation_id), order_by=EventRow.id)
            .label("position")
        )
        ranked = (
            select(
                EventRow.id.label("event_id"), EventRow.request_id, EventRow.operation_id, position
            )
            .join(
                head,
                and_(
                    head.id.in_(heads),
                    EventRow.request_id.is_not_distinct_from(head.request_id),
                    EventRow.operation_id.is_not_distinct_from(head.operation_id),
                    EventRow.id >= head.id,
                ),
            )
            .where(~exists(delivered))
            .subquery("ranked")
        )
        stmt = (
            select(ranked.c.event_id, ranked.c.request_id, ranked.c.operation_id)
            .where(ranked.c.position <= per_stream)
            .order_by(ranked.c.event_id)
        )
        rows = await self._session.execute(stmt)
        return [
            (event_id, (request_id, operation_id)) for event_id, request_id, operation_id in rows
        ]

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

    async def prune_delivered(self, *, subscriber: str, before: datetime) -> int:
        """Delete events written before ``before`` that ``subscriber`` has delivered."""
        done = (
            select(EventDeliveryRow.event_id)
            .join(EventRow, EventRow.id == EventDeliveryRow.event_id)
            .where(
                EventDeliveryRow.subscriber == subscriber,
                EventDeliveryRow.delivered_at.is_not(None),
                EventRow.created_at < before,
            )
        )
        ids = list((await self._session.scalars(done)).all())
        for start in range(0, len(ids), _PRUNE_CHUNK):
            chunk = ids[start : start + _PRUNE_CHUNK]
            # Deliveries first: SQLite enforces the cascade only with foreign keys on.
            await self._session.execute(
                delete(EventDeliveryRow).where(EventDeliveryRow.event_id.in_(chunk))
            )
            await self._session.execute(delete(EventRow).where(EventRow.id.in_(chunk)))
        return len(ids)

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


# Bound parameters per DELETE (SQLite allows 32,766 in one statement).
_PRUNE_CHUNK = 5000


_Stream = tuple[int | None, int | None]


def _free(lease: Any, now: datetime) -> ColumnElement[bool]:
    """No lease on the event, or one that has run out."""
    return or_(lease.event_id.is_(None), lease.lease_until.is_(None), lease.lease_until <= now)


def _in_order_runs(
    got: list[EventRecord], wanted: list[tuple[int, _Stream]]
) -> tuple[list[EventRecord], list[int]]:
    """Of each stream, the leased events up to the first one wanted but not leased (the order
    within a stream must hold), and the ids leased after such a gap, to hand back."""
    by_id = {event.id: event for event in got}
    broken: set[_Stream] = set()
    kept: list[EventRecord] = []
    dropped: list[int] = []
    for event_id, stream in wanted:
        event = by_id.get(event_id)
        if event is None:
            broken.add(stream)
        elif stream in broken:
            dropped.append(event_id)
        else:
            kept.append(event)
    return kept, dropped


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
