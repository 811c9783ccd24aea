"""P5, memory of `vfbot serve` (run by hand: `.venv/bin/python bench/p5_memory.py`).

Starts a real `vfbot serve` process (HTTP mode, SQLite) against the sandbox panel
and a fake Slack Web API, both on loopback in this process, and reads the process's resident
set size (VmRSS in /proc) twice:

- idle: ready (`/readyz` 200), nothing to do, after the first ticks have settled;
- tracking: after one request of N servers (1,000 by default) has been created and built on the
  panel, with every server still "building" there, so each tick tracks all N.

Targets (issue 10): idle ≤ 120 MB, +N servers ≤ +50 MB. `serve` runs with MALLOC_ARENA_MAX=2, as
the Docker image and the systemd unit in docs/operations.md set it (`--malloc-arena-max ''`
measures glibc's default). Prints a Markdown table row; the latest
numbers are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake Slack Web API lives with the tests

from bot.factories import utcnow  # noqa: E402
from bot.provisioning.intake import Intake, Origin  # noqa: E402
from bot.provisioning.model import InstanceState  # noqa: E402
from bot.provisioning.plan import EngineDefaults  # noqa: E402
from bot.provisioning.planner import Planner  # noqa: E402
from bot.provisioning.request import RequestLimits  # noqa: E402
from bot.provisioning.requests import RequestService  # noqa: E402
from bot.provisioning.transitions import Context, Moves  # noqa: E402
from bot.sandbox import BuildTiming, PanelState, running_sandbox  # noqa: E402
from bot.store.sql import Database  # noqa: E402
from bot.virtfusion import AiohttpVirtFusionClient  # noqa: E402
from tests.slack.fake_slack import running_fake_slack  # noqa: E402

BOT_TOKEN = "xoxb-bench-token-0123456789"
IDLE_TARGET_MB = 120
GROWTH_TARGET_MB = 50


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (10^6 bytes, as the targets are stated)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for process {pid}")


async def settle_rss(pid: int, *, samples: int = 5, every_s: float = 1.0) -> float:
    """The largest RSS over a few seconds (the ticks allocate and free as they go)."""
    seen = []
    for _ in range(samples):
        seen.append(rss_mb(pid))
        await asyncio.sleep(every_s)
    return max(seen)


def _request(servers: int) -> dict[str, object]:
    return {
        "project_name": "p5",
        "instances": [
            {
                "name": "p5",
                "number_of_instances": servers,
                "hypervisor_group": "Prague",
                "template": "debian-12",
                "resources": {"memory": 512, "disk": 10},
                "network": {"public_ip": False},
            }
        ],
    }


async def run(servers: int, arena_max: str) -> dict[str, float]:
    panel = PanelState(timing=BuildTiming(queued_s=1, build_s=24 * 3600))  # builds never end
    for hypervisor in panel.hypervisors.values():
        hypervisor.max_memory_mb *= 100
        hypervisor.max_servers *= 100
        hypervisor.max_cpu *= 100
        hypervisor.max_storage_gb *= 100
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'p5.db'}"
        db = Database(url)
        await db.upgrade()
        await db.start()
        async with (
            running_sandbox(panel) as sandbox,
            running_fake_slack(BOT_TOKEN) as slack,
            aiohttp.ClientSession() as http,
        ):
            env = {
                "PATH": os.environ.get("PATH", ""),
                "VIRTFUSION_HOST": sandbox.url,
                "VIRTFUSION_API_TOKEN": panel.token,
                "VIRTFUSION_USER_ID": "1",
                "VIRTFUSION_PACKAGE_ID": "1",
                "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
                "VIRTFUSION_RATE_LIMIT": "1000",
                "VIRTFUSION_CONCURRENCY": "32",
                "DATABASE_URL": url,
                "VF_POLL_INTERVAL": "2s",
                "VF_BUILD_TIMEOUT": "1d",
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": "bench-signing-secret",
                "SLACK_API_URL": slack.api_url,
                "VF_REQUIRE_APPROVAL": "never",
                "PORT": "0",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                **({"MALLOC_ARENA_MAX": arena_max} if arena_max else {}),
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "serve", cwd=tmp, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                port = await _port(process.pid)
                await _ready(http, port)
                await asyncio.sleep(5)  # the first ticks, the first scrape-free settling
                idle = await settle_rss(process.pid)

                request_id = await _submit(db, sandbox.api_url, panel.token, servers)
                started = time.monotonic()
                while await _building(db, request_id) < servers:
                    if process.returncode is not None:
                        raise RuntimeError(f"vfbot serve exited {process.returncode}")
                    if time.monotonic() - started > 1800:
                        raise RuntimeError("the servers were not all building after 30 minutes")
                    await asyncio.sleep(1)
                ramp_s = time.monotonic() - started
                await asyncio.sleep(10)  # several tracking ticks over all N
                tracking = await settle_rss(process.pid)
            finally:
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
        await db.stop()
    return {
        "servers": servers,
        "idle_mb": idle,
        "tracking_mb": tracking,
        "growth_mb": tracking - idle,
        "ramp_s": ramp_s,
    }


def _listening_port(pid: int) -> int | None:
    """The port of the process's listening TCP socket, from /proc; None before it listens."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return int(fields[1].rsplit(":", 1)[1], 16)
    return None


