"""Benchmarks of the provisioning engine against the sandbox panel (run by hand: `make bench`).

Measures, for requests of N servers on a real loopback HTTP panel and a SQLite database:
- wall time to plan, and to create + build + track every server (the sandbox's build time is
  driven by a fake clock, so this is vfbot's own overhead, not waiting for builds);
- panel calls per server, and calls per tracking tick with everything in flight;
- committed transactions per server (every one waits for the disk; deterministic);
- peak Python memory (tracemalloc) during the run.
Results go to stdout as a Markdown table; docs/benchmarks.md keeps the latest numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from _common import request_body
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SyncEngine

from bot.provisioning.engine import Engine, EngineConfig
from bot.provisioning.intake import Intake, Origin
from bot.provisioning.model import TERMINAL_REQUEST_STATES, InstanceState, RequestState
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.planner import Planner
from bot.provisioning.request import RequestLimits
from bot.provisioning.requests import RequestService
from bot.provisioning.transitions import Context, Moves
from bot.sandbox import BuildTiming, FakeClock, PanelState, running_sandbox
from bot.store.sql import Database
from bot.virtfusion import AiohttpVirtFusionClient


async def run(servers: int, concurrency: int, database_url: str | None) -> dict[str, float]:
    clock = FakeClock()
    panel = PanelState(clock=clock, timing=BuildTiming(queued_s=5, build_s=30))
    for hypervisor in panel.hypervisors.values():  # room for big runs
        hypervisor.max_memory_mb *= 10
        hypervisor.max_servers *= 10
        hypervisor.max_cpu *= 10
        hypervisor.max_storage_gb *= 10
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh schema on PostgreSQL: each run's sandbox hands out server ids from 101 again.
        schema = f"bench_{uuid.uuid4().hex[:12]}" if database_url else None
        db = Database(database_url or f"sqlite:///{Path(tmp) / 'bench.db'}", schema=schema)
        await db.upgrade()
        await db.start()
        async with running_sandbox(panel) as sandbox:
            client = AiohttpVirtFusionClient(
                sandbox.api_url, SecretStr(panel.token), rate_limit_per_s=10_000, concurrency=32
            )
            try:
                tracemalloc.start()
                config = EngineConfig(owner_user_id=1, concurrency=concurrency, batch=1000)
                moves = Moves(db.uow, clock, config.worker_id)
                ctx = Context(client, db.uow, clock, moves, owner_user_id=1)
                service = RequestService(ctx)
                engine = Engine(ctx, config, requests=service)
                defaults = EngineDefaults(user_id=1, package_id=1, default_group_id=1)
                intake = Intake(
                    Planner(client, defaults), service, RequestLimits(max_instances=servers)
                )
                request = intake.parse(request_body(servers))
                started = time.perf_counter()
                plan = await intake.plan(request)
                plan_s = time.perf_counter() - started
                record, _ = await intake.submit(
                    request,
                    plan,
                    Origin(key=f"bench:{uuid.uuid4()}", requester="bench", source="cli"),
                    approval_required=False,
                )
                panel.reset_log()
                commits = _count_commits()
                started = time.perf_counter()
                ticks = 0
                track_calls: list[int] = []
                while True:
                    _, instances = await service.get(record.id)
                    tracking_only = all(i.state is InstanceState.BUILDING for i in instances)
                    before = len(panel.log)
                    await engine.run_once()
                    ticks += 1
                    if tracking_only:
                        track_calls.append(len(panel.log) - before)
                    current, _ = await service.get(record.id)
                    if current.state in TERMINAL_REQUEST_STATES:
                        if current.state is not RequestState.COMPLETED:
                            raise RuntimeError(f"the request ended {current.state.value}")
                        break
                    if ticks > 10_000:
                        raise RuntimeError("did not finish")
                    clock.advance(10)
                run_s = time.perf_counter() - started
                committed = commits.stop()
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                calls = len(panel.log)
            finally:
                await client.close()
        await db.stop()
        if schema is not None and database_url:
            await _drop_schema(database_url, schema)
    return {
        "servers": servers,
        "plan_s": plan_s,
        "run_s": run_s,
        "per_server_ms": 1000 * run_s / servers,
        "calls_per_server": calls / servers,
        "calls_per_tracking_tick": max(track_calls) if track_calls else float("nan"),
        "commits_per_server": committed / servers,
        "peak_mib": peak / 2**20,
    }


class _count_commits:  # used like a function
    """Counts COMMITs on every SQLAlchemy engine from now until `stop()`."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(SyncEngine, "commit", self._seen)

    def _seen(self, _: Connection) -> None:
        self.count += 1

    def stop(self) -> int:
        event.remove(SyncEngine, "commit", self._seen)
        return self.count


async def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.store.sql import normalize_database_url

    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", help="e.g. postgresql+asyncpg://postgres@127.0.0.1/test")
    args = parser.parse_args()
    print(
        "| servers | plan (s) | create+build+track (s) | per server (ms) | panel calls / server "
        "| calls / tracking tick | commits / server | peak memory (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.servers:
        r = asyncio.run(run(n, args.concurrency, args.database_url))
        print(
            f"| {n} | {r['plan_s']:.2f} | {r['run_s']:.2f} | {r['per_server_ms']:.1f} "
            f"| {r['calls_per_server']:.2f} | {r['calls_per_tracking_tick']:.0f} "
            f"| {r['commits_per_server']:.1f} | {r['peak_mib']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
