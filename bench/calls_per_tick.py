"""P2: what one engine tick costs while N servers are building (run by hand).

The engine runs in this process on a fake clock against the sandbox panel on loopback and a
SQLite file. It brings a request of N servers to `building` (the panel's builds take hours),
then runs tracking ticks and prints, per tick: panel calls, committed database transactions and
wall time. The design target is one panel call and no commit for a tick in which nothing
changed, whatever N is.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from _common import open_database, roomy, submit
from pydantic import SecretStr

from bot.provisioning.engine import Engine, EngineConfig
from bot.provisioning.model import InstanceState
from bot.provisioning.ports import UnitOfWork
from bot.provisioning.requests import RequestService
from bot.provisioning.transitions import Context, Moves
from bot.sandbox import BuildTiming, FakeClock, PanelState, running_sandbox
from bot.virtfusion import AiohttpVirtFusionClient


class Counting:
    """A unit-of-work factory that counts commits."""

    def __init__(self, factory: Callable[[], UnitOfWork]) -> None:
        self.factory = factory
        self.commits = 0

    def __call__(self) -> UnitOfWork:
        return _CountingUow(self, self.factory())


class _CountingUow:
    def __init__(self, counter: Counting, inner: UnitOfWork) -> None:
        self._counter, self._inner = counter, inner
        self.requests, self.instances = inner.requests, inner.instances
        self.events, self.audit, self.operations = inner.events, inner.audit, inner.operations

    async def commit(self) -> None:
        self._counter.commits += 1
        await self._inner.commit()

    async def rollback(self) -> None:
        await self._inner.rollback()

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._inner.__aexit__(kind, exc, tb)


async def run(servers: int, ticks: int) -> list[tuple[int, int, float]]:
    clock = FakeClock()
    panel = roomy(PanelState(clock=clock, timing=BuildTiming(queued_s=0, build_s=10**6)))
    with tempfile.TemporaryDirectory() as tmp:
        db = await open_database(Path(tmp) / "bench.db")
        try:
            async with running_sandbox(panel) as sandbox:
                record = await submit(sandbox, db, servers)
                client = AiohttpVirtFusionClient(
                    sandbox.api_url, SecretStr(panel.token), rate_limit_per_s=10_000, concurrency=32
                )
                counting = Counting(db.uow)
                try:
                    config = EngineConfig(owner_user_id=1, concurrency=8)
                    moves = Moves(counting, clock, config.worker_id)
                    ctx = Context(client, counting, clock, moves, owner_user_id=1)
                    engine = Engine(ctx, config, requests=RequestService(ctx))
                    for _ in range(100_000):
                        async with db.uow() as uow:
                            rows = await uow.instances.list_for_request(record.id)
                        if all(i.state is InstanceState.BUILDING for i in rows):
                            break
                        await engine.run_once()
                        clock.advance(1)
                    else:
                        raise RuntimeError("the servers never all reached building")
                    results = []
                    for _ in range(ticks):
                        clock.advance(config.poll_interval_s)
                        calls, commits = len(panel.log), counting.commits
                        started = time.perf_counter()
                        await engine.run_once()
                        took = time.perf_counter() - started
                        results.append((len(panel.log) - calls, counting.commits - commits, took))
                finally:
                    await client.close()
        finally:
            await db.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, nargs="+", default=[50, 250, 1000])
    parser.add_argument("--ticks", type=int, default=3)
    args = parser.parse_args()
    print("| servers building | panel calls / tick | commits / tick | tick (ms) |")
    print("|---:|---:|---:|---:|")
    for n in args.servers:
        results = asyncio.run(run(n, args.ticks))
        calls = max(r[0] for r in results)
        commits = max(r[1] for r in results)
        took_ms = 1000 * sum(r[2] for r in results) / len(results)
        print(f"| {n} | {calls} | {commits} | {took_ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
