"""Webhooks: how long after the panel's `server.build` webhook the request's notice is in Slack.

Run by hand from the repository root: `.venv/bin/python bench/webhook_lag.py [--requests 20]
[--poll 60] [--off]`.

`vfbot serve` runs as its own process (HTTP mode, SQLite, `VF_POLL_INTERVAL=--poll`,
`VIRTFUSION_WEBHOOK_TOKEN` set) against the sandbox panel (real clock: builds queue 1 s and take
4 s) and the fake Slack (Slack's pace of one message per second per channel). The sandbox sends
its webhooks to `/virtfusion/webhook` as the panel does (it notices a finished build within
20 ms). Users type `/vf create {json}` for `--requests` one-server requests, one every `--gap`
seconds, spread over `--channels` channels. With `--off` no webhook is sent (and the token is
unset): polling alone.

The lag of one request is from its `server.build` webhook (with `--off`: from its build
completing on the panel) to its completion notice being posted; "recorded" is the engine's part
(until `request.finished` is in the database). The notice is a reply in the request's thread
(broadcast to the channel) with every server's state and address; the per-server "built"
milestone reply follows it at the channel's next posting turn (Slack's pace). Goal with
webhooks: p95 at most 1 s; without: at most the poll interval + 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _slack import percentile, request_body, roomy, world
from p4_notice_lag import _built, _command, _finished, _notices

from bot.sandbox import BuildTiming, PanelState
from tests.slack.fake_slack import FakeSlack

TOKEN = "bench-webhook-token-0123456789"


def _built_replies(slack: FakeSlack) -> dict[str, float]:
    """When each server's "built" milestone reply was posted in its thread, by project name
    (the servers are named after their projects)."""
    posted: dict[str, float] = {}
    for call in slack.calls_to("chat.postMessage"):
        text = str(call.params.get("text", "")) + json.dumps(call.params.get("blocks") or [])
        if call.params.get("thread_ts") and "built in" in text:
            for name in re.findall(r"\blag\d+\b", text):
                posted.setdefault(name, call.at)
    return posted


async def run(
    requests: int, poll_s: float, webhooks: bool, channels: int, gap_s: float
) -> dict[str, float]:
    panel = roomy(PanelState(timing=BuildTiming(queued_s=1, build_s=4)))
    settings = {"VIRTFUSION_WEBHOOK_TOKEN": TOKEN} if webhooks else {}
    with tempfile.TemporaryDirectory() as tmp:
        async with world(
            panel,
            Path(tmp),
            VF_REQUIRE_APPROVAL="never",
            VF_POLL_INTERVAL=str(poll_s),
            VIRTFUSION_RATE_LIMIT="50",
            **settings,
        ) as w:
            if webhooks:
                url = f"http://127.0.0.1:{w.serve.port}/virtfusion/webhook"
                w.sandbox.hooks.configure({"url": url, "token": TOKEN, "every_s": 0.02})
            slack, http = w.slack, w.http
            for n in range(requests):
                one = json.dumps(request_body(1, f"lag{n}"))
                channel = f"C0LAG{n % channels}"
                await _command(
                    http, w.serve.events_url, slack, text=f"create {one}", channel_id=channel
                )
                await asyncio.sleep(gap_s)
            deadline = time.monotonic() + poll_s + 120
            while time.monotonic() < deadline and (  # noqa: ASYNC110
                len(_notices(slack)) < requests or len(_built_replies(slack)) < requests
            ):
                await asyncio.sleep(0.25)
            built, noticed, replied = _built(panel), _notices(slack), _built_replies(slack)
            hooked = {
                (panel.servers[d.server_id].name or "").split("-")[0]: d.sent_at
                for d in w.sandbox.hooks.sent
                if d.event == "server.build" and d.server_id in panel.servers
            }
            answered = {d.answered for d in w.sandbox.hooks.sent}
        finished = _finished(Path(tmp) / "vfbot.db")
    start = hooked if webhooks else built
    lags = [noticed[name] - start[name] for name in start if name in noticed]
    recorded = [finished[n] - start[n] for n in start if n in finished]
    replies = [replied[n] - start[n] for n in start if n in replied]
    return {
        "requests": requests,
        "missing": requests - min(len(lags), len(replies)),
        "p50": percentile(lags, 50) if lags else float("nan"),
        "p95": percentile(lags, 95) if lags else float("nan"),
        "max": max(lags) if lags else float("nan"),
        "recorded_p95": percentile(recorded, 95) if recorded else float("nan"),
        "reply_p95": percentile(replies, 95) if replies else float("nan"),
        "webhooks": len(hooked),
        "answered": float(min(answered)) if answered else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--poll", type=float, default=60.0)
    parser.add_argument("--off", action="store_true", help="no webhooks: polling alone")
    parser.add_argument("--channels", type=int, default=4, help="channels the requests share")
    parser.add_argument("--gap", type=float, default=1.5, help="seconds between requests")
    args = parser.parse_args()
    r = asyncio.run(run(args.requests, args.poll, not args.off, args.channels, args.gap))
    mode = "off" if args.off else "on"
    goal = args.poll + 1 if args.off else 1.0
    print(
        f"VF_POLL_INTERVAL={args.poll:g}, webhooks {mode}: {r['requests']:.0f} one-server "
        f"requests ({r['missing']:.0f} without a notice), {r['webhooks']:.0f} webhooks sent"
    )
    print(
        "| webhooks | channels | notice p50 (s) | p95 (s) | max (s) | goal p95 (s) "
        "| p95 recorded (s) | p95 milestone reply (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {mode} | {args.channels} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} "
        f"| {goal:.2f} | {r['recorded_p95']:.2f} | {r['reply_p95']:.2f} |"
    )


if __name__ == "__main__":
    main()
