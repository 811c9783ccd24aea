"""What every engine step shares: configuration, the tick report, claims, leases and failure."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.logfields import log_fields
from bot.provisioning.events import InstanceFailed
from bot.provisioning.model import InstanceRecord, InstanceState, RequestState
from bot.provisioning.ports import Claim, DatabaseUnavailableError
from bot.provisioning.transitions import Context
from bot.virtfusion import NotFoundError, Server, VirtFusionError

__all__ = ["EngineConfig", "EngineContext", "Step", "TickReport"]

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
    lease_s: float = 300.0  # longer than one create call with all its retries
    poll_interval_s: float = 10.0
    build_timeout_s: float = 1200.0
    create_grace_s: float = 120.0
    clock_skew_s: float = 300.0  # tolerance between our clock and the panel's `created`
    retry_backoff_s: float = 30.0
    max_create_attempts: int = 3
    cleanup_failed: bool = False
    batch: int = 200


@dataclass
class TickReport:
    """What one engine tick did; for logs and tests."""

    created: int = 0
    adopted: int = 0
    recreated: int = 0
    builds_started: int = 0
    built: int = 0
    failed: int = 0
    deleted: int = 0
    finished_requests: list[int] = field(default_factory=list)
    build_seconds: list[float] = field(default_factory=list)  # of the builds that completed

    @property
    def busy(self) -> bool:
        return any((self.created, self.adopted, self.builds_started, self.built, self.failed))


class EngineContext:
    """The panel, the store and the clock, with the claim/lease/fail helpers steps share."""

    def __init__(self, ctx: Context, config: EngineConfig) -> None:
        self.client, self.uow, self.clock, self.moves = ctx.client, ctx.uow, ctx.clock, ctx.moves
        self.listing = ctx.listing  # tracking's listing, kept for `/vf list`
        self.config = config
        self.worker = config.worker_id
        self._slots = asyncio.Semaphore(max(1, config.concurrency))
        self.stopping = False  # set on shutdown: claim nothing more, start no new step
        self.held: dict[int, InstanceRecord] = {}  # rows this tick claimed (some since released)

    async def claim(
        self,
        states: Collection[InstanceState],
        *,
        limit: int | None = None,
        request_states: Collection[RequestState] | None = (R.RUNNING,),
        lease_s: float | None = None,
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
                lease_s=lease_s or self.config.lease_s,
                limit=limit or self.config.batch,
                request_states=request_states,
            )
            claimed = await uow.instances.claim(claim)
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

    async def run_due(self, state: InstanceState, step: Step, *, limit: int | None = None) -> None:
        """Claim due rows in `state` and run `step` on each, in parallel up to the concurrency
        cap; rows of requests being cancelled are handed back untouched."""
        due = await self.claim([state], limit=limit)
        if not due:
            return
        stopping = await self.stopping_requests({i.request_id for i in due})

        async def guarded(instance: InstanceRecord) -> None:
            if instance.request_id in stopping:
                await self.release(instance)
                return
            await step(instance)

        await self.run_all(due, guarded)

    async def run_all(self, instances: Sequence[InstanceRecord], step: Step) -> None:
        await asyncio.gather(*(self._isolated(i, step) for i in instances))

    async def _isolated(self, instance: InstanceRecord, step: Step) -> None:
        """Run one instance's step so that its failure cannot stop the others (an error edge)."""
        async with self._slots:
            if self.stopping:  # waited for a slot while shutting down: leave it to others
                return
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
            except DatabaseUnavailableError:
                raise  # the whole tick stops; the lease expires and the row is taken again
            except Exception:
                reference = uuid.uuid4().hex[:8]
                logger.exception("%s: step failed (reference %s)", instance.name, reference)
                await self.release(instance, after_s=self.config.retry_backoff_s)

    async def stopping_requests(self, request_ids: set[int]) -> set[int]:
        """The ones among `request_ids` that are cancelled, gone or no longer running."""
        async with self.uow() as uow:
            records = await uow.requests.get_many(request_ids)
        return {
            request_id
            for request_id in request_ids
            if (record := records.get(request_id)) is None
            or record.cancel_requested
            or record.state is not R.RUNNING
        }

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
        deleted = False
        if self.config.cleanup_failed and server_id is not None and stage == "build":
            try:
                await self.client.delete_server(server_id)
                deleted = True
            except VirtFusionError as error:
                logger.warning(
                    "%s: could not delete failed server %s: %s", instance.name, server_id, error
                )
        if deleted:
            reason += f"; server {server_id} was deleted (VF_CLEANUP_FAILED)"
        await self.moves.move(
            instance,
            expected,
            S.FAILED,
            error=reason,
            event=InstanceFailed(server_id=server_id, error=reason, stage=stage, deleted=deleted),
            finished=True,
        )
