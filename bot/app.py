"""Composition root: the only place that names concrete adapters and wires them together.

`open_core` gives the CLI the domain services over the database and the panel; `build` gives
`vfbot serve` a `Runtime`: the same core plus the Slack app, its HTTP server, the notifier and
the scheduler. Both long-running processes (`serve`, `worker`) get `Ops`: metrics, health and
readiness (`worker_ops` for the worker).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.factories import (
    Clock,
    Sleep,
    engine_config,
    engine_defaults,
    fleet_jobs,
    lifetime_policy,
    make_client,
    make_database,
    prepare_database,
    request_limits,
    utcnow,
)
from bot.health import Probe, database_check, panel_check
from bot.metrics import StoreSource
from bot.ops import Ops, listen
from bot.provisioning.engine import Engine, TickReport
from bot.provisioning.fleet.jobs import FleetJobs
from bot.provisioning.intake import Intake
from bot.provisioning.outbox import OutboxConsumer
from bot.provisioning.planner import Planner
from bot.provisioning.ports import DatabaseUnavailableError
from bot.provisioning.requests import RequestService
from bot.provisioning.servers import (
    DeleteService,
    ExpiryService,
    Inventory,
    RebuildService,
    ResizeService,
    ServerActions,
    ServerChanges,
    ServerResolver,
    Servers,
)
from bot.provisioning.servers.locks import LockWait
from bot.provisioning.transitions import Context, Moves
from bot.redact import BOLT_LOGGER
from bot.scheduler import Ticker
from bot.slack.choices import ChoicesCache
from bot.slack.deps import SlackDeps
from bot.slack.files import slack_downloader
from bot.slack.listeners import register_listeners
from bot.slack.membership import GroupMembership
from bot.slack.notifier import PER_STREAM as NOTIFIER_PER_STREAM
from bot.slack.notifier import SUBSCRIBER as NOTIFIER_SUBSCRIBER
from bot.slack.notifier import SlackNotifier
from bot.slack.policy import AccessPolicy
from bot.slack.setup import (
    BotAuthorization,
    SlackSetupError,
    SlackUnreachableError,
    bolt_client,
    check_bot_token,
    connect_socket,
    make_slack_client,
)
from bot.slack.timing import ack_timer
from bot.slack.web import make_web_app
from bot.store.sql import Database
from bot.virtfusion import VirtFusionClient
from bot.webhook import Hint, WebhookReceiver

__all__ = [
    "OUTBOX_RETENTION",
    "Core",
    "Runtime",
    "SlackSetupError",
    "SlackUnreachableError",
    "build_core",
    "open_core",
    "timed_tick",
    "webhook_receiver",
    "worker_ops",
]

logger = logging.getLogger("bot.app")


@dataclass
class Core:
    """The domain services over one database and one panel client."""

    settings: Settings
    client: VirtFusionClient
    db: Database
    clock: Clock
    moves: Moves
    requests: RequestService
    engine: Engine
    intake: Intake
    servers: Servers
    fleet: FleetJobs

    def outbox(
        self, subscriber: str, handler: Callable[..., Awaitable[None]], *, lease_s: float = 6
    ) -> OutboxConsumer:
        """A consumer of the outbox for one subscriber, event by event (the CLI's progress)."""
        return OutboxConsumer(
            self.db.uow, subscriber=subscriber, handler=handler, clock=self.clock, lease_s=lease_s
        )


def build_core(
    settings: Settings,
    client: VirtFusionClient,
    db: Database,
    *,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
) -> Core:
    """Wire the domain services; `db` must be started before they are used."""
    config = engine_config(settings)
    moves = Moves(db.uow, clock, config.worker_id)
    ctx = Context(client, db.uow, clock, moves, settings.virtfusion_user_id, sleep)
    requests = RequestService(ctx)
    locks = LockWait()
    deletes = DeleteService(ctx, locks=locks)
    servers = Servers(
        resolver=ServerResolver(ctx),
        inventory=Inventory(ctx, defaults=engine_defaults(settings)),
        deletes=deletes,
        actions=ServerActions(ctx, locks=locks),
        changes=ServerChanges(ctx, locks=locks),
        rebuilds=RebuildService(
            ctx,
            locks=locks,
            build_timeout_s=settings.vf_build_timeout,
            grace_s=settings.vf_create_grace,
        ),
        resizes=ResizeService(ctx, locks=locks, limits=request_limits(settings)),
        expiry=ExpiryService(ctx, policy=lifetime_policy(settings), deletes=deletes),
    )
    engine = Engine(ctx, config, requests=requests, expiry=servers.expiry)
    planner = Planner(client, engine_defaults(settings))
    intake = Intake(planner, requests, request_limits(settings), lifetime_policy(settings))
    fleet = fleet_jobs(settings, ctx, expiring=servers.expiry.expiring_between)
    return Core(settings, client, db, clock, moves, requests, engine, intake, servers, fleet)


async def timed_tick(core: Core, ops: Ops) -> TickReport:
    """One engine tick, timed and counted in the metrics."""
    started = time.perf_counter()
    report = await core.engine.run_once()
    ops.metrics.observe_tick(report, time.perf_counter() - started)
    return report


def _panel_probe(core: Core) -> Probe:
    # Reported, never required: while the panel is down Slack must still reach vfbot to hear
    # vfbot's "cannot reach the panel" answer.
    check = panel_check(core.client, clock=core.clock)
    return Probe(check, every_s=30, timeout_s=5, required=False)


def worker_ops(core: Core, subscribers: tuple[str, ...]) -> Ops:
    """Metrics and health of `vfbot worker` (its `--metrics-port`): the database is required,
    the panel reported."""
    store = StoreSource(core.db.uow, core.clock, subscribers, core.engine.worker_id)
    probes = {
        "database": Probe(database_check(core.db), every_s=5, timeout_s=2),
        "panel": _panel_probe(core),
    }
    ops = Ops(store, probes)
    core.client.observe(ops.metrics.observe_panel)
    return ops


def webhook_receiver(core: Core, ops: Ops, then: Callable[[], None]) -> WebhookReceiver:
    """The panel's webhooks for a process that runs `core`'s engine (`serve`, `worker`): each
    hint is followed at once (`Engine.follow`, counted like a tick), then `then()` wakes the
    process's own loops (Slack delivery, printing). Off (404) without VIRTFUSION_WEBHOOK_TOKEN."""
    token = core.settings.virtfusion_webhook_token

    async def follow(hint: Hint) -> None:
        started = time.perf_counter()
        report = await core.engine.follow(hint.server_id)
        ops.metrics.observe_tick(report, time.perf_counter() - started)
        then()

    return WebhookReceiver(
        token.get_secret_value() if token is not None else None,
        core.db.hook_store(),
        follow,
        clock=core.clock,
        observe=ops.metrics.observe_webhook,
    )


@asynccontextmanager
async def open_core(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    client: VirtFusionClient | None = None,
    sleep: Sleep = asyncio.sleep,
    upgrade: bool = False,
) -> AsyncIterator[Core]:
    """Start the database and panel client, yield the core, close both on exit.

    Only `upgrade` (`vfbot worker`) creates or migrates the database (`prepare_database`);
    otherwise a missing or older database raises `DatabaseUnavailableError`.
    """
    db = make_database(settings.database_url)
    await prepare_database(db, upgrade=upgrade, sleep=sleep)
    panel = client or make_client(settings)
    try:
        yield build_core(settings, panel, db, clock=clock, sleep=sleep)
    finally:
        await panel.close()
        await db.stop()


OUTBOX_RETENTION = timedelta(days=1)
"""How long `vfbot serve` keeps outbox events after Slack has had them (docs/operations.md)."""


# -- vfbot serve ---------------------------------------------------------------------------------


class Runtime:
    """`vfbot serve`: the Slack app, its HTTP server, the engine and the notifier in one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        slack_client: AsyncWebClient | None = None,
        panel_client: VirtFusionClient | None = None,
        host: str | None = None,  # VF_BIND
        port: int | None = None,
        pacing_s: float = 1.0,
        run_scheduler: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        process_before_response: bool = False,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._host = settings.vf_bind if host is None else host
        self._port = settings.port if port is None else port
        self._pacing_s = pacing_s
        self._run_scheduler = run_scheduler
        self._monotonic = monotonic
        self._process_before_response = process_before_response
        self.slack = slack_client or make_slack_client(settings)
        self.panel = panel_client or make_client(settings)
        self.db = make_database(settings.database_url)
        self._sleep = sleep
        self.core = build_core(settings, self.panel, self.db, clock=clock, sleep=sleep)
        store = StoreSource(self.db.uow, clock, (NOTIFIER_SUBSCRIBER,), self.core.engine.worker_id)
        probes = {
            "database": Probe(database_check(self.db), every_s=5, timeout_s=2),
            "slack": Probe(self._slack_ready, every_s=30, timeout_s=5),
            "panel": _panel_probe(self.core),
        }
        self.ops = Ops(store, probes)
        self.panel.observe(self.ops.metrics.observe_panel)
        self.hooks = webhook_receiver(self.core, self.ops, self._hinted)
        self.ticker = Ticker()
        self.deps: SlackDeps | None = None
        self.bolt: AsyncApp | None = None
        self._outbox: OutboxConsumer | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._authorization = BotAuthorization(self.slack)
        self._slack_session: aiohttp.ClientSession | None = None
        self.bound_port: int | None = None
        self._stopped = False
        self._db_started = False

    async def start(self) -> None:
        """Open (create or upgrade) the database, wire Slack, listen, check the Slack tokens
        (waiting a bounded time for Slack to be reachable), and start ticking.

        Raises `DatabaseUnavailableError`, `SlackSetupError` when Slack refuses a token and
        `SlackUnreachableError` when it never answered; each time everything opened so far is
        closed again.
        """
        settings = self.settings
        try:
            await prepare_database(self.db, upgrade=True, sleep=self._sleep)
        except DatabaseUnavailableError:
            await self.stop()  # the panel client is open already
            raise
        self._db_started = True
        if self.slack.session is None:  # one connection pool for every Web API call
            self.slack.session = self._slack_session = aiohttp.ClientSession()
        self.deps = deps = self._slack_deps()
        notifier = SlackNotifier(
            self.slack,
            deps,
            pacing_s=self._pacing_s,
            notify_channel=settings.vf_notify_channel,
            alert_channel=settings.vf_alert_channel,
        )
        self._outbox = OutboxConsumer(
            self.db.uow,
            subscriber=NOTIFIER_SUBSCRIBER,
            streams=notifier.deliver,
            per_stream=NOTIFIER_PER_STREAM,
            priority=notifier.priority,
            clock=self.clock,
        )
        # Socket Mode without a signing secret: POST /slack/events still listens, so it must
        # still verify. A random secret nobody knows refuses every HTTP request (401), while
        # Bolt skips verification for envelopes that arrive over the socket.
        signing = settings.slack_signing_secret
        secret = signing.get_secret_value() if signing is not None else secrets.token_hex(32)
        self.bolt = bolt = self._bolt(deps, secret)
        routes = [*self.ops.routes(), *self.hooks.routes()]
        web_app = make_web_app(bolt, routes, signing_secret=secret)
        self._runner, self.bound_port = await listen(web_app, self._host, self._port)
        try:
            # Bolt authorizes every request with this answer: no auth.test per first request.
            self._authorization.remember(await check_bot_token(self.slack, sleep=self._sleep))
            if settings.slack_app_token is not None:
                app_token = settings.slack_app_token.get_secret_value()
                self._socket = AsyncSocketModeHandler(bolt, app_token=app_token)
                await connect_socket(self.slack, self._socket, app_token, sleep=self._sleep)
        except (SlackSetupError, SlackUnreachableError):
            await self.stop()
            raise
        await self.ops.start(background=self._run_scheduler)
        if self._run_scheduler:
            # Ticks again at once while there is more to do; the interval bounds idle polling.
            self.ticker.add("engine", self._engine_ticks, settings.vf_poll_interval)
            self.ticker.add("rebuilds", self._rebuilds, settings.vf_poll_interval)
            self.ticker.add("slack", self.deliver, 0.5)  # a notice waits at most this long
            self.ticker.add("operations", self._operations, 60)
            self.ticker.add("housekeeping", self._housekeeping, 600)
            fleet = self.core.fleet
            if fleet.alerting:
                self.ticker.add("alerts", self._alerts, settings.vf_alert_interval)
            if fleet.reports is not None:
                at, zone = fleet.reports.at, fleet.reports.zone
                self.ticker.add_daily("daily-report", self._daily_report, at, zone)
            self.ticker.start()
            self.ticker.kick("daily-report")  # started within the hour after it: post it now

    def _slack_deps(self) -> SlackDeps:
        settings = self.settings
        policy = AccessPolicy.from_settings(settings)

        async def members(group_id: str) -> set[str]:
            response = await self.slack.usergroups_users_list(usergroup=group_id)
            return {str(u) for u in response.get("users") or []}

        return SlackDeps(
            requests=self.core.requests,
            intake=self.core.intake,
            servers=self.core.servers,
            moves=self.core.moves,
            policy=policy,
            approval_ttl_s=settings.vf_approval_ttl,
            membership=GroupMembership(
                members, ttl_s=settings.vf_group_cache, clock=self._monotonic
            ),
            choices=ChoicesCache(
                self.panel,
                engine_defaults(settings),
                max_instances=settings.vf_max_instances,
                ttl_s=300,
                clock=self._monotonic,
                lifetimes=lifetime_policy(settings),
            ),
            store=self.db.slack_store(),
            download=slack_downloader(
                settings.slack_bot_token,
                api_url=settings.slack_api_url,
                max_bytes=self.core.intake.limits.max_body_bytes,
            ),
            clock=self.clock,
            kick=self.kick,
        )

    def _bolt(self, deps: SlackDeps, signing_secret: str) -> AsyncApp:
        bolt = AsyncApp(
            client=bolt_client(self.slack),
            authorize=self._authorization.authorize,
            signing_secret=signing_secret,
            # Bolt's loggers copy their level from this one (unset) instead of the root's, and
            # are named below "slack_bolt": bot.redact.quiet_libraries then holds them all.
            name=BOLT_LOGGER,
            logger=logging.getLogger(BOLT_LOGGER),
            request_verification_enabled=True,
            process_before_response=self._process_before_response,
        )
        bolt.middleware(ack_timer(self.ops.metrics.observe_ack))  # first: times every ack
        register_listeners(bolt, deps)

        @bolt.error
        async def on_error(error: Exception, body: dict[str, object]) -> None:
            reference = uuid.uuid4().hex[:8]
            logger.error("Slack listener failed (reference %s)", reference, exc_info=error)

        return bolt

    async def stop(self) -> None:
        """Stop in order, within VF_SHUTDOWN_TIMEOUT: report not ready, claim no more work,
        let the engine tick and the Slack delivery in flight finish (cut short at the deadline),
        hand back the rows still leased, let listener work finish, then close connections.
        Idempotent, and safe after a start that failed part-way."""
        if self._stopped:
            return
        self._stopped = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.vf_shutdown_timeout
        self.ops.stopping()
        self.core.engine.stop_claiming()
        if self._outbox is not None:
            self._outbox.stop()
        # Keep a few seconds for what follows the ticker (leases, closing connections).
        await self.ticker.stop(timeout_s=max(deadline - loop.time() - 3, 0.5))
        await self.hooks.stop(timeout_s=max(deadline - loop.time() - 3, 0.5))
        if self._db_started:
            await self.core.engine.release_held()
        if self.deps is not None:
            try:
                await asyncio.wait_for(
                    self.deps.background.idle(), timeout=max(deadline - loop.time() - 1, 0.1)
                )
            except TimeoutError:
                logger.warning("stopping with listener work still running")
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]  # untyped in Bolt
        if self._runner is not None:
            await self._runner.cleanup()
        await self.ops.stop()
        await self.panel.close()
        if self._slack_session is not None:
            await self._slack_session.close()
        await self.db.stop()

    def kick(self) -> None:
        """Run the engine and the notifier now instead of at their next tick."""
        self.ticker.kick("engine")
        self.ticker.kick("slack")

    async def tick(self) -> None:
        """One engine tick, the operations' upkeep and one notifier pass (tests drive the
        runtime with this)."""
        await self._engine_tick()
        await self._rebuilds()
        await self._operations()
        await self.deliver()

    async def deliver(self) -> int:
        """Deliver what the outbox holds for Slack now; returns how many events went out."""
        return await self._outbox.drain() if self._outbox is not None else 0

    async def settle(self) -> None:
        """Wait for listener work started after `ack()`."""
        if self.deps is not None:
            await self.deps.background.idle()

    async def _engine_tick(self) -> None:
        await timed_tick(self.core, self.ops)

    async def _engine_ticks(self, max_ticks: int = 100) -> None:
        """Tick, and tick again at once while a tick did work (or left work for the next)."""
        for _ in range(max_ticks):
            report = await timed_tick(self.core, self.ops)
            if not report.busy or self.core.engine.stopping:
                return

    async def _operations(self) -> None:
        """Expire undecided operations and finish deletes and resizes a crash left running (the
        notifier tells Slack from the outbox)."""
        servers = self.core.servers
        changed = await servers.deletes.expire_due()
        changed += await servers.deletes.resume_stale()
        changed += await servers.resizes.resume_stale()
        if changed:
            self.kick()

    async def _rebuilds(self) -> None:
        """Follow rebuilds to built or failed (the notifier posts their milestones)."""
        if await self.core.servers.rebuilds.track_due():
            self.ticker.kick("slack")

    def _hinted(self) -> None:
        """A webhook was followed: post what changed, and follow rebuilds, at once."""
        self.ticker.kick("rebuilds")
        self.ticker.kick("slack")

    async def _alerts(self) -> None:
        """Capacity and traffic alerts (the notifier posts them to VF_ALERT_CHANNEL)."""
        if await self.core.fleet.alerts():
            self.ticker.kick("slack")

    async def _daily_report(self) -> None:
        if await self.core.fleet.report():
            self.ticker.kick("slack")

    async def _housekeeping(self) -> None:
        await self.core.fleet.prune(self.clock())
        await self.hooks.forget()
        if self.deps is not None:
            await self.deps.store.forget_events(self.clock() - timedelta(hours=1))
        if self._outbox is not None:
            await self._outbox.prune(self.clock() - OUTBOX_RETENTION)

    async def _slack_ready(self) -> tuple[bool, str]:
        if self._socket is not None:
            connected = await self._socket.client.is_connected()
            return connected, "socket mode connected" if connected else "socket mode disconnected"
        try:
            await self.slack.auth_test()
        except SlackApiError as error:
            return False, f"auth.test answered {error.response.get('error')}"
        except (aiohttp.ClientError, TimeoutError) as error:
            return False, f"cannot reach Slack ({error.__class__.__name__})"
        return True, "token accepted"
