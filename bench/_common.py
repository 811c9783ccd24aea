"""What the engine benchmarks share: a roomy sandbox panel, a submitted request, a real
`vfbot worker` process, and a wait for a request to end. Run from the repository root."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from bot.factories import utcnow
from bot.provisioning.intake import Intake, Origin
from bot.provisioning.model import TERMINAL_REQUEST_STATES, RequestRecord
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.planner import Planner
from bot.provisioning.request import RequestLimits
from bot.provisioning.requests import RequestService
from bot.provisioning.transitions import Context, Moves
from bot.sandbox import PanelState, SandboxServer
from bot.store.sql import Database
from bot.virtfusion import AiohttpVirtFusionClient

DEFAULTS = EngineDefaults(user_id=1, package_id=1, default_group_id=1)


async def open_database(path: Path) -> Database:
    """A started SQLite database at `path`, created at the current schema (versions with
    migrations create it with `upgrade`, older ones with `start`)."""
    db = Database(f"sqlite:///{path}")
    upgrade = getattr(db, "upgrade", None)
    if upgrade is not None:
        await upgrade()
    await db.start()
    return db


def roomy(panel: PanelState) -> PanelState:
    """Give every hypervisor room for a thousand small servers."""
    for hypervisor in panel.hypervisors.values():
        hypervisor.max_memory_mb *= 20
        hypervisor.max_servers *= 20
        hypervisor.max_cpu *= 20
        hypervisor.max_storage_gb *= 20
    return panel


def request_body(servers: int, *, name: str = "bench") -> dict[str, object]:
    """N small servers split over the Prague and Amsterdam groups, without public IPv4."""
    half = servers // 2
    instances = []
    for suffix, group, count in (("prg", "Prague", servers - half), ("ams", "Amsterdam", half)):
        if count:
            instances.append(
                {
                    "name": f"{name}-{suffix}",
                    "number_of_instances": count,
                    "hypervisor_group": group,
                    "template": "debian-12",
                    "resources": {"memory": 512, "disk": 10},
                    "network": {"public_ip": False},
                }
            )
    return {"project_name": name, "instances": instances}


async def submit(
    sandbox: SandboxServer, db: Database, servers: int, *, name: str = "bench"
) -> RequestRecord:
    """Plan and submit a request of `servers` servers (no approval needed), as the CLI does."""
    client = AiohttpVirtFusionClient(
        sandbox.api_url, SecretStr(sandbox.state.token), rate_limit_per_s=1000, concurrency=16
    )
    try:
        moves = Moves(db.uow, utcnow, "bench")
        requests = RequestService(Context(client, db.uow, utcnow, moves, owner_user_id=1))
        intake = Intake(Planner(client, DEFAULTS), requests, RequestLimits(max_instances=servers))
        record, _ = await intake.submit_request(
            request_body(servers, name=name),
            Origin(key=f"bench:{uuid.uuid4()}", requester="bench", source="cli"),
        )
    finally:
        await client.close()
    return record


def worker_env(sandbox: SandboxServer, database: Path, **settings: str) -> dict[str, str]:
    """The environment of a `vfbot worker` against the sandbox and a SQLite file."""
    env = {
        **os.environ,
        "VIRTFUSION_HOST": sandbox.url,
        "VIRTFUSION_API_TOKEN": sandbox.state.token,
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
        "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(settings)
    return env


def serve_env(env: dict[str, str], slack_api_url: str) -> dict[str, str]:
    """`env` plus what `vfbot serve` needs to run against a fake Slack on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {
        **env,
        "SLACK_BOT_TOKEN": "xoxb-bench-0123456789",
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
        "SLACK_API_URL": slack_api_url,
        "PORT": str(port),
        "VF_REQUIRE_APPROVAL": "never",
    }


async def start_worker(
    env: dict[str, str], cwd: Path, *, command: str = "worker"
) -> asyncio.subprocess.Process:
    """Start `vfbot worker` (or `vfbot serve`) with `env`."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


async def until(
    condition: Callable[[], object],
    *,
    timeout_s: float,
    what: str,
    process: asyncio.subprocess.Process | None = None,
) -> float:
    """Wait (checking every 20 ms) until `condition()` is truthy; the monotonic time then.
    A `process` that exits meanwhile ends the wait with what it printed."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.returncode is not None:
            _, err = await process.communicate()
            raise RuntimeError(f"vfbot exited {process.returncode}:\n{err.decode()[-3000:]}")
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def ended(db: Database, request_id: int) -> bool:
    async with db.uow() as uow:
        record = await uow.requests.get(request_id)
    return record is not None and record.state in TERMINAL_REQUEST_STATES
