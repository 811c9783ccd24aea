"""Engine fixtures: sandbox panel and engine on one fake clock, over a real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.provisioning.plan import EngineDefaults
from bot.provisioning.planner import Planner
from bot.provisioning.request import RequestLimits, parse_request
from bot.provisioning.service import EngineConfig, ProvisioningService
from bot.sandbox import BuildTiming, FakeClock, PanelState, SandboxServer, running_sandbox
from bot.store import TERMINAL_REQUEST_STATES, RequestRecord, RequestState
from bot.store.sql import Database
from bot.virtfusion import AiohttpVirtFusionClient, RetryPolicy
from tests.databases import open_database

EXAMPLES = Path(__file__).parents[2] / "examples"

FAST_RETRY = RetryPolicy(
    max_attempts=4,
    deadline_s=5,
    backoff_base_s=0.001,
    backoff_max_s=0.005,
    retry_after_cap_s=0.005,
    locked_wait_s=0.001,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def panel(clock: FakeClock) -> PanelState:
    return PanelState(clock=clock, timing=BuildTiming(queued_s=2, build_s=8))


@pytest.fixture
async def sandbox(panel: PanelState) -> AsyncIterator[SandboxServer]:
    async with running_sandbox(panel) as server:
        yield server


@pytest.fixture(params=["sqlite"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A started, empty database; tests that need both engines parametrize `db` indirectly."""
    async with open_database(request.param, tmp_path) as database:
        yield database


@dataclass
class Harness:
    """One engine (client + planner + service) wired to the sandbox and the database."""

    sandbox: SandboxServer
    db: Database
    clock: FakeClock
    client: AiohttpVirtFusionClient
    planner: Planner
    service: ProvisioningService

    @property
    def panel(self) -> PanelState:
        return self.sandbox.state

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
        request = parse_request(raw, limits or RequestLimits())
        plan = await self.planner.plan(request)
        record, _ = await self.service.submit(
            key=f"test:{uuid.uuid4()}",
            requester="U_REQUESTER",
            source="cli",
            request=request,
            plan=plan,
            approval_required=approval,
            approval_ttl_s=3600 if approval else None,
        )
        return record

    async def run_until_done(
        self, request_id: int, *, step_s: float = 1.0, max_ticks: int = 400
    ) -> RequestRecord:
        """Tick the engine, advancing the shared clock, until the request ends."""
        for _ in range(max_ticks):
            await self.service.run_once()
            record, _ = await self.service.get(request_id)
            if record.state in TERMINAL_REQUEST_STATES:
                return record
            self.clock.advance(step_s)
        raise AssertionError(f"VF-{request_id} did not finish in {max_ticks} ticks")


MakeHarness = Callable[..., Harness]


@pytest.fixture
async def make_harness(
    sandbox: SandboxServer, db: Database, clock: FakeClock
) -> AsyncIterator[MakeHarness]:
    """Build engines (several may share the database, as replicas would)."""
    clients: list[AiohttpVirtFusionClient] = []

    def make(**config: object) -> Harness:
        client = AiohttpVirtFusionClient(
            sandbox.api_url,
            SecretStr("sandbox-token"),
            timeout_s=float(config.pop("timeout_s", 5.0)),  # type: ignore[arg-type]
            retry=FAST_RETRY,
            rate_limit_per_s=1000,
            concurrency=8,
        )
        clients.append(client)
        defaults = EngineDefaults(user_id=1, package_id=1, default_group_id=1)
        settings = {
            "owner_user_id": 1,
            "poll_interval_s": 1.0,
            "create_grace_s": 30.0,
            "build_timeout_s": 600.0,
            "retry_backoff_s": 1.0,
            **config,
        }
        service = ProvisioningService(client, db.uow, EngineConfig(**settings), clock)  # type: ignore[arg-type]
        return Harness(sandbox, db, clock, client, Planner(client, defaults), service)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def harness(make_harness: MakeHarness) -> Harness:
    return make_harness()


def creates(panel: PanelState) -> int:
    """Real (not dry-run) create calls the panel received."""
    return sum(
        1
        for call in panel.calls("POST", r"^/servers$")
        if call.query.get("dryRun") not in ("true", "1")
    )


def owner_servers(panel: PanelState) -> list[object]:
    return [s for s in panel.servers.values() if getattr(s, "owner_id", None) == 1]


__all__ = [
    "EXAMPLES",
    "Harness",
    "MakeHarness",
    "RequestState",
    "creates",
    "owner_servers",
]
