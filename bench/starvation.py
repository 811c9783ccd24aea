"""Starvation: is a small request tracked while hundreds of servers are in flight? (by hand)

A real `vfbot worker` first brings `--in-flight` servers (default 250) to `building` on the
sandbox panel, whose builds then take an hour. A second request of 5 servers is submitted; the
panel builds those in half a second. Printed: how long the small request took from submission
to its end in vfbot (a worker that never looks at it times out at `--timeout`).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import ended, open_database, roomy, start_worker, stop, submit, until, worker_env

from bot.provisioning.model import InstanceState
from bot.sandbox import BuildTiming, PanelState, running_sandbox


async def run(in_flight: int, timeout_s: float, rate: float, poll_s: float) -> float | None:
    panel = roomy(PanelState(timing=BuildTiming(queued_s=0, build_s=3600)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = await open_database(path)
        try:
            async with running_sandbox(panel) as sandbox:
                big = await submit(sandbox, db, in_flight, name="big")

                async def all_building() -> bool:
                    async with db.uow() as uow:
                        rows = await uow.instances.list_for_request(big.id)
                    return all(i.state is InstanceState.BUILDING for i in rows)

                env = worker_env(
                    sandbox, path, VIRTFUSION_RATE_LIMIT=str(rate), VF_POLL_INTERVAL=str(poll_s)
                )
                worker = await start_worker(env, Path(tmp))
                try:
                    await until(
                        all_building, timeout_s=600, what="the big request building", process=worker
                    )
                    panel.timing.build_s = 0.5
                    small = await submit(sandbox, db, 5, name="small")
                    started = time.monotonic()
                    try:
                        done = await until(
                            lambda: ended(db, small.id), timeout_s=timeout_s, what="small"
                        )
                    except RuntimeError:
                        return None
                    return done - started
                finally:
                    await stop(worker)
        finally:
            await db.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[150, 250])
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--poll", type=float, default=2.0)
    args = parser.parse_args()
    print("| servers in flight | VF_POLL_INTERVAL (s) | 5-server request done after (s) |")
    print("|---:|---:|---:|")
    for count in args.in_flight:
        took = asyncio.run(run(count, args.timeout, args.rate, args.poll))
        shown = f"{took:.1f}" if took is not None else f"not done after {args.timeout:g}"
        print(f"| {count} | {args.poll:g} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
