"""Domain fixtures: the sandbox panel and the domain services on one fake clock, over a store.

The store is SQLite by default; a test (or module) can ask for another one with
``@pytest.mark.parametrize("store", ["memory" | "postgres"], indirect=True)``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.factories import utcnow
from bot.provisioning.engine import Engine, EngineConfig
from bot.provisioning.intake import Intake, Origin
from bot.provisioning.lifetimes import LifetimePolicy
from bot.provisioning.model import TERMINAL_REQUEST_STATES, EventRecord, RequestRecord
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.planner import Planner
from bot.provisioning.ports import UnitOfWork
from bot.provisioning.request import RequestLimits
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
from bot.sandbox import (
    BuildTiming,
    FakeClock,
    PanelState,
    SandboxServer,
    Server,
    running_sandbox,
)
from bot.store.memory import MemoryStore
from bot.store.sql import Database
from bot.virtfusion import AiohttpVirtFusionClient, RetryPolicy
from tests.databases import open_database

EXAMPLES = Path(__file__).parents[2] / "examples"
DEFAULTS = EngineDefaults(user_id=1, package_id=1, default_group_id=1)

FAST_RETRY = RetryPolicy(
    max_attempts=4,
    deadline_s=5,
    backoff_base_s=0.001,
    backoff_max_s=0.005,
    retry_after_cap_s=0.005,
    locked_wait_s=0.001,
)

Store = Database | MemoryStore


@dataclass
class Sleeps:
    """An injected sleep: records each wait and moves the fake clock instead of sleeping."""

    clock: FakeClock
    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps(clock: FakeClock) -> Sleeps:
    return Sleeps(clock)


@pytest.fixture
def panel(clock: FakeClock) -> PanelState:
    return PanelState(clock=clock, timing=BuildTiming(queued_s=2, build_s=8))


@pytest.fixture
async def sandbox(panel: PanelState) -> AsyncIterator[SandboxServer]:
    async with running_sandbox(panel) as server:
        yield server


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An empty store: a started SQLite or PostgreSQL database, or the in-memory store."""
    if request.param == "memory":
        yield MemoryStore()
        return
    async with open_database(request.param, tmp_path) as database:
        yield database


@dataclass
class Harness:
    """The domain services (as `bot.app.build_core` wires them) on the sandbox and one store."""

    sandbox: SandboxServer
    store: Store
    clock: FakeClock
    sleeps: Sleeps
    client: AiohttpVirtFusionClient
    requests: RequestService
    engine: Engine
    intake: Intake
    servers: Servers

    @property
    def panel(self) -> PanelState:
        return self.sandbox.state

    def uow(self) -> UnitOfWork:
        return self.store.uow()

    async def submit_file(
        self, name: str, *, approval: bool = False, limits: RequestLimits | None = None
    ) -> RequestRecord:
        raw = (EXAMPLES / name).read_bytes()
        return await self.submit_json(raw, approval=approval, limits=limits)

    async def submit_json(
        self,
        raw: bytes | str | dict[str, object],
        *,
        approval: bool = False,
        limits: RequestLimits | None = None,
    ) -> RequestRecord:
        """Parse, plan and submit through `Intake`, as Slack and the CLI do."""
        intake = self.intake
        if limits is not None:
            intake = Intake(intake.planner, self.requests, limits)
        record, _ = await intake.submit_request(
            raw,
            Origin(key=f"test:{uuid.uuid4()}", requester="U_REQUESTER", source="cli"),
            needs_approval=lambda _: approval,
            approval_ttl_s=3600 if approval else None,
        )
        return record

    async def run_until_done(
        self, request_id: int, *, step_s: float = 1.0, max_ticks: int = 400
    ) -> RequestRecord:
        """Tick the engine, advancing the shared clock, until the request ends."""
        for _ in range(max_ticks):
            await self.engine.run_once()
            record, _ = await self.requests.get(request_id)
            if record.state in TERMINAL_REQUEST_STATES:
                return record
            self.clock.advance(step_s)
        raise AssertionError(f"VF-{request_id} did not finish in {max_ticks} ticks")

    async def events(self, request_id: int) -> list[EventRecord]:
        """The request's stream, in order."""
        async with self.uow() as uow:
            return await uow.events.list_for_request(request_id)

    async def undelivered(self, subscriber: str) -> list[EventRecord]:
        """Events not yet delivered to `subscriber` (at most one per stream: its oldest)."""
        async with self.uow() as uow:  # left without a commit: the claim is rolled back
            return await undelivered(uow, subscriber, self.clock())


async def undelivered(uow: UnitOfWork, subscriber: str, now: datetime) -> list[EventRecord]:
    """The oldest event of each stream not yet delivered to `subscriber`, whoever leases it.

    Claims as of a day after `now` (every lease has lapsed by then); the caller rolls back.
    """
    return await uow.events.claim_next(
        subscriber=subscriber,
        worker="test-probe",
        now=now + timedelta(days=1),
        lease_s=1,
        limit=10_000,
    )


MakeHarness = Callable[..., Harness]


