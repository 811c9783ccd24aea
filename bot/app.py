"""Composition root: the only place that names concrete adapters and wires them together."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config import Settings
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.planner import Planner
from bot.provisioning.request import RequestLimits
from bot.provisioning.service import EngineConfig, ProvisioningService
from bot.store.sql import Database
from bot.virtfusion import AiohttpVirtFusionClient, VirtFusionClient

__all__ = [
    "Engine",
    "engine_config",
    "engine_defaults",
    "make_client",
    "open_engine",
    "request_limits",
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
