"""The outbox (events with per-subscriber deliveries) and the audit log, in memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime, timedelta

from bot.provisioning.model import AuditRecord, EventRecord
from bot.provisioning.ports import Backlog, NewAudit, NewEvent
from bot.store._values import utc
from bot.store.memory._tables import Delivery, Repo, copied

__all__ = ["MemoryAuditRepo", "MemoryEventRepo"]


class MemoryEventRepo(Repo):
    """Outbox of one memory unit of work; see `bot.provisioning.ports.EventRepo`."""

    async def add(self, event: NewEvent, *, now: datetime) -> EventRecord:
        if event.request_id is not None and event.operation_id is not None:
            raise ValueError("an event belongs to one request, one operation, or the fleet")
        record = EventRecord(
            id=self._t.new_id("events"), created_at=now, **dataclasses.asdict(event)
        )
        return self._save(self._t.events, record)

    def _delivered(self, event_id: int, subscriber: str) -> bool:
        delivery = self._t.deliveries.get((event_id, subscriber))
        return delivery is not None and delivery.delivered_at is not None

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
        now = utc(now)
        pending: dict[tuple[int | None, int | None], list[EventRecord]] = {}
        for event in sorted(self._t.events.values(), key=lambda e: e.id):
            if not self._delivered(event.id, subscriber):
                pending.setdefault((event.request_id, event.operation_id), []).append(event)
        streams = [s for s in pending.values() if self._free(s[0].id, subscriber, now)]
        streams.sort(key=lambda s: s[0].id)
        until = now + timedelta(seconds=lease_s)
        claimed: list[EventRecord] = []
        for stream in streams[: max(limit, 0)]:
            for event in stream[: max(per_stream, 1)]:
                if not self._free(event.id, subscriber, now):
                    break  # order within the stream holds: nothing after a leased event
                self._undo.put(self._t.deliveries, (event.id, subscriber), Delivery(worker, until))
                claimed.append(copied(event))
        return sorted(claimed, key=lambda e: e.id)

    def _free(self, event_id: int, subscriber: str, now: datetime) -> bool:
        lease = self._t.deliveries.get((event_id, subscriber))
        return lease is None or lease.lease_until is None or lease.lease_until <= now

    async def mark_delivered(
        self, event_id: int, *, subscriber: str, worker: str, now: datetime
    ) -> bool:
        now = utc(now)
        lease = self._t.deliveries.get((event_id, subscriber))
        if lease is None or lease.worker != worker or lease.delivered_at is not None:
            return False
        done = Delivery(lease.worker, lease.lease_until, delivered_at=now)
        self._undo.put(self._t.deliveries, (event_id, subscriber), done)
        return True

    async def renew(
        self, event_ids: Collection[int], *, subscriber: str, worker: str, until: datetime
    ) -> None:
        until = utc(until)
        for event_id in event_ids:
            lease = self._t.deliveries.get((event_id, subscriber))
            if lease is not None and lease.worker == worker and lease.delivered_at is None:
                self._undo.put(self._t.deliveries, (event_id, subscriber), Delivery(worker, until))

    async def prune_delivered(self, *, subscriber: str, before: datetime) -> int:
        before = utc(before)
        done = [
            event.id
            for event in self._t.events.values()
            if event.created_at < before and self._delivered(event.id, subscriber)
        ]
        for event_id in done:
            for key in [k for k in self._t.deliveries if k[0] == event_id]:
                self._undo.delete(self._t.deliveries, key)
            self._undo.delete(self._t.events, event_id)
        return len(done)

    async def backlog(self, subscriber: str) -> Backlog:
        waiting = [e for e in self._t.events.values() if not self._delivered(e.id, subscriber)]
        return Backlog(len(waiting), min((e.created_at for e in waiting), default=None))

    async def list_for_request(self, request_id: int) -> list[EventRecord]:
        events = sorted(self._t.events.values(), key=lambda e: e.id)
        return [copied(e) for e in events if e.request_id == request_id]

    async def list_for_operation(self, operation_id: int) -> list[EventRecord]:
        events = sorted(self._t.events.values(), key=lambda e: e.id)
        return [copied(e) for e in events if e.operation_id == operation_id]

    async def has_undelivered(self, subscriber: str) -> bool:
        return any(not self._delivered(e.id, subscriber) for e in self._t.events.values())

    async def list_for_instance(
        self, request_id: int, instance_id: int, kinds: Collection[str]
    ) -> list[EventRecord]:
        events = sorted(self._t.events.values(), key=lambda e: e.id)
        return [
            copied(e)
            for e in events
            if e.request_id == request_id and e.instance_id == instance_id and e.kind in kinds
        ]


class MemoryAuditRepo(Repo):
    """Audit log of one memory unit of work; see `bot.provisioning.ports.AuditRepo`."""

    async def add(self, entry: NewAudit, *, at: datetime) -> AuditRecord:
        fields = {**dataclasses.asdict(entry), "detail": entry.detail or {}}
        record = AuditRecord(id=self._t.new_id("audit"), at=at, **fields)
        return self._save(self._t.audit, record)

    async def list_recent(self, limit: int = 20, actor: str | None = None) -> list[AuditRecord]:
        rows = [
            a
            for a in sorted(self._t.audit.values(), key=lambda a: a.id, reverse=True)
            if actor is None or a.actor == actor
        ]
        return [copied(a) for a in rows[: max(limit, 0)]]