async def _port(pid: int) -> int:
    """The port `vfbot serve` bound (PORT=0)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        port = _listening_port(pid)
        if port is not None:
            return port
        await asyncio.sleep(0.2)
    raise RuntimeError("vfbot serve never listened")


async def _ready(http: aiohttp.ClientSession, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("vfbot serve never became ready")


async def _submit(db: Database, api_url: str, token: str, servers: int) -> int:
    client = AiohttpVirtFusionClient(api_url, SecretStr(token), rate_limit_per_s=1000)
    try:
        moves = Moves(db.uow, utcnow, "bench")
        requests = RequestService(Context(client, db.uow, utcnow, moves, owner_user_id=1))
        defaults = EngineDefaults(user_id=1, package_id=1, default_group_id=1)
        intake = Intake(Planner(client, defaults), requests, RequestLimits(max_instances=servers))
        record, _ = await intake.submit_request(
            _request(servers), Origin(key=f"p5:{uuid.uuid4()}", requester="bench", source="cli")
        )
    finally:
        await client.close()
    return record.id


async def _building(db: Database, request_id: int) -> int:
    async with db.uow() as uow:
        instances = await uow.instances.list_for_request(request_id)
    return sum(1 for i in instances if i.state is InstanceState.BUILDING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument(
        "--malloc-arena-max",
        default="2",
        help="MALLOC_ARENA_MAX for serve: 2 as the image and the systemd unit set it; '' for "
        "glibc's default (8 arenas per core)",
    )
    args = parser.parse_args()
    result = asyncio.run(run(args.servers, args.malloc_arena_max))
    idle_ok = "yes" if result["idle_mb"] <= IDLE_TARGET_MB else "NO"
    growth_ok = "yes" if result["growth_mb"] <= GROWTH_TARGET_MB else "NO"
    arenas = args.malloc_arena_max or "default"
    print(
        "| servers | MALLOC_ARENA_MAX | idle RSS (MB) | RSS tracking N (MB) | growth (MB) "
        "| ramp (s) | targets |"
    )
    print("|---:|---:|---:|---:|---:|---:|:---|")
    print(
        f"| {result['servers']:.0f} | {arenas} | {result['idle_mb']:.1f} | "
        f"{result['tracking_mb']:.1f} | {result['growth_mb']:+.1f} | {result['ramp_s']:.0f} | "
        f"idle ≤ {IDLE_TARGET_MB}: {idle_ok}; growth ≤ {GROWTH_TARGET_MB}: {growth_ok} |"
    )


if __name__ == "__main__":
    main()
