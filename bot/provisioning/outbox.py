"""Deliver outbox events to one subscriber, in order per stream, each marked delivered once.

A delivery round claims, in up to `limit` streams, the oldest `per_stream` undelivered events of
each (one request's or one operation's), and hands each stream's batch to the subscriber at once,
so a subscriber can say many events in one message. Streams are delivered side by side, the
ones the subscriber ranks first (`priority`) started first, and new rounds are claimed while
slow ones are still being delivered. A handler runs with no database
session open; the events it reports delivered are marked right after it returns. Claimed events
are leased briefly and the leases are renewed while the round runs, so a slow round is never
handed to another replica, and the events of a process that died are free again within one
lease. If the process dies between a handler's effect and the mark, the batch is handed out
again: handlers with outside effects must tolerate a rare repeat of their last batch.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from bot.provisioning.model import EventRecord
from bot.provisioning.ports import DatabaseUnavailableError, UnitOfWork

__all__ = [
    "Batch",
    "DeliveryDeferredError",
    "Handler",
    "OutboxConsumer",
    "Priority",
    "StreamHandler",
    "one_at_a_time",
]

logger = logging.getLogger("bot.provisioning.outbox")

Handler = Callable[[EventRecord], Awaitable[None]]
"""Deliver one event."""

Batch = Sequence[EventRecord]
"""Consecutive undelivered events of one stream, oldest first."""

StreamHandler = Callable[[Batch], Awaitable[int]]
"""Deliver a stream's batch; returns how many of its events, from the first, went out (the
rest are handed out again in a later round)."""

Priority = Callable[[Batch], int]
"""Rank a stream's batch: lower goes first within a round."""


class DeliveryDeferredError(Exception):
    """A handler cannot deliver now for a known reason; the batch is retried after its lease."""


def one_at_a_time(handler: Handler) -> StreamHandler:
    """A stream handler that gives each event of the batch to `handler`, in order."""

    async def deliver(batch: Batch) -> int:
        for event in batch:
            await handler(event)
        return len(batch)

    return deliver


