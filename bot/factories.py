"""What the settings describe: the panel client, the store, and the domain's limits, defaults,
policies and jobs. Pure construction, no I/O; `bot.app` wires these parts together.

No Slack, metrics or HTTP server here, so the command line reaches these without them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.config import DatabaseSettings, Settings
from bot.provisioning.engine import EngineConfig
from bot.provisioning.fleet.alerts import CapacityWatch, TrafficWatch
from bot.provisioning.fleet.jobs import FleetJobs
from bot.provisioning.fleet.report import DailyReports, ExpiringSource
from bot.provisioning.lifetimes import ExpiryAction, LifetimePolicy
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.ports import DatabaseUnavailableError
from bot.provisioning.request import RequestLimits
from bot.provisioning.transitions import Context
from bot.store.sql import Database, database_password
from bot.virtfusion import AiohttpVirtFusionClient, RetryPolicy, VirtFusionClient

__all__ = [
    "Clock",
    "Sleep",
    "engine_config",
    "engine_defaults",
    "fleet_jobs",
    "lifetime_policy",
    "make_client",
    "make_database",
    "prepare_database",
    "request_limits",
    "secrets_of",
    "utcnow",
]

logger = logging.getLogger("bot.app")

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_client(settings: Settings) -> VirtFusionClient:
    """The panel client the settings describe."""
    return AiohttpVirtFusionClient(
        settings.panel_api_url,
        settings.virtfusion_api_token,
        timeout_s=settings.virtfusion_timeout,
        retry=RetryPolicy(deadline_s=settings.panel_retry_s),
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
        failover_group_ids=tuple(settings.virtfusion_failover_group_ids),
        default_network_profile_id=settings.virtfusion_network_profile_id,
    )


def lifetime_policy(settings: Settings) -> LifetimePolicy:
    return LifetimePolicy(
        default_s=settings.vf_default_lifetime,
        max_s=settings.vf_max_lifetime,
        warning_s=settings.vf_expiry_warning,
        action=ExpiryAction(settings.vf_expiry_action),
    )


def engine_config(settings: Settings) -> EngineConfig:
    worker = settings.vf_worker_id or f"{socket.gethostname()}-{id(settings):x}"
    return EngineConfig(
        owner_user_id=settings.virtfusion_user_id,
        worker_id=worker,
        concurrency=settings.virtfusion_concurrency,
        poll_interval_s=settings.vf_poll_interval,
        # A step the panel refused for now is tried again after three polls (30 s by default).
        retry_backoff_s=min(30.0, 3 * settings.vf_poll_interval),
        build_timeout_s=settings.vf_build_timeout,
        create_grace_s=settings.vf_create_grace,
        cleanup_failed=settings.vf_cleanup_failed,
        lease_s=settings.lease_s,
    )


def fleet_jobs(
    settings: Settings, ctx: Context, *, expiring: ExpiringSource | None = None
) -> FleetJobs:
    """The alert channel's jobs the settings switch on (none without VF_ALERT_CHANNEL);
    `expiring` feeds the daily report's "expiring in the next 24 hours"."""
    if settings.vf_alert_channel is None:
        return FleetJobs(ctx.uow)
    thresholds, percent, at = (
        settings.vf_capacity_alert,
        settings.vf_traffic_alert,
        settings.vf_daily_report,
    )
    return FleetJobs(
        ctx.uow,
        capacity=CapacityWatch(ctx, thresholds) if thresholds else None,
        traffic=TrafficWatch(ctx, percent) if percent is not None else None,
        reports=DailyReports(ctx, at=at, zone=settings.zone, expiring=expiring) if at else None,
    )


def secrets_of(settings: Settings | DatabaseSettings) -> list[str]:
    """Every secret value in the settings, for the log redactor."""
    password = database_password(settings.database_url)
    found = [password] if password else []
    if isinstance(settings, Settings):
        for secret in (
            settings.virtfusion_api_token,
            settings.slack_bot_token,
            settings.slack_app_token,
            settings.slack_signing_secret,
            settings.virtfusion_webhook_token,
        ):
            if secret is not None:
                found.append(secret.get_secret_value())
    return found


def make_database(database_url: str) -> Database:
    """The store DATABASE_URL names, not opened yet."""
    return Database(database_url)


# Waits between attempts to reach the database at start-up: about two minutes in all, then
# the error stands (a supervisor restarts the process).
_START_WAITS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)


async def prepare_database(db: Database, *, upgrade: bool, sleep: Sleep = asyncio.sleep) -> None:
    """Open `db`. With `upgrade` (`serve` and `worker`), first create it if it is missing or
    apply pending migrations, under the upgrade lock, and log what was done; a database that
    cannot be reached yet is waited for. Raises `DatabaseUnavailableError`."""
    if upgrade:
        for wait_s in (*_START_WAITS_S, None):
            try:
                result, created = await db.upgrade()
                break
            except DatabaseUnavailableError as error:
                if not error.transient or wait_s is None:
                    raise
                logger.warning("%s Trying again in %.0f s.", error, wait_s)
                await sleep(wait_s)
        if created:
            logger.warning(
                "Created a new, empty database: %s (DATABASE_URL), schema revision %s. If vfbot "
                "ran before with data, stop it and restore that database instead.",
                db.target.name,
                result.after,
            )
        elif result.applied:
            logger.warning(
                "Upgraded %s from schema revision %s to %s: %s.",
                db.target.name,
                result.before,
                result.after,
                "; ".join(str(r) for r in result.applied),
            )
    await db.start()
