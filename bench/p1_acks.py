"""P1: how fast each vfbot listener acknowledges Slack, next to a bare Bolt app, in one run.

Run by hand from the repository root: `.venv/bin/python bench/p1_acks.py [--count 500]
[--concurrency 50] [--source DIR]`.

Two servers run as their own processes on loopback: `vfbot serve` (HTTP mode, SQLite, against
the sandbox panel and the fake Slack, both in this process) and a bare Bolt `AsyncApp` whose
listeners only ack (the framework's floor; it authorizes without calling Slack). For each kind
of request (slash commands, a button click, the create modal's submission) this process sends
`--count` correctly signed requests, `--concurrency` at a time, first to vfbot and then, once
vfbot has finished the work it started after its acks, the same to the bare app; the requests
come from a process of their own. An ack is the HTTP answer; Slack gives up after 3 s. Prints
p50/p99 per kind and the ratio of vfbot's p99 to the floor's (goal: at most 1.5, under 150 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _slack import (  # bench/ is not a package
    BOT_TOKEN,
    free_port,
    percentile,
    request_body,
    roomy,
    run_load,
    serving,
    signing,
)

from bot.sandbox import PanelState, running_sandbox
from bot.slack import ids
from tests.slack.fake_slack import FakeSlack, running_fake_slack

REQUESTER, APPROVER, CHANNEL = "U0BENCHREQ", "U0BENCHAPP", "C0BENCH"

Make = Callable[[int], tuple[bytes, dict[str, str]]]


def _form() -> dict[str, object]:
    """A filled create form (the ids of bot/slack/ids.py, as Slack sends `view.state`)."""

    def text(value: str | None) -> dict[str, object]:
        return {"type": "plain_text_input", "value": value}

    def select(value: str) -> dict[str, object]:
        option = {"text": {"type": "plain_text", "text": value}, "value": value}
        return {"type": "static_select", "selected_option": option}

    def number(value: str | None) -> dict[str, object]:
        return {"type": "number_input", "value": value}

    fields: dict[str, dict[str, object]] = {
        ids.B_PROJECT: text("bench"),
        ids.B_NAME: text("ack"),
        ids.B_COUNT: number("1"),
        ids.B_GROUP: select("1"),
        ids.B_TEMPLATE: select("1"),
        ids.B_MEMORY: number(None),
        ids.B_DISK: number(None),
        ids.B_CPU: number(None),
        ids.B_SSH_KEY: select("default"),
        ids.B_PROFILE: number(None),
        ids.B_PUBLIC_IP: {"type": "radio_buttons", "selected_option": None},
        ids.B_BANDWIDTH: number(None),
        ids.B_VOLUME_SIZE: number(None),
        ids.B_VOLUME_MOUNT: text(None),
        ids.B_FILE: {"type": "file_input", "files": []},
    }
    return {block: {block: value} for block, value in fields.items()}


def kinds(response_urls: list[str]) -> dict[str, Make]:
    """What each measured request looks like (request `n` answers to `response_urls[n]`), with
    a fresh trigger id each time."""
    inline = json.dumps(request_body(1, "inline"))

    def command(text: str, user: str = REQUESTER) -> Make:
        return lambda n: signing.slash_command(
            signing.TEST_SIGNING_SECRET,
            text=text,
            user_id=user,
            channel_id=CHANNEL,
            response_url=response_urls[n],
        )

    def submission(n: int) -> tuple[bytes, dict[str, str]]:
        payload = signing.view_submission(
            callback_id=ids.CREATE_VIEW,
            values=_form(),
            view_id=f"VBENCH{n:06d}{time.monotonic_ns() % 10**6}",
            user_id=REQUESTER,
            private_metadata=json.dumps({"c": CHANNEL}),
        )
        return signing.interaction(signing.TEST_SIGNING_SECRET, payload)

    def approve(n: int) -> tuple[bytes, dict[str, str]]:
        payload = signing.block_actions(
            action_id=ids.APPROVE,
            value=str(1 + n % 5),  # the first five requests: decided once, then "already"
            user_id=APPROVER,
            message_ts="1700000000.000100",
            channel_id=CHANNEL,
            trigger_id=signing.new_trigger_id(),
            response_url=response_urls[n],
        )
        return signing.interaction(signing.TEST_SIGNING_SECRET, payload)

    return {
        "/vf help": command("help"),
        "/vf create {json}": command(f"create {inline}"),
        "create modal submitted": submission,
        "/vf list": command("list"),
        "/vf list all": command("list all", user=APPROVER),
        "/vf status VF-1": command("status VF-1"),
        "Approve clicked": approve,
    }


def load(url: str, kind: str, count: int, concurrency: int, urls_file: Path) -> None:
    """The load generator's own process: send one kind, print each ack's seconds as JSON."""
    response_urls = json.loads(urls_file.read_text())

    async def go() -> list[float]:
        connector = aiohttp.TCPConnector(limit=concurrency + 10)
        async with aiohttp.ClientSession(connector=connector) as http:
            make = kinds(response_urls)[kind]
            return await run_load(http, url, make, count=count, concurrency=concurrency)

    print(json.dumps(asyncio.run(go())))


async def _measure(
    url: str, kind: str, count: int, concurrency: int, slack: FakeSlack, tmp: Path
) -> list[float]:
    """Run the load generator in a process of its own (so serving the panel and Slack to
    vfbot, in this process, does not slow the measurement down)."""
    urls_file = tmp / "response_urls.json"
    urls_file.write_text(json.dumps([slack.response_url() for _ in range(count)]))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--load",
        url,
        "--kind",
        kind,
        "--count",
        str(count),
        "--concurrency",
        str(concurrency),
        "--urls",
        str(urls_file),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the load generator failed on {kind}")
    return [float(v) for v in json.loads(out)]


# -- the floor: a bare Bolt app ------------------------------------------------------------------


def bare_app(port: int) -> None:
    """Serve a Bolt AsyncApp that acks everything (run in its own process)."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_bolt.authorization import AuthorizeResult

    async def authorize(team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id=team_id,
            bot_token=BOT_TOKEN,
            bot_user_id="UBOT",
            user_id=user_id,
        )

    app = AsyncApp(signing_secret=signing.TEST_SIGNING_SECRET, authorize=authorize)

    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    app.command("/vf")(ack_only)
    app.view(re.compile(".*"))(ack_only)
    app.action(re.compile(".*"))(ack_only)

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    web_app.router.add_get("/healthz", health)
    web.run_app(web_app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _start_bare() -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--bare", str(port), stdout=asyncio.subprocess.DEVNULL
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process, f"http://127.0.0.1:{port}/slack/events"
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the bare Bolt app did not start")


# -- the run -------------------------------------------------------------------------------------


async def _quiet(slack: FakeSlack, panel: PanelState, settle_s: float = 0.5) -> None:
    """Wait until vfbot has stopped calling Slack and the panel (its work after the acks)."""
    last = (-1, -1)
    while True:
        now = (len(slack.calls) + len(slack.responses), len(panel.log))
        if now == last:
            return
        last = now
        await asyncio.sleep(settle_s)


async def run(
    count: int, concurrency: int, source: Path | None, only: list[str]
) -> dict[str, dict[str, float]]:
    panel = roomy(PanelState())
    results: dict[str, dict[str, float]] = {}
    bare, bare_url = await _start_bare()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with (
                running_sandbox(panel) as sandbox,
                running_fake_slack(BOT_TOKEN) as slack,
                serving(
                    sandbox,
                    slack,
                    Path(tmp),
                    source=source,
                    VF_APPROVERS=APPROVER,
                    VF_ADMINS=APPROVER,
                    VF_REQUIRE_APPROVAL="always",
                    VIRTFUSION_RATE_LIMIT="1000",
                    VIRTFUSION_CONCURRENCY="16",
                ) as serve,
            ):
                for name in [k for k in kinds([]) if not only or k in only]:
                    vfbot = await _measure(
                        serve.events_url, name, count, concurrency, slack, Path(tmp)
                    )
                    await _quiet(slack, panel)
                    floor = await _measure(bare_url, name, count, concurrency, slack, Path(tmp))
                    results[name] = {
                        "p50": percentile(vfbot, 50),
                        "p99": percentile(vfbot, 99),
                        "max": max(vfbot),
                        "floor_p50": percentile(floor, 50),
                        "floor_p99": percentile(floor, 99),
                    }
                    print(f"{name}: {_row(results[name])}", file=sys.stderr)
    finally:
        bare.terminate()
        await bare.wait()
    return results


def _row(r: dict[str, float]) -> str:
    return (
        f"{r['p50'] * 1000:.0f} | {r['p99'] * 1000:.0f} | {r['max'] * 1000:.0f} | "
        f"{r['floor_p50'] * 1000:.0f} | {r['floor_p99'] * 1000:.0f} | "
        f"{r['p99'] / r['floor_p99']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--source", type=Path, help="run vfbot serve from this checkout")
    parser.add_argument("--only", action="append", default=[], help="measure this kind only")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # the floor's own process
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the load generator's own process
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_app(args.bare)
        return
    if args.load:
        load(args.load, args.kind, args.count, args.concurrency, args.urls)
        return
    results = asyncio.run(run(args.count, args.concurrency, args.source, args.only))
    print(f"{args.count} signed requests per kind, {args.concurrency} at a time")
    print(
        "| request | p50 (ms) | p99 (ms) | max (ms) | bare p50 (ms) | bare p99 (ms) | p99 / bare |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {_row(r)} |")


if __name__ == "__main__":
    main()
