"""P3: how close a request gets to the panel's rate-limit floor (run by hand).

A real `vfbot serve` (with a fake Slack on loopback) or `vfbot worker` process carries out one
request of N servers (default 50) against the sandbox panel on loopback, which answers every
call after `--latency` seconds (default 0.1) and builds instantly. vfbot may send `--rate` calls
per second (VIRTFUSION_RATE_LIMIT, default 10). The floor is the time the calls a request cannot
do without take at that rate: a create and a build per server, and one listing that sees them
built, so (2N + 1) / rate. Printed, per process and VF_POLL_INTERVAL: the panel calls made, the
time from the first create to the request's end, and its ratio to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from _common import (
    ended,
    open_database,
    roomy,
    serve_env,
    start_worker,
    stop,
    submit,
    until,
    worker_env,
)

from bot.sandbox import BuildTiming, PanelState, running_sandbox
from tests.slack.fake_slack import running_fake_slack


def floor_s(servers: int, rate: float) -> float:
    return (2 * servers + 1) / rate


async def run(
    command: str, servers: int, poll_s: float, rate: float, latency_s: float
) -> tuple[int, float]:
    """Panel calls made and seconds from the first create to the request's end."""
    panel = roomy(PanelState(timing=BuildTiming(queued_s=0, build_s=0)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = await open_database(path)
        try:
            async with (
                running_sandbox(panel) as sandbox,
                running_fake_slack("xoxb-bench-0123456789") as slack,
            ):
                record = await submit(sandbox, db, servers)
                panel.faults.latency_s = latency_s
                panel.reset_log()
                env = worker_env(
                    sandbox,
                    path,
                    VIRTFUSION_RATE_LIMIT=str(rate),
                    VF_POLL_INTERVAL=str(poll_s),
                )
                if command == "serve":
                    env = serve_env(env, slack.api_url)
                worker = await start_worker(env, Path(tmp), command=command)
                try:
                    await until(
                        lambda: ended(db, record.id),
                        timeout_s=600,
                        what="the request",
                        process=worker,
                    )
                finally:
                    await stop(worker)
            async with db.uow() as uow:
                final = await uow.requests.get(record.id)
        finally:
            await db.stop()
    creates = [c.at for c in panel.log if c.method == "POST" and c.api_path == "/servers"]
    if final is None or not creates:
        raise RuntimeError("the request did not run")
    calls = sum(1 for c in panel.log if c.api_path.startswith("/"))
    return calls, (final.updated_at - min(creates)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--poll", type=float, nargs="+", default=[2.0, 10.0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--command", nargs="+", default=["serve", "worker"])
    args = parser.parse_args()
    floor = floor_s(args.servers, args.rate)
    print(
        "| process | VF_POLL_INTERVAL (s) | servers | panel calls | floor (s) | took (s) "
        "| ratio to floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for command in args.command:
        for poll_s in args.poll:
            calls, took = asyncio.run(run(command, args.servers, poll_s, args.rate, args.latency))
            print(
                f"| {command} | {poll_s:g} | {args.servers} | {calls} | {floor:.1f} "
                f"| {took:.1f} | {took / floor:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
