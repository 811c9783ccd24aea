"""Write the legacy databases with vfbot's own code at commit 61aa0d7 (the migrations' baseline).

Not a test and not importable from this tree: it runs inside a checkout of 61aa0d7, where
`bot` and `tests.slack` are that commit's code. See README.md beside it for the commands.

It drives 61aa0d7's real `Runtime` (Slack app, engine, notifier) the way its own end-to-end
tests do: signed Slack requests to the HTTP endpoint, the sandbox panel and the fake Slack Web
API on loopback, the engine ticked by hand on a fake clock. The scenario, the same on SQLite and
PostgreSQL:

- VF-1 "shop": web-1, web-2, approved and built; every event delivered to the Slack notifier,
  the root message and the completion notice recorded (`requests.slack_ts`/`slack_notice_ts`).
- VF-2 "broken": db-1, approved, its build fails (the sandbox fails the next build).
- OP-1: delete web-2 through `/vf delete`, approved in Slack (`operations.slack_ts`), done.
- VF-3 "later": app-1, app-2, approved (running) with both servers still planned: submitted but
  not run, as a crash or a stop right after the approval leaves it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import Runtime
from bot.config import load_settings
from bot.sandbox import BuildTiming, FakeClock, PanelState, running_sandbox
from bot.slack import ids
from bot.store import InstanceState, OperationState, RequestState
from bot.virtfusion import AiohttpVirtFusionClient, RetryPolicy
from tests.slack import signing
from tests.slack.conftest import APPROVER, BOT_TOKEN, CHANNEL, REQUESTER, SlackHarness, form
from tests.slack.fake_slack import running_fake_slack

FAST_RETRY = RetryPolicy(
    max_attempts=3, deadline_s=5, backoff_base_s=0.001, backoff_max_s=0.005, locked_wait_s=0.001
)
PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_DATABASE = "vfbot_legacy_61aa0d7"


async def scenario(database_url: str) -> dict[str, Any]:
    """Run the scenario against `database_url`; return what it left, for the README check."""
    clock = FakeClock()
    panel = PanelState(clock=clock, timing=BuildTiming(queued_s=2, build_s=6))
    async with (
        running_sandbox(panel) as sandbox,
        running_fake_slack(BOT_TOKEN) as slack,
        aiohttp.ClientSession() as http,
    ):

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        settings = load_settings(
            {
                "VIRTFUSION_HOST": sandbox.url,
                "VIRTFUSION_API_TOKEN": panel.token,
                "VIRTFUSION_USER_ID": "1",
                "VIRTFUSION_PACKAGE_ID": "1",
                "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
                "DATABASE_URL": database_url,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": signing.TEST_SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "VF_APPROVERS": APPROVER,
                "VF_REQUIRE_APPROVAL": "always",
                "VF_APPROVAL_TTL": "30d",
                "VF_CREATE_GRACE": "30s",
            },
            env_file=None,
        )
        runtime = Runtime(
            settings,
            clock=clock,
            panel_client=AiohttpVirtFusionClient(
                sandbox.api_url, SecretStr(panel.token), retry=FAST_RETRY, rate_limit_per_s=1000
            ),
            host="127.0.0.1",
            port=0,
            pacing_s=0,
            run_scheduler=False,
            process_before_response=True,
            sleep=advance,
        )
        await runtime.start()
        try:
            h = SlackHarness(runtime, slack, sandbox, clock, http)
            return await _drive(h)
        finally:
            await runtime.stop()


async def _approve(h: SlackHarness, request_id: int) -> None:
    record, _ = await h.runtime.service.get(request_id)
    await h.click(ids.APPROVE, request_id, user=APPROVER, message_ts=record.slack_ts)


async def _drive(h: SlackHarness) -> dict[str, Any]:
    service = h.runtime.service

    # VF-1: built, with its notice.
    await h.submit(form(name="web", count="2", project="shop"))
    await h.runtime.tick()  # the root message
    await _approve(h, 1)
    await h.run_engine(ticks=12)

    # VF-2: its only build fails.
    h.sandbox.state.timing = BuildTiming(queued_s=2, build_s=6, fail_next=1)
    await h.submit(form(name="db", count="1", project="broken"))
    await h.runtime.tick()
    await _approve(h, 2)
    await h.run_engine(ticks=12)
    h.sandbox.state.timing = BuildTiming(queued_s=2, build_s=6)

    # OP-1: delete web-2, confirmed and approved in Slack.
    await h.command("delete web-2")
    opened = h.slack.calls_to("views.open")[-1].params["view"]
    await h.submit(
        {ids.B_DELAY: {ids.B_DELAY: signing.number_input("0")}},
        callback_id=ids.CONFIRM_VIEW,
        metadata=opened["private_metadata"],
    )
    await h.click(ids.DELETE_APPROVE, 1, user=APPROVER)
    await h.run_engine(ticks=3)

    # VF-3: approved, then nothing ran (no engine tick; only the notifier delivered).
    await h.submit(form(name="app", count="2", project="later"))
    await h.runtime.outbox.drain()
    await _approve(h, 3)
    await h.runtime.outbox.drain()

    summary: dict[str, Any] = {}
    for request_id, expected in (
        (1, RequestState.COMPLETED),
        (2, RequestState.FAILED),
        (3, RequestState.RUNNING),
    ):
        record, instances = await service.get(request_id)
        if record.state is not expected:
            raise SystemExit(f"VF-{request_id} is {record.state}, expected {expected}")
        summary[f"VF-{request_id}"] = {
            "state": record.state.value,
            "slack": [record.slack_channel, record.slack_ts, record.slack_notice_ts],
            "servers": [[i.name, i.state.value, i.server_id] for i in instances],
        }
    _, planned = await service.get(3)
    if any(i.state is not InstanceState.PLANNED for i in planned):
        raise SystemExit("VF-3's servers must still be planned")
    operation = await h.runtime.ops.get_operation(1)
    if operation.state is not OperationState.DONE or operation.slack_ts is None:
        raise SystemExit(f"OP-1 is {operation.state} with ts {operation.slack_ts}")
    summary["OP-1"] = {
        "state": operation.state.value,
        "server_id": operation.server_id,
        "slack": [operation.slack_channel, operation.slack_ts],
    }
    summary["channel"] = CHANNEL
    summary["requester"] = REQUESTER
    return summary


async def _pg(statement: str) -> None:
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db_file = Path(tmp) / "vfbot.db"
        summary = asyncio.run(scenario(f"sqlite+aiosqlite:///{db_file}"))
        wal = Path(f"{db_file}-wal")
        if wal.exists() and wal.stat().st_size:
            raise SystemExit("the -wal file was not checkpointed at stop")
        shutil.copyfile(db_file, out / "vfbot-61aa0d7.sqlite")
    (out / "summary-61aa0d7.json").write_text(json.dumps(summary, indent=2) + "\n")

    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"'))
    asyncio.run(_pg(f'CREATE DATABASE "{PG_DATABASE}"'))
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
        if asyncio.run(scenario(url)) != summary:
            raise SystemExit("SQLite and PostgreSQL runs differ")
        dump = subprocess.run(
            [
                "pg_dump",
                "--host=127.0.0.1",
                "--username=postgres",
                "--schema=public",
                "--no-owner",
                "--no-privileges",
                "--inserts",
                PG_DATABASE,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (out / "vfbot-61aa0d7.sql").write_text(dump)
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"'))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the .sqlite, the .sql and the summary")
    main(parser.parse_args().out)
