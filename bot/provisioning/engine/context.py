"""What every engine step shares: configuration, the tick report, claims, leases and failure.

A row is leased only while a step works on it: `run_due` claims one row per free slot, renews
its lease while the step runs (a create call with its retries may outlast one lease), and
releases it on every way out, so a worker that stops leaves at most `concurrency` rows leased,
each until its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.logfields import log_fields
from bot.provisioning.events import InstanceFailed, InstanceWaiting
from bot.provisioning.model import InstanceRecord, InstanceState, RequestState
from bot.provisioning.ports import Claim, DatabaseUnavailableError, InstanceChange
from bot.provisioning.transitions import Context
from bot.virtfusion import NotFoundError, Server, VirtFusionError

__all__ = ["EngineConfig", "EngineContext", "Step", "TickReport", "clock_text"]

logger = logging.getLogger("bot.provisioning.engine")

R = RequestState
S = InstanceState

Step = Callable[[InstanceRecord], Awaitable[None]]


@dataclass(frozen=True)
class EngineConfig:
    """How the engine paces itself; times in seconds."""

    owner_user_id: int
    worker_id: str = field(default_factory=lambda: f"vfbot-{uuid.uuid4().hex[:8]}")
    concurrency: int = 4
    lease_s: float = 120.0  # longer than one create call with all its retries (bot/config.py)
    poll_interval_s: float = 10.0
    build_timeout_s: float = 1200.0
    create_grace_s: float = 120.0
    clock_skew_s: float = 300.0  # tolerance between our clock and the panel's `created`
    retry_backoff_s: float = 30.0
    max_create_attempts: int = 3
    cleanup_failed: bool = False
    batch: int = 200  # rows a tick starts at most (besides its time budget, one poll interval)


@dataclass
class TickReport:
    """What one engine tick did; for logs and tests."""

    created: int = 0
    adopted: int = 0
    recreated: int = 0
    builds_started: int = 0
    built: int = 0
    failed: int = 0
    failed_over: int = 0  # refused in one group (422), moved to the next group of its list
    deleted: int = 0
    warned: int = 0  # expiry reminders written
    expired: int = 0  # expiry actions taken
    more: bool = False  # the tick stopped at its budget with rows still due
    finished_requests: list[int] = field(default_factory=list)
    build_seconds: list[float] = field(default_factory=list)  # of the builds that completed

    @property
    def busy(self) -> bool:
        """Whether the next tick should start at once rather than after the poll interval."""
        return self.more or any(
            (
                self.created,
                self.adopted,
                self.builds_started,
                self.built,
                self.failed,
                self.failed_over,
            )
        )


def clock_text(moment: datetime) -> str:
    """``14:05 UTC``: when a wait ends, as notes show it."""
    return f"{moment:%H:%M} UTC"


class EngineContext:
    """The panel, the store and the clock, with the claim/lease/fail helpers steps share."""

    def __init__(self, ctx: Context, config: EngineConfig) -> None:
        self.client, self.uow, self.clock, self.moves = ctx.client, ctx.uow, ctx.clock, ctx.moves
        self.listing = ctx.listing  # tracking's listing, kept for `/vf list`
        self.config = config
        self.worker = config.worker_id
        self.last_listing_at: datetime | None = None  # when tracking last asked the panel
        self.tick_started_at: datetime | None = None  # when the current tick began
        self._groups: dict[int, tuple[int, str]] = {}  # hypervisor id -> (group id, name)
        self.stopping = False  # set on shutdown: claim nothing more, start no new step
        self.held: dict[int, InstanceRecord] = {}  # rows this tick claimed (some since released)

    async def claim(
        self,
        states: Collection[InstanceState],
        *,
        limit: int | None = None,
        request_states: Collection[RequestState] | None = (R.RUNNING,),
    ) -> list[InstanceRecord]:
        """Lease due rows in `states` to this worker (only of running requests by default);
        nothing once the engine is stopping."""
        if self.stopping:
            return []
        async with self.uow() as uow:
            claim = Claim(
                worker=self.worker,
                states=states,
                now=self.clock(),
                lease_s=self.config.lease_s,
                limit=limit or self.config.batch,
                request_states=request_states,
            )
            claimed = await uow.instances.claim(claim)
            if claimed:  # an empty claim changed nothing: no commit (and no fsync) for it
                await uow.commit()
        self.held.update((instance.id, instance) for instance in claimed)
        return claimed

    async def release(self, instance: InstanceRecord, *, after_s: float | None = None) -> None:
        """Hand the row back; with `after_s`, nobody looks at it again before then."""
        now = self.clock()
        when = now + timedelta(seconds=after_s) if after_s else None
        async with self.uow() as uow:
            await uow.instances.release(
                instance.id, worker=self.worker, next_check_at=when, now=now
            )
            await uow.commit()

    async def run_due(
        self, states: Collection[InstanceState], step: Step, report: TickReport
    ) -> None:
        """Run `step` on the due rows in `states` of running requests, `concurrency` at a time.

        Each row is claimed only when a slot is free for it. The tick stops starting rows
        after `batch` of them or one poll interval (so tracking and other requests get their
        turn) and says so in `report.more`. Rows of requests being cancelled are handed back.
        """
        started = self.clock()
        budget = timedelta(seconds=self.config.poll_interval_s)
        lanes = max(1, self.config.concurrency)
        stopping = await self._stopping_requests()
        first = await self.claim(states, limit=min(lanes, self.config.batch))  # one per slot
        if not first:
            return
        taken = len(first)

        async def lane(row: InstanceRecord | None) -> None:
            nonlocal taken
            while True:
                if row is None:
                    if taken >= self.config.batch or self.clock() - started >= budget:
                        report.more = True
                        return
                    taken += 1
                    due = await self.claim(states, limit=1)
                    if not due:
                        taken -= 1
                        return
                    row = due[0]
                if row.request_id in stopping or self.stopping:  # cancelling, or shutting down
                    await self.release(row)
                else:
                    await self.work(row, step)
                row = None

        # return_exceptions: a stopped tick still waits for every lane to hand its row back.
        rows: list[InstanceRecord | None] = [*first, *([None] * (lanes - len(first)))]
        for outcome in await asyncio.gather(*(lane(r) for r in rows), return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        if report.more and not await self._any_due(states):
            report.more = False

    async def _any_due(self, states: Collection[InstanceState]) -> bool:
        async with self.uow() as uow:
            rows = await uow.instances.list_by_states(states, request_states=[R.RUNNING])
        now = self.clock()
        return any(
            (i.lease_until is None or i.lease_until <= now)
            and (i.next_check_at is None or i.next_check_at <= now)
            for i in rows
        )

    async def work(self, instance: InstanceRecord, step: Step) -> None:
        """Run one leased row's step: its lease is renewed meanwhile, and a failure cannot
        stop the other rows (an error edge) but hands the row back for a later retry."""
        renewer = asyncio.create_task(self._renew(instance))
        try:
            with log_fields(
                request_id=f"VF-{instance.request_id}",
                instance=instance.name,
                server_id=instance.server_id,
            ):
                await step(instance)
        except VirtFusionError as error:
            logger.warning("%s: panel error, will retry: %s", instance.name, error)
            await self.release(instance, after_s=self.config.retry_backoff_s)
        except asyncio.CancelledError:
            await self.release(instance)  # stopping: the next worker need not wait
            raise
        except DatabaseUnavailableError:
            raise  # the whole tick stops; the lease runs out and the row is taken again
        except Exception:
            reference = uuid.uuid4().hex[:8]
            logger.exception("%s: step failed (reference %s)", instance.name, reference)
            await self.release(instance, after_s=self.config.retry_backoff_s)
        finally:
            renewer.cancel()

    async def _renew(self, instance: InstanceRecord) -> None:
        """Extend the lease every third of it while the step runs (real time: a heartbeat)."""
        lease = self.config.lease_s
        while True:
            await asyncio.sleep(lease / 3)
            now = self.clock()
            change = InstanceChange(lease_until=now + timedelta(seconds=lease))
            try:
                async with self.uow() as uow:
                    kept = await uow.instances.update(
                        instance.id, now=now, worker=self.worker, change=change
                    )
                    await uow.commit()
            except Exception:  # a heartbeat's edge: the step itself decides what happens
                logger.warning("%s: could not renew its lease", instance.name, exc_info=True)
                continue
            if kept is None:
                return  # the row moved on or went to another worker

    async def _stopping_requests(self) -> set[int]:
        """Running requests being cancelled."""
        async with self.uow() as uow:
            running = await uow.requests.list_by_state([R.RUNNING])
        return {r.id for r in running if r.cancel_requested}

    async def group_of(self, hypervisor_id: int | None) -> tuple[int, str] | None:
        """The panel's group (id, name) of a hypervisor; the list is read again for a
        hypervisor not seen before. Raises VirtFusionError when the panel cannot say."""
        if hypervisor_id is None:
            return None
        if hypervisor_id not in self._groups:
            self._groups = {
                h.id: (h.group.id, h.group.name)
                async for h in self.client.hypervisors()
                if h.group is not None and h.group.id is not None
            }
        return self._groups.get(hypervisor_id)

    async def read_server(
        self, instance: InstanceRecord, expected: InstanceState, report: TickReport, when: str
    ) -> Server | None:
        """The instance's server from the panel; None (and the instance failed) when it was
        deleted there `when` ("before it was built")."""
        server_id = instance.server_id
        if server_id is None:
            raise RuntimeError(f"instance {instance.id} has no server id")
        try:
            return await self.client.server(server_id)
        except NotFoundError:
            reason = f"server {server_id} was deleted on the panel {when}"
            await self.fail(instance, expected, reason, stage="build")
            report.failed += 1
            return None

    async def wait(
        self,
        instance: InstanceRecord,
        expected: InstanceState,
        new: InstanceState,
        note: str,
        *,
        after_s: float | None = None,
    ) -> InstanceRecord | None:
        """Move to `new` (lease released) noting what vfbot now waits for; the note is the
        row's `error` until the wait ends, and an `instance.waiting` event tells people."""
        when = self.clock() + timedelta(seconds=after_s) if after_s else None
        waiting = InstanceWaiting(server_id=instance.server_id, reason=note)
        return await self.moves.move(
            instance, expected, new, error=note, next_check_at=when, event=waiting
        )

    async def cleanup(self, server_id: int | None, instance: InstanceRecord) -> bool:
        """With VF_CLEANUP_FAILED, delete what a failed build left on the panel."""
        if not self.config.cleanup_failed or server_id is None:
            return False
        try:
            await self.client.delete_server(server_id)
        except VirtFusionError as error:
            logger.warning(
                "%s: could not delete failed server %s: %s", instance.name, server_id, error
            )
            return False
        return True

    def failure(
        self, reason: str, *, stage: str, server_id: int | None, deleted: bool
    ) -> tuple[str, InstanceFailed]:
        """The stored reason and the event of a failed server."""
        if deleted:
            reason += f"; server {server_id} was deleted (VF_CLEANUP_FAILED)"
        event = InstanceFailed(server_id=server_id, error=reason, stage=stage, deleted=deleted)
        return reason, event

    async def fail(
        self,
        instance: InstanceRecord,
        expected: InstanceState,
        reason: str,
        *,
        stage: str,
        server_id: int | None = None,
    ) -> None:
        """Mark the server failed with `reason`; with VF_CLEANUP_FAILED, delete what a failed
        build left on the panel first."""
        server_id = server_id or instance.server_id
        deleted = stage == "build" and await self.cleanup(server_id, instance)
        reason, event = self.failure(reason, stage=stage, server_id=server_id, deleted=deleted)
        await self.moves.move(
            instance, expected, S.FAILED, error=reason, event=event, finished=True
        )
