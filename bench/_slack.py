"""What the Slack benchmarks share: a real `vfbot serve` process on loopback against the sandbox
panel and the test suite's fake Slack (both in the benchmark's own process), signed requests,
and percentiles. Run from the repository root.

`--source DIR` runs `vfbot serve` from another checkout (for the "before" figures of
docs/benchmarks.md); the panel, Slack and the load stay this checkout's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.sandbox import PanelState, SandboxServer, running_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.slack import signing  # the suite's signed payloads
from tests.slack.fake_slack import FakeSlack, running_fake_slack

__all__ = [
    "BOT_TOKEN",
    "Serve",
    "World",
    "free_port",
    "percentile",
    "post_timed",
    "request_body",
    "roomy",
    "run_load",
    "serving",
    "signing",
    "world",
]

BOT_TOKEN = "xoxb-bench-0123456789"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: Sequence[float], p: float) -> float:
    """The value below which `p` percent of `values` fall (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def roomy(panel: PanelState) -> PanelState:
    """Room on every hypervisor for a thousand small servers."""
    for hypervisor in panel.hypervisors.values():
        hypervisor.max_memory_mb *= 20
        hypervisor.max_servers *= 40
        hypervisor.max_cpu *= 20
        hypervisor.max_storage_gb *= 20
    return panel


def request_body(servers: int, name: str) -> dict[str, object]:
    """`servers` small servers without public IPv4 (the demo pools hold 160), one group."""
    return {
        "project_name": name,
        "instances": [
            {
                "name": name,
                "number_of_instances": servers,
                "hypervisor_group": "Prague",
                "template": "debian-12",
                "resources": {"memory": 512, "disk": 10},
                "network": {"public_ip": False},
            }
        ],
    }


@dataclass
class Serve:
    """A running `vfbot serve`."""

    process: asyncio.subprocess.Process
    port: int
    workdir: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"


@contextlib.asynccontextmanager
async def serving(
    sandbox: SandboxServer,
    slack: FakeSlack,
    workdir: Path,
    *,
    source: Path | None = None,
    **settings: str,
) -> AsyncIterator[Serve]:
    """`vfbot serve` (HTTP mode, SQLite) until the block ends; `settings` are extra variables."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(source or REPO),
        "VIRTFUSION_HOST": sandbox.url,
        "VIRTFUSION_API_TOKEN": sandbox.state.token,
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
        "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'vfbot.db'}",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": signing.TEST_SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    log = (workdir / "serve.log").open("wb")  # before any load starts
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=workdir, env=env, stdout=log, stderr=log
    )
    log.close()  # the process has its own copy
    serve = Serve(process, port, workdir)
    try:
        await _until_healthy(serve)
        yield serve
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _until_healthy(serve: Serve, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if serve.process.returncode is not None:
                log = (serve.workdir / "serve.log").read_text()[-3000:]
                raise RuntimeError(f"vfbot serve exited: {log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{serve.port}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError("vfbot serve did not start")


async def run_load(
    http: aiohttp.ClientSession,
    url: str,
    make: Callable[[int], tuple[bytes, dict[str, str]]],
    *,
    count: int,
    concurrency: int,
) -> list[float]:
    """POST `count` requests (`make(i)` gives body and headers), at most `concurrency` at once;
    returns each one's seconds until its HTTP answer (the ack)."""
    requests = [make(i) for i in range(count)]  # signed before the clock starts
    gate = asyncio.Semaphore(concurrency)

    async def one(body: bytes, headers: dict[str, str]) -> float:
        async with gate:
            return await post_timed(http, url, body, headers)

    return list(await asyncio.gather(*(one(*r) for r in requests)))


async def post_timed(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> float:
    """POST one signed request; returns the seconds until its answer (raises unless 200)."""
    started = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    return time.perf_counter() - started


@dataclass
class World:
    """The panel, Slack and a running vfbot, with an HTTP client to play the users."""

    panel: PanelState
    slack: FakeSlack
    serve: Serve
    http: aiohttp.ClientSession
    sandbox: SandboxServer


@contextlib.asynccontextmanager
async def world(
    panel: PanelState, workdir: Path, *, source: Path | None = None, **settings: str
) -> AsyncIterator[World]:
    """The sandbox with `panel`, the fake Slack (stamping calls with epoch seconds) and
    `vfbot serve` with `settings`, until the block ends."""
    async with (
        running_sandbox(panel) as sandbox,
        running_fake_slack(BOT_TOKEN, clock=time.time) as slack,
        serving(sandbox, slack, workdir, source=source, **settings) as serve,
        aiohttp.ClientSession() as http,
    ):
        yield World(panel, slack, serve, http, sandbox)
