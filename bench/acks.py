"""How fast Slack gets its acks while vfbot chews on the biggest requests (run by hand:
`.venv/bin/python bench/acks.py`).

Starts `vfbot serve` (HTTP mode, SQLite) on loopback against the sandbox panel and a fake Slack
Web API, then, in each round, sends a maximum-size `/vf create {…}` (1 MiB of request JSON,
about 2.6 MB once form-encoded) and submits the create modal with a maximum-size request file
(1 MiB, downloaded from the fake Slack), and while both are being processed fires waves of 50
concurrent `/vf help`, each correctly signed. An ack is the HTTP answer to one `/vf help`;
Slack gives up after 3 s. Results go to stdout; docs/benchmarks.md keeps the latest numbers.

`--on-loop` runs the parsing on the event loop instead of in a worker thread, as vfbot did
before, to show what the thread buys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
from pydantic import SecretStr

from bot.app import Runtime
from bot.config import load_settings
from bot.sandbox import PanelState, running_sandbox
from bot.slack import ids
from bot.virtfusion import AiohttpVirtFusionClient

# Slack's signed payloads and the fake Web API are the test suite's own (tests/slack).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.slack import signing
from tests.slack.fake_slack import running_fake_slack

BOT_TOKEN = "xoxb-bench-0123456789"
USER = "U0BENCH"
CHANNEL = "C0BENCH"
MAX_BYTES = 1024 * 1024


def biggest_request() -> str:
    """A request just under 1 MiB that is as costly to check as any: 20 instances, the last with
    a firewall list of ~100,000 wrong values (every one a validation error to find)."""
    instances: list[dict[str, Any]] = [
        {"name": f"web-{i}", "template": "ubuntu-22.04", "hypervisor_group": "Prague"}
        for i in range(19)
    ]
    head = json.dumps({"project_name": "bench", "instances": instances})[:-2]
    tail = ', {"name": "big", "template": "t", "network": {"firewall_rulesets": ['
    room = MAX_BYTES - len(head) - len(tail) - 10
    items = ",".join(['"x"'] * (room // 4))
    text = head + tail + items + "]}}]}"
    assert len(text.encode()) <= MAX_BYTES, len(text)
    return text


async def _post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> float:
    started = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    return time.perf_counter() - started


@contextlib.contextmanager
def parsing_on_the_loop(enabled: bool) -> Iterator[None]:
    """Replace `asyncio.to_thread` in the Slack layer with a plain call (vfbot's old way)."""
    if not enabled:
        yield
        return

    async def inline(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    with (
        mock.patch("bot.slack.web.asyncio.to_thread", inline),
        mock.patch("bot.slack.listeners.create.asyncio.to_thread", inline),
    ):
        yield


async def run(rounds: int, on_loop: bool) -> dict[str, float]:
    panel = PanelState()
    request_text = biggest_request()
    acks: list[float] = []
    idle: list[float] = []
    heavy: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, parsing_on_the_loop(on_loop):
        async with (
            running_sandbox(panel) as sandbox,
            running_fake_slack(BOT_TOKEN) as slack,
            aiohttp.ClientSession() as http,
        ):
            env = {
                "VIRTFUSION_HOST": sandbox.url,
                "VIRTFUSION_API_TOKEN": panel.token,
                "VIRTFUSION_USER_ID": "1",
                "VIRTFUSION_PACKAGE_ID": "1",
                "DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": signing.TEST_SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "VF_APPROVERS": "U0APPROVER",
            }
            runtime = Runtime(
                load_settings(env, env_file=None),
                panel_client=AiohttpVirtFusionClient(
                    sandbox.api_url, SecretStr(panel.token), rate_limit_per_s=1000
                ),
                host="127.0.0.1",
                port=0,
                run_scheduler=False,
            )
            await runtime.start()
            url = f"http://127.0.0.1:{runtime.bound_port}/slack/events"
            try:
                for _ in range(rounds):  # the same waves with nothing else to do, for scale
                    helps = [
                        signing.slash_command(
                            signing.TEST_SIGNING_SECRET, text="help", user_id=USER
                        )
                        for _ in range(50)
                    ]
                    idle += await asyncio.gather(*(_post(http, url, *h) for h in helps))
                for _ in range(rounds):
                    file = slack.add_file("biggest.json", request_text.encode(), user=USER)
                    create = signing.slash_command(
                        signing.TEST_SIGNING_SECRET,
                        text=f"create {request_text}",
                        user_id=USER,
                        channel_id=CHANNEL,
                        response_url=slack.response_url(),
                    )
                    submission = signing.interaction(
                        signing.TEST_SIGNING_SECRET,
                        signing.view_submission(
                            callback_id=ids.CREATE_VIEW,
                            values={ids.B_FILE: {ids.B_FILE: signing.file_input([file])}},
                            user_id=USER,
                            private_metadata=json.dumps({"c": CHANNEL}),
                        ),
                    )
                    started = time.perf_counter()
                    work = [
                        asyncio.ensure_future(_post(http, url, *create)),
                        asyncio.ensure_future(_post(http, url, *submission)),
                    ]
                    while True:  # waves of 50 until both big requests are answered and parsed
                        helps = [
                            signing.slash_command(
                                signing.TEST_SIGNING_SECRET, text="help", user_id=USER
                            )
                            for _ in range(50)
                        ]
                        acks += await asyncio.gather(*(_post(http, url, *h) for h in helps))
                        await runtime.settle()  # the inline create's reply (background work)
                        if all(task.done() for task in work):
                            break
                    await asyncio.gather(*work)
                    heavy.append(time.perf_counter() - started)
            finally:
                await runtime.stop()
    acks.sort()
    idle.sort()
    return {
        "idle_p99": _p99(idle),
        "acks": len(acks),
        "p50": statistics.median(acks),
        "p99": _p99(acks),
        "max": acks[-1],
        "heavy": statistics.median(heavy),
        "request_kib": len(request_text.encode()) / 1024,
        "body_kib": len(create[0]) / 1024,
    }


def _p99(values: list[float]) -> float:
    return values[max(0, int(len(values) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--on-loop", action="store_true", help="parse on the event loop")
    args = parser.parse_args()
    r = asyncio.run(run(args.rounds, args.on_loop))
    where = "on the event loop" if args.on_loop else "in a worker thread"
    print(
        f"parsing {where}; request {r['request_kib']:.0f} KiB (form body "
        f"{r['body_kib']:.0f} KiB); {r['acks']:.0f} acks"
    )
    print(
        "| acks | p50 (s) | p99 (s) | max (s) | p99 with nothing else (s) "
        "| big create + file, median (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['acks']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {r['max']:.3f} "
        f"| {r['idle_p99']:.3f} | {r['heavy']:.2f} |"
    )


if __name__ == "__main__":
    main()