@pytest.fixture
async def make_harness(
    sandbox: SandboxServer, store: Store, clock: FakeClock, sleeps: Sleeps
) -> AsyncIterator[MakeHarness]:
    """Build engines (several may share the store, as replicas would)."""
    clients: list[AiohttpVirtFusionClient] = []

    def make(
        *, timeout_s: float = 5.0, lifetimes: LifetimePolicy | None = None, **config: object
    ) -> Harness:
        client = AiohttpVirtFusionClient(
            sandbox.api_url,
            SecretStr("sandbox-token"),
            timeout_s=timeout_s,
            retry=FAST_RETRY,
            rate_limit_per_s=1000,
            concurrency=8,
        )
        clients.append(client)
        settings: dict[str, object] = {
            "owner_user_id": 1,
            "poll_interval_s": 1.0,
            "create_grace_s": 30.0,
            "build_timeout_s": 600.0,
            "retry_backoff_s": 1.0,
            **config,
        }
        engine_config = EngineConfig(**settings)  # type: ignore[arg-type]
        moves = Moves(store.uow, clock, engine_config.worker_id)
        ctx = Context(client, store.uow, clock, moves, owner_user_id=1, sleep=sleeps)
        requests = RequestService(ctx)
        locks = LockWait(wait_s=60, poll_s=5)
        deletes = DeleteService(ctx, locks=locks)
        expiry = ExpiryService(ctx, policy=lifetimes or LifetimePolicy(), deletes=deletes)
        engine = Engine(ctx, engine_config, requests=requests, expiry=expiry)
        servers = Servers(
            resolver=ServerResolver(ctx),
            inventory=Inventory(ctx, defaults=DEFAULTS),
            deletes=deletes,
            actions=ServerActions(ctx, locks=locks, queue_poll_s=2, queue_timeout_s=120),
            changes=ServerChanges(ctx, locks=locks, queue_poll_s=2, queue_timeout_s=120),
            rebuilds=RebuildService(
                ctx,
                locks=locks,
                build_timeout_s=engine_config.build_timeout_s,
                grace_s=engine_config.create_grace_s,
            ),
            resizes=ResizeService(ctx, locks=locks, limits=RequestLimits()),
            expiry=expiry,
        )
        intake = Intake(Planner(client, DEFAULTS), requests, RequestLimits(), lifetimes)
        return Harness(sandbox, store, clock, sleeps, client, requests, engine, intake, servers)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def harness(make_harness: MakeHarness) -> Harness:
    return make_harness()


def vfbot_env(sandbox_url: str, database: Path, **extra: str) -> dict[str, str]:
    """The environment of a real `vfbot` process against the sandbox and a SQLite file (only
    the process environment's PATH, HOME, LANG and PYTHONPATH come along)."""
    kept = ("PATH", "HOME", "LANG", "PYTHONPATH")
    return {
        **{k: v for k, v in os.environ.items() if k in kept},
        "VIRTFUSION_HOST": sandbox_url,
        "VIRTFUSION_API_TOKEN": "sandbox-token",
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
        "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def two_groups(
    prague: int, amsterdam: int = 0, *, name: str = "web", public_ip: bool = True
) -> dict[str, object]:
    """A request of `prague` Debian servers in Prague and `amsterdam` Ubuntu ones in Amsterdam,
    all of the package's size (without public IPv4: the demo pools hold 160 addresses)."""
    instances: list[dict[str, object]] = []
    for suffix, group, template, count in (
        ("prg", "Prague", "debian-12", prague),
        ("ams", "Amsterdam", "ubuntu-22.04", amsterdam),
    ):
        if count:
            instances.append(
                {
                    "name": f"{name}-{suffix}",
                    "number_of_instances": count,
                    "hypervisor_group": group,
                    "template": template,
                    "network": {"public_ip": public_ip},
                }
            )
    if prague:
        instances[0]["ssh_key_name"] = "default"
    return {"project_name": "load", "instances": instances}


async def submit_over_http(db: Database, api_url: str, request: dict[str, object]) -> RequestRecord:
    """Plan and submit `request` through `Intake` with a panel client of its own, as the CLI
    does, for tests that then hand the work to real `vfbot` processes."""
    client = AiohttpVirtFusionClient(api_url, SecretStr("sandbox-token"))
    try:
        moves = Moves(db.uow, utcnow, "test")
        requests = RequestService(Context(client, db.uow, utcnow, moves, owner_user_id=1))
        intake = Intake(Planner(client, DEFAULTS), requests, RequestLimits())
        record, _ = await intake.submit_request(
            request, Origin(key=f"test:{uuid.uuid4()}", requester="U1", source="cli")
        )
    finally:
        await client.close()
    return record


def creates(panel: PanelState) -> int:
    """Real (not dry-run) create calls the panel received."""
    return sum(
        1
        for call in panel.calls("POST", r"^/servers$")
        if call.query.get("dryRun") not in ("true", "1")
    )


def owner_servers(panel: PanelState) -> list[Server]:
    """The panel's servers of vfbot's owner (user 1)."""
    return [s for s in panel.servers.values() if s.owner_id == 1]


__all__ = [
    "DEFAULTS",
    "EXAMPLES",
    "Harness",
    "MakeHarness",
    "Sleeps",
    "creates",
    "owner_servers",
    "two_groups",
    "undelivered",
    "vfbot_env",
]
