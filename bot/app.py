"""Composition root: the only place that names concrete adapters and wires them together."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.provisioning.operations import OperationsService
from bot.provisioning.outbox import OutboxConsumer
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.planner import Planner
from bot.provisioning.request import RequestLimits
from bot.provisioning.service import EngineConfig, ProvisioningService
from bot.scheduler import Ticker
from bot.slack.choices import ChoicesCache
from bot.slack.deps import DownloadError, SlackDeps
from bot.slack.listeners import register_listeners
from bot.slack.listeners.ops import refresh_operation_message
from bot.slack.membership import GroupMembership
from bot.slack.notifier import SUBSCRIBER as NOTIFIER_SUBSCRIBER
from bot.slack.notifier import ChannelPacer, SlackNotifier
from bot.slack.policy import AccessPolicy
from bot.slack.server import make_web_app
from bot.store.sql import Database
from bot.virtfusion import AiohttpVirtFusionClient, VirtFusionClient, VirtFusionError

logger = logging.getLogger("bot.app")

__all__ = [
    "Engine",
    "Runtime",
    "SlackSetupError",
    "engine_config",
    "engine_defaults",
    "make_client",
    "make_operations",
    "make_slack_client",
    "open_engine",
    "open_operations",
    "request_limits",
    "slack_problems",
    "slack_secrets",
    "utcnow",
]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_client(settings: Settings) -> VirtFusionClient:
    """The panel client the settings describe."""
    return AiohttpVirtFusionClient(
        settings.panel_api_url,
        settings.virtfusion_api_token,
        timeout_s=settings.virtfusion_timeout,
        rate_limit_per_s=settings.virtfusion_rate_limit,
        concurrency=settings.virtfusion_concurrency,
    )


def request_limits(settings: Settings) -> RequestLimits:
    return RequestLimits(
        max_instances=settings.vf_max_instances,
        memory_mb=(settings.vf_min_memory_mb, settings.vf_max_memory_mb),
        disk_gb=(settings.vf_min_disk_gb, settings.vf_max_disk_gb),
        cpu=(1, settings.vf_max_cpu),
    )


def engine_defaults(settings: Settings) -> EngineDefaults:
    return EngineDefaults(
        user_id=settings.virtfusion_user_id,
        package_id=settings.virtfusion_package_id,
        default_group_id=settings.virtfusion_hypervisor_group_id,
        default_network_profile_id=settings.virtfusion_network_profile_id,
    )


def engine_config(settings: Settings) -> EngineConfig:
    worker = settings.vf_worker_id or f"{socket.gethostname()}-{id(settings):x}"
    return EngineConfig(
        owner_user_id=settings.virtfusion_user_id,
        worker_id=worker,
        concurrency=settings.virtfusion_concurrency,
        poll_interval_s=settings.vf_poll_interval,
        build_timeout_s=settings.vf_build_timeout,
        create_grace_s=settings.vf_create_grace,
        cleanup_failed=settings.vf_cleanup_failed,
        lease_s=settings.vf_lease,
    )


@dataclass
class Engine:
    """The provisioning engine and what it runs on."""

    settings: Settings
    client: VirtFusionClient
    db: Database
    planner: Planner
    service: ProvisioningService
    clock: Clock


@asynccontextmanager
async def open_engine(
    settings: Settings, *, clock: Clock = utcnow, client: VirtFusionClient | None = None
) -> AsyncIterator[Engine]:
    """Start the database and panel client; close both on exit."""
    db = Database(settings.database_url)
    await db.start()
    panel = client or make_client(settings)
    try:
        service = ProvisioningService(panel, db.uow, engine_config(settings), clock)
        planner = Planner(panel, engine_defaults(settings))
        yield Engine(settings, panel, db, planner, service, clock)
    finally:
        await panel.close()
        await db.stop()


def make_operations(
    settings: Settings,
    client: VirtFusionClient,
    db: Database,
    *,
    clock: Clock = utcnow,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> OperationsService:
    """The day-2 operations service over this panel client and database."""
    return OperationsService(
        client,
        db.uow,
        owner_user_id=settings.virtfusion_user_id,
        clock=clock,
        sleep=sleep,
        defaults=engine_defaults(settings),
    )


@asynccontextmanager
async def open_operations(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    client: VirtFusionClient | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[OperationsService]:
    """Start the database and panel client for day-2 operations; close both on exit."""
    db = Database(settings.database_url)
    await db.start()
    panel = client or make_client(settings)
    try:
        yield make_operations(settings, panel, db, clock=clock, sleep=sleep)
    finally:
        await panel.close()
        await db.stop()


# -- the Slack app -------------------------------------------------------------------------------


class SlackSetupError(Exception):
    """Slack credentials are missing or refused; the message says what to set."""


# apps.connections.open errors that no retry fixes: the app-level token itself is wrong.
_APP_TOKEN_REJECTED = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "not_allowed_token_type",
        "missing_scope",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
    }
)


def slack_problems(settings: Settings) -> list[str]:
    """What `vfbot serve` still needs, one line per missing or bad setting."""
    problems: list[str] = []
    if settings.slack_bot_token is None:
        problems.append("SLACK_BOT_TOKEN is not set (the xoxb- token from OAuth & Permissions)")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        problems.append(
            "set SLACK_APP_TOKEN (xapp-, Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
        )
    app_token = settings.slack_app_token
    if app_token is not None and not app_token.get_secret_value().startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    try:
        AccessPolicy.from_settings(settings)
    except ValueError as error:
        problems.append(f"VF_REQUIRE_APPROVAL {error}")
    else:
        problems.extend(AccessPolicy.from_settings(settings).validate())
    return problems


def slack_secrets(settings: Settings) -> list[str]:
    """Every secret value, for the log redactor."""
    values = [settings.virtfusion_api_token]
    for secret in (
        settings.slack_bot_token,
        settings.slack_app_token,
        settings.slack_signing_secret,
    ):
        if secret is not None:
            values.append(secret)
    return [v.get_secret_value() for v in values]


def make_slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: retries connection errors, 429 (Retry-After) and 500/503."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class Runtime:
    """`vfbot serve`: the Slack app, its HTTP server, the engine and the notifier in one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        slack_client: AsyncWebClient | None = None,
        panel_client: VirtFusionClient | None = None,
        host: str = "0.0.0.0",  # a server; the container decides what is exposed
        port: int | None = None,
        pacing_s: float = 1.0,
        run_scheduler: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        process_before_response: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._host = host
        self._port = settings.port if port is None else port
        self._pacing_s = pacing_s
        self._run_scheduler = run_scheduler
        self._monotonic = monotonic
        self._process_before_response = process_before_response
        self._sleep = sleep
        self.slack = slack_client or make_slack_client(settings)
        self.panel = panel_client or make_client(settings)
        self.db = Database(settings.database_url)
        self.ticker = Ticker()
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._slack_ok = False
        self._panel_probe_at = -1e9
        self.bound_port: int | None = None
        self._stopped = False

    async def start(self) -> None:
        settings = self.settings
        await self.db.start()
        config = engine_config(settings)
        self.service = ProvisioningService(self.panel, self.db.uow, config, self.clock)
        planner = Planner(self.panel, engine_defaults(settings))
        access = AccessPolicy.from_settings(settings)

        async def members(group_id: str) -> set[str]:
            response = await self.slack.usergroups_users_list(usergroup=group_id)
            return {str(u) for u in response.get("users") or []}

        self.ops = make_operations(
            settings, self.panel, self.db, clock=self.clock, sleep=self._sleep
        )
        self.deps = SlackDeps(
            service=self.service,
            ops=self.ops,
            planner=planner,
            limits=request_limits(settings),
            access=access,
            approval=access.approval,
            approval_ttl_s=settings.vf_approval_ttl,
            membership=GroupMembership(
                members, ttl_s=settings.vf_group_cache, clock=self._monotonic
            ),
            choices=ChoicesCache(
                self.panel,
                user_id=settings.virtfusion_user_id,
                package_id=settings.virtfusion_package_id,
                default_group_id=settings.virtfusion_hypervisor_group_id,
                max_instances=settings.vf_max_instances,
                ttl_s=300,
                clock=self._monotonic,
            ),
            download=self._download,
            clock=self.clock,
            kick=self.kick,
        )
        self.notifier = SlackNotifier(
            self.slack,
            self.service,
            clock=self.clock,
            pacer=ChannelPacer(self._pacing_s),
            notify_channel=settings.vf_notify_channel,
        )
        self.outbox = OutboxConsumer(
            self.db.uow,
            subscriber=NOTIFIER_SUBSCRIBER,
            handler=self.notifier.handle,
            clock=self.clock,
            lease_s=30,
        )
        signing = settings.slack_signing_secret
        self.bolt = AsyncApp(
            client=self.slack,
            # Socket Mode without a signing secret: POST /slack/events still listens, so it must
            # still verify. A random secret nobody knows refuses every HTTP request (401), while
            # Bolt skips verification for envelopes that arrive over the socket.
            signing_secret=(
                signing.get_secret_value() if signing is not None else secrets.token_hex(32)
            ),
            request_verification_enabled=True,
            process_before_response=self._process_before_response,
        )
        register_listeners(self.bolt, self.deps)

        @self.bolt.error
        async def on_error(error: Exception, body: dict[str, object]) -> None:
            reference = uuid.uuid4().hex[:8]
            logger.error("Slack listener failed (reference %s)", reference, exc_info=error)

        web_app = make_web_app(
            self.bolt,
            {"database": self._db_ready, "slack": self._slack_ready, "panel": self._panel_ready},
        )
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port
        if settings.slack_app_token is not None:
            app_token = settings.slack_app_token.get_secret_value()
            self._socket = AsyncSocketModeHandler(self.bolt, app_token=app_token)
            try:
                await self._connect_socket(self._socket, app_token)
            except SlackSetupError:
                await self.stop()
                raise
        try:
            await self.slack.auth_test()
            self._slack_ok = True
        except SlackApiError as error:
            logger.error("Slack rejected SLACK_BOT_TOKEN: %s", error.response.get("error"))
        if self._run_scheduler:
            self.ticker.add("engine", self.service.run_once, settings.vf_poll_interval)
            self.ticker.add("slack", self.outbox.drain, 1.0)
            self.ticker.add("operations", self._expire_operations, 60)
            self.ticker.add("housekeeping", self._housekeeping, 600)
            self.ticker.start()

    async def stop(self) -> None:
        """Stop ticking, let in-flight listener work finish, close connections; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.ticker.stop()
        try:
            await asyncio.wait_for(self.deps.background.idle(), timeout=10)
        except TimeoutError:
            logger.warning("stopping with listener work still running")
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]  # untyped in Bolt
        if self._runner is not None:
            await self._runner.cleanup()
        await self.panel.close()
        await self.db.stop()

    async def _connect_socket(self, handler: AsyncSocketModeHandler, app_token: str) -> None:
        """Open the Socket Mode connection; a token Slack refuses fails fast.

        Bolt's client retries a failed connect forever (every `ping_interval`), so a wrong
        SLACK_APP_TOKEN would hang `start()` with nothing but log lines. The first
        `apps.connections.open` is made here instead: a rejected token raises
        `SlackSetupError`; any other failure is left to the client's own retrying.
        """
        try:
            opened = await self.slack.apps_connections_open(app_token=app_token)
        except SlackApiError as error:
            code = str(error.response.get("error"))
            if code in _APP_TOKEN_REJECTED:
                needed = error.response.get("needed")
                detail = f"; it needs the {needed} scope" if needed else ""
                raise SlackSetupError(
                    f"Slack rejected SLACK_APP_TOKEN ({code}{detail}): use the app-level token "
                    "(xapp-) with the connections:write scope, from Basic Information → "
                    "App-Level Tokens"
                ) from None
            logger.warning("apps.connections.open failed (%s); Bolt will retry", code)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning(
                "apps.connections.open failed (%s); Bolt will retry", error.__class__.__name__
            )
        else:
            handler.client.wss_uri = str(opened["url"])
        await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in Bolt

    def kick(self) -> None:
        """Run the engine and the notifier now instead of at their next tick."""
        self.ticker.kick("engine")
        self.ticker.kick("slack")

    async def tick(self) -> None:
        """One engine tick and one notifier pass (tests drive the runtime with this)."""
        await self.service.run_once()
        await self._expire_operations()
        await self.outbox.drain()

    async def _expire_operations(self) -> None:
        """Expire undecided deletes, finish ones a crash left running; refresh their messages."""
        for operation in await self.ops.expire_operations():
            await refresh_operation_message(self.deps, self.slack, operation)
        resumed = await self.ops.resume_stale()
        for operation in resumed:
            await refresh_operation_message(self.deps, self.slack, operation)
        if resumed:
            self.kick()  # the create requests' threads hear about the deletes

    async def settle(self) -> None:
        """Wait for listener work started after `ack()`."""
        await self.deps.background.idle()

    async def _housekeeping(self) -> None:
        await self.service.forget_slack_events(older_than_s=3600)

    async def _download(self, url: str) -> tuple[bytes, str]:
        """Fetch a file Slack attached, with the bot token; only from Slack's own hosts."""
        host = urlsplit(url).hostname or ""
        api_host = urlsplit(self.settings.slack_api_url).hostname or ""
        if not (host == api_host or host == "slack.com" or host.endswith(".slack.com")):
            raise DownloadError("That file is not hosted by Slack; attach it again.")
        token = self.settings.slack_bot_token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        limit = request_limits(self.settings).max_body_bytes
        timeout = aiohttp.ClientTimeout(total=2)  # inside the 3-second answer to Slack
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers, allow_redirects=True) as response,
            ):
                if response.status != 200:
                    raise DownloadError(
                        f"Slack answered HTTP {response.status} for the file; attach it again."
                    )
                body = await response.content.read(limit + 1)
                return body, response.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DownloadError(
                f"I could not download the file from Slack ({error.__class__.__name__}); "
                "attach it again."
            ) from error

    async def _db_ready(self) -> tuple[bool, str]:
        ok = await self.db.ping()
        return ok, "reachable" if ok else "cannot run SELECT 1"

    async def _slack_ready(self) -> tuple[bool, str]:
        if self._socket is not None:
            connected = await self._socket.client.is_connected()
            return connected, "socket mode connected" if connected else "socket mode disconnected"
        return self._slack_ok, "token accepted" if self._slack_ok else "auth.test failed"

    async def _panel_ready(self) -> tuple[bool, str]:
        last = self.panel.last_success_at
        if last is not None and (self.clock() - last).total_seconds() < 300:
            return True, "answered within 5 minutes"
        if self._monotonic() - self._panel_probe_at < 30:
            return False, "no answer recently"
        self._panel_probe_at = self._monotonic()
        try:
            await self.panel.connect()
        except VirtFusionError as error:
            return False, str(error)
        return True, "GET /connect ok"
