"""How soon Slack has every milestone of 1,000 servers after the last build (issue 11, item 5).

Run by hand from the repository root: `.venv/bin/python bench/delivery_1000.py [--servers 1000]
[--after 300] [--source DIR]`.

`vfbot serve` runs as its own process (HTTP mode, SQLite, `VF_POLL_INTERVAL=1`) against a roomy
sandbox panel (real clock: builds queue 1 s and take 5 s) and the fake Slack; vfbot keeps
Slack's pace of one message per second per channel itself. One user types `/vf create {json}`
in one channel for `--servers` servers, in requests of at most 500 (VF_MAX_INSTANCES' ceiling).
Every server has three milestones (created, installing, ready) and each request a completion
notice. Measured: when the last build completes on the panel, and when Slack has every
milestone and notice; the run gives up `--after` seconds after the last build and reports what
had arrived. The goal: everything within 120 s of the last build.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _slack import request_body, roomy, signing, world

from bot.sandbox import BuildTiming, PanelState
from tests.slack.fake_slack import FakeSlack

REQUESTER, CHANNEL = "U0BENCHREQ", "C0MANY"
_LINE = re.compile(r"`(many\d+-\d+)`[^\n]*?(created|installing|is ready)")


def _texts(call_params: dict[str, Any]) -> str:
    """Every text of a posted message (its blocks' sections, else its fallback text)."""
    blocks = call_params.get("blocks") or []
    if blocks:
        return "\n".join(str((b.get("text") or {}).get("text", "")) for b in blocks)
    return str(call_params.get("text", ""))


def _said(slack: FakeSlack) -> tuple[set[tuple[str, str]], int]:
    """The (server, milestone) pairs Slack has in threads, and how many notices."""
    milestones: set[tuple[str, str]] = set()
    notices = 0
    for call in slack.calls_to("chat.postMessage"):
        if str(call.params.get("reply_broadcast")).lower() in ("true", "1"):
            notices += 1
            continue
        if call.params.get("thread_ts"):
            milestones.update(_LINE.findall(_texts(call.params)))
    return milestones, notices


def _last_build(panel: PanelState, servers: int) -> float | None:
    """When the last build completed on the panel (epoch seconds), once all have."""
    now = panel.now()
    done = [
        s.build.complete_at
        for s in panel.servers.values()
        if (s.name or "").startswith("many") and s.build is not None and s.build.complete_at <= now
    ]
    return max(done).timestamp() if len(done) >= servers else None


async def run(servers: int, after_s: float, source: Path | None) -> dict[str, float]:
    panel = roomy(PanelState(timing=BuildTiming(queued_s=1, build_s=5)))
    requests = [500] * (servers // 500) + ([servers % 500] if servers % 500 else [])
    with tempfile.TemporaryDirectory() as tmp:
        async with world(
            panel,
            Path(tmp),
            source=source,
            VF_REQUIRE_APPROVAL="never",
            VF_POLL_INTERVAL="1",
            VF_MAX_INSTANCES="500",
            VIRTFUSION_RATE_LIMIT="200",
            VIRTFUSION_CONCURRENCY="16",
        ) as w:
            slack, serve, http = w.slack, w.serve, w.http
            started = time.time()
            for n, count in enumerate(requests):
                body, headers = signing.slash_command(
                    signing.TEST_SIGNING_SECRET,
                    text="create " + json.dumps(request_body(count, f"many{n}")),
                    user_id=REQUESTER,
                    channel_id=CHANNEL,
                    response_url=slack.response_url(),
                )
                async with http.post(serve.events_url, data=body, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")
            last_build: float | None = None
            everything_at: float | None = None
            while True:
                await asyncio.sleep(1)
                said, notices = _said(slack)
                if last_build is None:
                    last_build = _last_build(panel, servers)
                if len(said) >= 3 * servers and notices >= len(requests):
                    everything_at = time.time()
                    break
                if last_build is not None and time.time() > last_build + after_s:
                    break
                if time.time() > started + 3600:
                    raise RuntimeError("the builds did not finish within an hour")
            said, notices = _said(slack)
            posts = len(slack.calls_to("chat.postMessage"))
            updates = len(slack.calls_to("chat.update"))
    assert last_build is not None
    return {
        "servers": servers,
        "builds_s": last_build - started,
        "delivered_s": (everything_at - last_build) if everything_at else float("nan"),
        "milestones": len(said),
        "notices": notices,
        "posts": posts,
        "updates": updates,
        "waited_s": after_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--after", type=float, default=300.0, help="give up this long after")
    parser.add_argument("--source", type=Path, help="run vfbot serve from this checkout")
    args = parser.parse_args()
    r = asyncio.run(run(args.servers, args.after, args.source))
    done = "not all" if r["delivered_s"] != r["delivered_s"] else f"{r['delivered_s']:.0f} s"
    print(f"{r['servers']:.0f} servers in one channel; builds done {r['builds_s']:.0f} s in")
    print(
        "| everything in Slack after the last build | milestones in Slack | notices "
        "| posts | root rewrites |"
    )
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {done} (gave up at {r['waited_s']:.0f} s) | {r['milestones']:.0f} of "
        f"{3 * r['servers']:.0f} | {r['notices']:.0f} | {r['posts']:.0f} | {r['updates']:.0f} |"
    )


if __name__ == "__main__":
    main()
