"""The provisioning engine: create → build → track → finish, exactly once, safe in replicas.

Every step follows one pattern: a short unit of work records the intent (and leases the row to
this worker), the panel is called with no database session open, and a second unit of work
records the result together with its outbox event. The panel has no idempotency key, so:

- `POST /servers` is never repeated once it may have reached the panel. An ambiguous create
  (timeout, 5xx, dropped connection, or a worker that died mid-call) puts the instance in
  `create_unknown`, and reconciliation adopts the owner's unnamed, unbuilt server that matches
  everything the create body fixed, or creates again only after `create_grace_s` with nothing
  to adopt (`reconcile`).
- A server is built only while its `commissionStatus` is 0; an ambiguous build is settled by
  asking the panel (`build`, `track`).
- A row is leased only while a step works on it, and released on every way out (`context`).

One module per step: ``create``, ``reconcile``, ``build``, ``track`` and ``finish``; what they
share (claims, leases, failure) is in ``context``.
"""

from __future__ import annotations

import logging

from bot.provisioning.engine.build import build_one
from bot.provisioning.engine.context import EngineConfig, EngineContext, TickReport
from bot.provisioning.engine.create import create_one
from bot.provisioning.engine.finish import finish_requests, settle_cancelled
from bot.provisioning.engine.reconcile import reconcile
from bot.provisioning.engine.track import track, track_server
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import DatabaseUnavailableError
from bot.provisioning.requests import RequestService
from bot.provisioning.servers.expiry import ExpiryService
from bot.provisioning.transitions import Context

__all__ = ["Engine", "EngineConfig", "TickReport"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState


class Engine:
    """One tick runs every step over what is due; each server is isolated from the others."""

    def __init__(
        self,
        ctx: Context,
        config: EngineConfig,
        *,
        requests: RequestService,
        expiry: ExpiryService | None = None,
    ) -> None:
        self._ctx = EngineContext(ctx, config)
        self._requests = requests
        self._expiry = expiry

    @property
    def worker_id(self) -> str:
        """The lease owner this engine writes."""
        return self._ctx.worker

    @property
    def config(self) -> EngineConfig:
        return self._ctx.config

    @property
    def stopping(self) -> bool:
        """Whether `stop_claiming` was called (shutting down)."""
        return self._ctx.stopping

    def stop_claiming(self) -> None:
        """Shutdown, first step: claim no more rows and start no new step; the steps under
        way finish (a panel call in flight is never abandoned on purpose)."""
        self._ctx.stopping = True

    async def release_held(self) -> int:
        """Shutdown, last step (after the tick ended or was cancelled): hand back every row the
        last tick claimed that this worker still leases, so another replica takes it at once
        instead of waiting for the lease to expire. Returns how many rows it looked at."""
        held, self._ctx.held = list(self._ctx.held.values()), {}
        try:
            for instance in held:
                await self._ctx.release(instance)
        except DatabaseUnavailableError as error:
            # What would happen anyway after a crash: the rows are free once VF_LEASE passes.
            logger.warning(
                "could not hand back the rows in flight (%s); free after VF_LEASE", error
            )
            return 0
        return len(held)

    async def run_once(self) -> TickReport:
        """One pass of the engine over everything due.

        Creates and builds run as a pipeline: a created server's build starts as soon as the
        create is recorded, and a row is taken as soon as a slot frees up, within a budget of
        one poll interval (`report.more` says when rows were left for the next tick). Tracking
        then reads every building server in one listing, and finished requests are closed.
        """
        self._ctx.held.clear()
        report = TickReport()
        ctx = self._ctx
        ctx.tick_started_at = ctx.clock()
        await self._requests.expire_due()
        await settle_cancelled(ctx, report)
        await reconcile(ctx, report)

        async def step(instance: InstanceRecord) -> None:
            if instance.state is S.PLANNED:
                await create_one(ctx, instance, report)
            else:
                await build_one(ctx, instance, report)

        await ctx.run_due([S.PLANNED, S.CREATED], step, report)
        if ctx.stopping:  # shutting down: the steps in flight are done; others take it on
            return report
        await track(ctx, report)
        await finish_requests(ctx, report)
        if self._expiry is not None:  # lifetimes: reminders and actions, once per expiry
            expiry = await self._expiry.run_due()
            report.warned, report.expired = expiry.warned, expiry.acted
        return report

    async def follow(self, server_id: int | None) -> TickReport:
        """A hint that something changed on the panel (a webhook): follow the building server
        with `server_id` now, or, when no building server has that id (or none is given), track
        every building server now; then finish the requests that ended. Everything is read from
        the panel; the hint only says when."""
        report = TickReport()
        ctx = self._ctx
        if ctx.stopping:
            return report
        if server_id is None or not await track_server(ctx, report, server_id):
            await track(ctx, report, force=True)
        await finish_requests(ctx, report)
        return report

    async def run_while_busy(self, *, max_ticks: int = 100) -> TickReport:
        """Tick again at once while a tick did something (up to `max_ticks`), as `vfbot serve`
        and `vfbot worker` do; returns the last tick's report."""
        report = await self.run_once()
        for _ in range(max_ticks - 1):
            if not report.busy or self._ctx.stopping:
                break
            report = await self.run_once()
        return report
