"""P4: how long after a build completes on the panel its request's completion notice is in Slack.

Run by hand from the repository root: `.venv/bin/python bench/p4_notice_lag.py [--requests 12]
[--poll 2] [--source DIR]`.

`vfbot serve` runs as its own process (HTTP mode, SQLite, `VF_POLL_INTERVAL=--poll`) against the
sandbox panel (real clock: builds queue 1 s and take 4 s) and the fake Slack, which keeps
Slack's pace of one message per second per channel (vfbot paces itself). Users type
`/vf create {json}`: a `--busy`-server request first (100), in the first channel, whose
milestones keep that channel busy, then `--requests` one-server requests over four channels,
one a second.
The lag of one request is from its server's build completing on the panel to its notice being
posted. The goal is p95 at most the poll interval + 1 s (the poll finds the build; then one
second to say it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _slack import percentile, request_body, roomy, signing, world

from bot.sandbox import BuildTiming, PanelState
from tests.slack.fake_slack import FakeSlack

REQUESTER = "U0BENCHREQ"
CHANNELS = ("C0LAG1", "C0LAG2", "C0LAG3", "C0LAG4")


async def _command(http: aiohttp.ClientSession, url: str, slack: FakeSlack, **fields: str) -> None:
    body, headers = signing.slash_command(
        signing.TEST_SIGNING_SECRET,
        user_id=REQUESTER,
        response_url=slack.response_url(),
        **fields,
    )
    async with http.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")


def _notices(slack: FakeSlack) -> dict[str, float]:
    """When each request's notice was posted, by project name."""
    posted: dict[str, float] = {}
    for call in slack.calls_to("chat.postMessage"):
        if str(call.params.get("reply_broadcast")).lower() in ("true", "1"):
            for word in str(call.params.get("text", "")).split():
                if word.startswith("lag"):
                    posted.setdefault(word, call.at)
    return posted


def _built(panel: PanelState) -> dict[str, float]:
    """When each one-server request's build completed on the panel, by project name."""
    done: dict[str, float] = {}
    now = panel.now()
    for server in panel.servers.values():
        name = server.name or ""
        if name.startswith("lag") and server.build is not None and server.build.complete_at <= now:
            done[name.split("-")[0]] = server.build.complete_at.timestamp()
    return done


async def run(requests: int, poll_s: float, busy: int, source: Path | None) -> dict[str, float]:
    panel = roomy(PanelState(timing=BuildTiming(queued_s=1, build_s=4)))
    with tempfile.TemporaryDirectory() as tmp:
        async with world(
            panel,
            Path(tmp),
            source=source,
            VF_REQUIRE_APPROVAL="never",
            VF_POLL_INTERVAL=str(poll_s),
            VF_MAX_INSTANCES="100",
            VIRTFUSION_RATE_LIMIT="50",
            VIRTFUSION_CONCURRENCY="8",
        ) as w:
            slack, http, url = w.slack, w.http, w.serve.events_url
            if busy:
                big = json.dumps(request_body(busy, "busy"))
                await _command(http, url, slack, text=f"create {big}", channel_id=CHANNELS[0])
                await asyncio.sleep(5)  # the busy request is creating and building
            for n in range(requests):
                one = json.dumps(request_body(1, f"lag{n}"))
                channel = CHANNELS[n % len(CHANNELS)]
                await _command(http, url, slack, text=f"create {one}", channel_id=channel)
                await asyncio.sleep(1)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if len(_notices(slack)) >= requests:
                    break
                await asyncio.sleep(0.5)
            built, noticed = _built(panel), _notices(slack)
        finished = _finished(Path(tmp) / "vfbot.db")
    lags = [noticed[name] - built[name] for name in built if name in noticed]
    seen = [finished[name] - built[name] for name in built if name in finished]
    said = [noticed[name] - finished[name] for name in finished if name in noticed]
    return {
        "requests": requests,
        "missing": requests - len(lags),
        "p50": percentile(lags, 50) if lags else float("nan"),
        "p95": percentile(lags, 95) if lags else float("nan"),
        "max": max(lags) if lags else float("nan"),
        "seen_p95": percentile(seen, 95) if seen else float("nan"),
        "said_p95": percentile(said, 95) if said else float("nan"),
    }


def _finished(path: Path) -> dict[str, float]:
    """When vfbot recorded each request's end (its `request.finished` event), by project."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT r.project_name, e.created_at FROM events e JOIN requests r "
            "ON r.id = e.request_id WHERE e.kind = 'request.finished'"
        ).fetchall()
    return {name: datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp() for name, at in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--busy", type=int, default=100, help="servers of the busy request")
    parser.add_argument("--source", type=Path, help="run vfbot serve from this checkout")
    args = parser.parse_args()
    r = asyncio.run(run(args.requests, args.poll, args.busy, args.source))
    print(
        f"VF_POLL_INTERVAL={args.poll:g}; {r['requests']:.0f} one-server requests "
        f"({r['missing']:.0f} without a notice within 3 min) beside a {args.busy}-server request"
    )
    print(
        "| notice lag p50 (s) | p95 (s) | max (s) | goal p95 (s) "
        "| p95 build → recorded (s) | p95 recorded → notice (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} | {args.poll + 1:.2f} "
        f"| {r['seen_p95']:.2f} | {r['said_p95']:.2f} |"
    )


if __name__ == "__main__":
    main()
