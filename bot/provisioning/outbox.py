"""Deliver outbox events to one subscriber, in order per stream, each marked delivered once.

A subscriber's handler runs with no database session open; the event is marked delivered right
after it returns. Claimed events are leased briefly and the lease is renewed while the batch is
being delivered, so a slow batch is never handed to another replica, and the events of a process
that died are free again within one lease. If the process dies between the handler's effect and
the mark, the event is handed out again, so handlers with outside effects must tolerate a rare
repeat of their last event.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.provisioning.model import EventRecord
from bot.provisioning.ports import DatabaseUnavailableError, UnitOfWork

__all__ = ["DeliveryDeferredError", "Handler", "OutboxConsumer"]

logger = logging.getLogger("bot.provisioning.outbox")

Handler = Callable[[EventRecord], Awaitable[None]]


class DeliveryDeferredError(Exception):
    """A handler cannot deliver now for a known reason; the event is retried after its lease."""


class OutboxConsumer:
    """Hands `subscriber`'s undelivered events to `handler`; safe to run in several replicas."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        *,
        subscriber: str,
        handler: Handler,
        clock: Callable[[], datetime],
        worker: str | None = None,
        lease_s: float = 6.0,
    ) -> None:
        self._uow = uow
        self._subscriber = subscriber
        self._handler = handler
        self._clock = clock
        self._worker = worker or f"{subscriber}-{uuid.uuid4().hex[:8]}"
        self._lease_s = lease_s
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Shutdown: finish the event being delivered, then hand out no more (the rest of a
        claimed batch is free again when its short lease runs out)."""
        self._stop.set()

    async def pending(self) -> bool:
        """Whether some event is still to be delivered to this subscriber (perhaps leased by a
        worker that stopped: it comes free when that lease runs out)."""
        async with self._uow() as uow:
            return await uow.events.has_undelivered(self._subscriber)

    async def drain(self, *, limit: int = 100, rounds: int = 50) -> int:
        """Deliver what is due now; returns how many events were delivered."""
        delivered = 0
        for _ in range(rounds):
            if self._stop.is_set():
                break
            async with self._uow() as uow:
                batch = await uow.events.claim_next(
                    subscriber=self._subscriber,
                    worker=self._worker,
                    now=self._clock(),
                    lease_s=self._lease_s,
                    limit=limit,
                )
                await uow.commit()
            if not batch:
                break
            pending = {event.id for event in batch}
            renewing = asyncio.ensure_future(self._renew(pending))
            try:
                for event in batch:
                    if self._stop.is_set():
                        break
                    if await self._deliver(event):
                        delivered += 1
                    pending.discard(event.id)
            finally:
                renewing.cancel()
        return delivered

    async def _renew(self, pending: set[int]) -> None:
        """Keep the leases of the batch's undelivered events alive while it is delivered."""
        while pending:
            await asyncio.sleep(self._lease_s / 3)
            async with self._uow() as uow:
                until = self._clock() + timedelta(seconds=self._lease_s)
                await uow.events.renew(
                    set(pending), subscriber=self._subscriber, worker=self._worker, until=until
                )
                await uow.commit()

    async def _deliver(self, event: EventRecord) -> bool:
        try:
            await self._handler(event)
        except DeliveryDeferredError as deferred:
            logger.info(
                "%s deferred event %d %s: %s", self._subscriber, event.id, event.kind, deferred
            )
            return False
        except DatabaseUnavailableError:
            raise  # not this event's fault: the drain stops, the event is retried after expiry
        except Exception:  # an error edge: the event stays leased and is retried after expiry
            reference = uuid.uuid4().hex[:8]
            logger.exception(
                "%s could not handle event %d %s (reference %s); it will be retried",
                self._subscriber,
                event.id,
                event.kind,
                reference,
            )
            return False
        async with self._uow() as uow:
            marked = await uow.events.mark_delivered(
                event.id, subscriber=self._subscriber, worker=self._worker, now=self._clock()
            )
            await uow.commit()
        return marked