class OutboxConsumer:
    """Hands `subscriber`'s undelivered events to its handler; safe to run in several replicas.

    Give `handler` to deliver event by event, or `streams` (with `per_stream` > 1) to deliver a
    stream's batch at once.
    """

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        *,
        subscriber: str,
        clock: Callable[[], datetime],
        handler: Handler | None = None,
        streams: StreamHandler | None = None,
        per_stream: int = 1,
        priority: Priority | None = None,
        worker: str | None = None,
        lease_s: float = 6.0,
    ) -> None:
        if handler is not None and streams is None:
            streams = one_at_a_time(handler)
        elif handler is not None or streams is None:
            raise ValueError("give exactly one of handler and streams")
        self._uow = uow
        self._subscriber = subscriber
        self._streams = streams
        self._per_stream = max(per_stream, 1)
        self._priority = priority
        self._clock = clock
        self._worker = worker or f"{subscriber}-{uuid.uuid4().hex[:8]}"
        self._lease_s = lease_s
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Shutdown: finish the batches being delivered, then claim no more."""
        self._stop.set()

    async def pending(self) -> bool:
        """Whether some event is still to be delivered to this subscriber (perhaps leased by a
        worker that stopped: it comes free when that lease runs out)."""
        async with self._uow() as uow:
            return await uow.events.has_undelivered(self._subscriber)

    async def drain(self, *, limit: int = 100, rounds: int = 50, poll_s: float = 0.25) -> int:
        """Deliver what is due now; returns how many events went out.

        Streams are claimed again every `poll_s` while others are still being delivered (a slow
        stream never holds up a new one), at most `rounds` times; returns once nothing is
        being delivered and nothing more was due.
        """
        delivered = 0
        pending: set[int] = set()
        busy: set[asyncio.Task[int]] = set()
        failure: BaseException | None = None
        renewing = asyncio.ensure_future(self._renew(pending))
        try:
            for _ in range(rounds):
                if failure is None and not self._stop.is_set():  # stopping: claim no more
                    try:
                        busy |= await self._start_round(limit, pending)
                    except DatabaseUnavailableError as error:
                        failure = error  # what was started still finishes (and is marked)
                if not busy:
                    break
                done, busy = await asyncio.wait(
                    busy, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if task.exception() is not None:
                        failure = failure or task.exception()
                    else:
                        delivered += task.result()
            if busy:  # out of rounds: let what was started finish
                for task in (await asyncio.wait(busy))[0]:
                    if task.exception() is not None:
                        failure = failure or task.exception()
                    else:
                        delivered += task.result()
        finally:
            renewing.cancel()
        if failure is not None:
            raise failure  # the database is unavailable: the drain stops
        return delivered

    async def _start_round(self, limit: int, pending: set[int]) -> set[asyncio.Task[int]]:
        """Claim what is due and start delivering it, highest priority first."""
        async with self._uow() as uow:
            claimed = await uow.events.claim_next(
                subscriber=self._subscriber,
                worker=self._worker,
                now=self._clock(),
                lease_s=self._lease_s,
                limit=limit,
                per_stream=self._per_stream,
            )
            await uow.commit()
        batches = _by_stream(claimed)
        if self._priority is not None:
            batches.sort(key=self._priority)  # stable: by head id within a rank
        pending.update(event.id for event in claimed)
        return {asyncio.ensure_future(self._deliver(batch, pending)) for batch in batches}

    async def prune(self, before: datetime) -> int:
        """Delete the events written before `before` that this subscriber has delivered;
        returns how many. (Claims scan what is kept: history must not grow forever.)"""
        async with self._uow() as uow:
            pruned = await uow.events.prune_delivered(subscriber=self._subscriber, before=before)
            await uow.commit()
        if pruned:
            logger.info("%s: deleted %d delivered outbox events", self._subscriber, pruned)
        return pruned

    async def _renew(self, pending: set[int]) -> None:
        """Keep the leases of the claimed, undelivered events alive while they are delivered."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            if not pending:
                continue
            async with self._uow() as uow:
                until = self._clock() + timedelta(seconds=self._lease_s)
                await uow.events.renew(
                    set(pending), subscriber=self._subscriber, worker=self._worker, until=until
                )
                await uow.commit()

    async def _deliver(self, batch: Batch, pending: set[int]) -> int:
        head = batch[0]
        try:
            # Stopping: a batch not started yet is handed back (its mark below frees it now).
            done = 0 if self._stop.is_set() else await self._streams(batch)
            done = min(max(done, 0), len(batch))
        except DeliveryDeferredError as deferred:
            logger.info(
                "%s deferred event %d %s: %s", self._subscriber, head.id, head.kind, deferred
            )
            return 0
        except DatabaseUnavailableError:
            raise  # not this stream's fault: the drain stops, the batch is retried after expiry
        except Exception:  # an error edge: the batch stays leased and is retried after expiry
            reference = uuid.uuid4().hex[:8]
            logger.exception(
                "%s could not handle event %d %s (reference %s); it will be retried",
                self._subscriber,
                head.id,
                head.kind,
                reference,
            )
            return 0
        marked = 0
        async with self._uow() as uow:
            for event in batch[:done]:
                marked += await uow.events.mark_delivered(
                    event.id, subscriber=self._subscriber, worker=self._worker, now=self._clock()
                )
            rest = [event.id for event in batch[done:]]
            if rest:  # free for the next round now, not after the lease
                await uow.events.renew(
                    rest, subscriber=self._subscriber, worker=self._worker, until=self._clock()
                )
            await uow.commit()
        pending.difference_update(event.id for event in batch)
        return marked


def _by_stream(events: Sequence[EventRecord]) -> list[list[EventRecord]]:
    """The claimed events, one list per stream (in order), streams by their first event."""
    streams: dict[tuple[int | None, int | None], list[EventRecord]] = {}
    for event in sorted(events, key=lambda e: e.id):
        streams.setdefault((event.request_id, event.operation_id), []).append(event)
    return list(streams.values())
