"""Real `vfbot serve` and `vfbot worker` processes: /metrics with live values, JSON logs that all
parse, and SIGTERM mid-build: exit 0 within the timeout, no traceback, and a second worker that
finishes the build at once instead of waiting for the (hour-long) lease to expire."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.provisioning.model import InstanceState, RequestRecord, RequestState
from bot.sandbox import BuildTiming, PanelState, SandboxServer, running_sandbox
from bot.store.sql import Database
from tests.databases import PG_HOST, PG_PORT, PG_URL, postgres_reachable
from tests.promtext import samples, value
from tests.provisioning.conftest import owner_servers, submit_over_http, vfbot_env
from tests.slack import signing
from tests.slack.fake_slack import FakeSlack, running_fake_slack

BOT_TOKEN = "xoxb-test-token-0123456789"
SHUTDOWN_S = 10


def _request(name: str, count: int) -> dict[str, object]:
    return {
        "project_name": name,
        "instances": [
            {
                "name": name,
                "number_of_instances": count,
                "template": "debian-12",
                "ssh_key_name": "default",
            }
        ],
    }


class Proc:
    """A `vfbot` process whose stderr is read line by line as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []  # stderr: the log
        self.out: list[str] = []  # stdout
        self._reader = asyncio.gather(
            self._read(process.stderr, self.lines), self._read(process.stdout, self.out)
        )

    @staticmethod
    async def _read(stream: asyncio.StreamReader | None, into: list[str]) -> None:
        if stream is None:
            return
        while line := await stream.readline():
            into.append(line.decode().rstrip("\n"))

    def entries(self) -> list[dict[str, Any]]:
        """Every log line as JSON (raises if one is not)."""
        return [json.loads(line) for line in self.lines if line]

    async def until(self, condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
        """Wait for an observable condition, checked every 20 ms; an early exit fails the test."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.process.returncode is not None:
                await self._reader
                log = "\n".join(self.lines)
                raise AssertionError(f"vfbot exited {self.process.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(self.lines))
            await asyncio.sleep(0.02)

    async def finish(self, timeout_s: float) -> tuple[int, str]:
        """Wait for the exit; returns the code and what went to stdout."""
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout=timeout_s)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError("vfbot did not exit in time:\n" + "\n".join(self.lines)) from None
        await self._reader
        return code, "\n".join(self.out)


_RUNNING: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def _kill_leftovers() -> AsyncIterator[None]:
    """A test that fails half-way leaves no vfbot process behind."""
    yield
    while _RUNNING:
        process = _RUNNING.pop()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _start(tmp_path: Path, env: dict[str, str], *argv: str) -> Proc:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *argv,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _RUNNING.append(process)
    return Proc(process)


def _env(tmp_path: Path, sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    return vfbot_env(
        sandbox.url,
        tmp_path / "vfbot.db",
        **{
            "VF_POLL_INTERVAL": "0.2",
            "VF_LEASE": "1h",  # a leftover lease would stall the next worker for an hour
            "VF_SHUTDOWN_TIMEOUT": f"{SHUTDOWN_S}s",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **extra,
        },
    )


async def _submit(db: Database, sandbox: SandboxServer, request: dict[str, object]) -> int:
    return (await submit_over_http(db, sandbox.api_url, request)).id


async def _state(db: Database, request_id: int) -> tuple[RequestRecord, list[InstanceState]]:
    async with db.uow() as uow:
        record = await uow.requests.get(request_id)
        instances = await uow.instances.list_for_request(request_id)
    assert record is not None
    return record, [i.state for i in instances]


def _builds(panel: PanelState) -> int:
    return panel.count("POST", r"^/servers/\d+/build$")


def _assert_clean(proc: Proc) -> None:
    """Every line is JSON, nothing at ERROR, no traceback anywhere."""
    entries = proc.entries()
    assert entries, "the process logged nothing"
    assert not any("Traceback" in line for line in proc.lines), "\n".join(proc.lines)
    errors = [e for e in entries if e["level"] in ("ERROR", "CRITICAL")]
    assert errors == [], errors


async def _sigterm(proc: Proc) -> None:
    """SIGTERM: exit 0 within VF_SHUTDOWN_TIMEOUT, clean JSON logs, nothing else on stdout."""
    sent = time.monotonic()
    proc.process.send_signal(signal.SIGTERM)
    code, stdout = await proc.finish(timeout_s=SHUTDOWN_S + 5)
    assert code == 0, "\n".join(proc.lines)
    assert time.monotonic() - sent < SHUTDOWN_S
    _assert_clean(proc)
    assert stdout.strip() == ""  # with JSON logs nothing but JSON is written


async def _finish_with_second_worker(
    tmp_path: Path, env: dict[str, str], db: Database, request_id: int, panel: PanelState
) -> None:
    """A fresh worker completes the request quickly: nothing it needs is still leased."""
    second = await _start(tmp_path, env, "worker", "--until-idle")
    code, _ = await second.finish(timeout_s=60)
    assert code == 0, "\n".join(second.lines)
    _assert_clean(second)
    record, states = await _state(db, request_id)
    assert record.state is RequestState.COMPLETED, states
    assert set(states) == {InstanceState.BUILT}


async def test_serve_metrics_json_logs_and_sigterm_mid_build(tmp_path: Path) -> None:
    panel = PanelState(timing=BuildTiming(queued_s=0.1, build_s=0.3))
    db = Database(f"sqlite:///{tmp_path / 'vfbot.db'}")
    await db.upgrade()
    await db.start()
    fake: FakeSlack
    async with (
        running_sandbox(panel) as sandbox,
        running_fake_slack(BOT_TOKEN) as fake,
        aiohttp.ClientSession() as http,
    ):
        env = _env(
            tmp_path,
            sandbox,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=signing.TEST_SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            VF_REQUIRE_APPROVAL="never",
            PORT="0",
            VF_BIND="127.0.0.1",
        )
        first_id = await _submit(db, sandbox, _request("first", 2))
        serve = await _start(tmp_path, env, "serve")
        await serve.until(lambda: any("listening on" in line for line in serve.lines), "start")
        (started,) = [e for e in serve.entries() if "listening on" in e["message"]]
        port = int(started["message"].split("listening on 127.0.0.1:")[1].split(" ")[0])
        base = f"http://127.0.0.1:{port}"

        # A request runs to completion and Slack asks for help: the families have live values.
        body, headers = signing.slash_command(signing.TEST_SIGNING_SECRET, text="help")
        async with http.post(f"{base}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
        done: list[bool] = []

        async def completed() -> None:
            record, _ = await _state(db, first_id)
            done.append(record.state is RequestState.COMPLETED)

        deadline = time.monotonic() + 30
        while not (done and done[-1]):
            assert time.monotonic() < deadline, "\n".join(serve.lines)
            await completed()
            await asyncio.sleep(0.05)
        await serve.until(
            lambda: any("finished: completed" in line for line in serve.lines), "the milestone"
        )
        async with http.get(f"{base}/metrics") as response:
            assert response.status == 200
            found = samples(await response.text())
        acks = value(
            found, "vfbot_slack_ack_duration_seconds_count", kind="command", listener="help"
        )
        assert acks == 1
        posts = value(
            found, "vfbot_panel_requests_total", method="POST", endpoint="/servers", status="201"
        )
        assert posts == 2
        assert value(found, "vfbot_engine_tick_duration_seconds_count") >= 1
        assert value(found, "vfbot_build_duration_seconds_count") == 2
        assert value(found, "vfbot_servers", state="built") == 2
        assert value(found, "vfbot_requests", state="completed") == 1
        assert ("vfbot_outbox_backlog_events", (("subscriber", "slack"),)) in found
        assert ("vfbot_outbox_oldest_undelivered_age_seconds", (("subscriber", "slack"),)) in found
        assert ("vfbot_leases_held", ()) in found
        async with http.get(f"{base}/readyz") as response:
            assert response.status == 200, await response.text()

        # SIGTERM while the next request's builds are on the wire (the panel is slow now).
        builds_before = _builds(panel)
        panel.faults.latency_s = 0.4
        second_id = await _submit(db, sandbox, _request("second", 3))
        await serve.until(lambda: _builds(panel) > builds_before, "a build call", timeout_s=30)
        await _sigterm(serve)
        milestones = [e for e in serve.entries() if e["logger"] == "bot.milestones"]
        assert any(e.get("request_id") == f"VF-{first_id}" for e in milestones)
        assert all(e.get("worker_id") for e in milestones)
        record, _ = await _state(db, second_id)
        assert record.state is RequestState.RUNNING  # stopped mid-request

        panel.faults.latency_s = 0
        await _finish_with_second_worker(tmp_path, env, db, second_id, panel)
        assert len(owner_servers(panel)) == 5  # none created twice
    await db.stop()


async def test_worker_sigterm_mid_build_hands_over_at_once(tmp_path: Path) -> None:
    panel = PanelState(timing=BuildTiming(queued_s=0.1, build_s=0.3))
    panel.faults.latency_s = 0.3
    db = Database(f"sqlite:///{tmp_path / 'vfbot.db'}")
    await db.upgrade()
    await db.start()
    async with running_sandbox(panel) as sandbox, aiohttp.ClientSession() as http:
        env = _env(tmp_path, sandbox, VIRTFUSION_CONCURRENCY="2")
        request_id = await _submit(db, sandbox, _request("node", 4))
        worker = await _start(tmp_path, env, "worker", "--metrics-port", "0")
        await worker.until(lambda: any("metrics and health" in line for line in worker.lines), "")
        (line,) = [e for e in worker.entries() if "metrics and health" in e["message"]]
        port = int(line["message"].rsplit(":", 1)[1])
        await worker.until(lambda: _builds(panel) >= 1, "a build call")
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            found = samples(await response.text())
        creates = value(
            found, "vfbot_panel_requests_total", method="POST", endpoint="/servers", status="201"
        )
        assert creates >= 1
        assert ("vfbot_outbox_backlog_events", (("subscriber", "cli"),)) in found
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200

        await _sigterm(worker)
        record, states = await _state(db, request_id)
        assert record.state is RequestState.RUNNING and InstanceState.BUILT not in states

        panel.faults.latency_s = 0
        await _finish_with_second_worker(tmp_path, env, db, request_id, panel)
        assert len(owner_servers(panel)) == 4
    await db.stop()


@asynccontextmanager
async def _fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for real processes (`vfbot serve` creates the schema);
    dropped afterwards. Skips the test without PostgreSQL."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable (CI starts it)")
    name = f"vfbot_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_two_serve_replicas_on_postgresql_post_one_daily_report(tmp_path: Path) -> None:
    """Two `vfbot serve` processes on one PostgreSQL database, started just after the report
    time: both fire the report job (the cron trigger's start-up run), one report reaches Slack."""
    at = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%H:%M")
    async with (
        _fresh_postgres_database() as url,
        running_sandbox(PanelState()) as sandbox,
        running_fake_slack(BOT_TOKEN) as fake,
    ):
        env = _env(
            tmp_path,
            sandbox,
            DATABASE_URL=url,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=signing.TEST_SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            PORT="0",
            VF_ALERT_CHANNEL="C0ALERTS",
            VF_CAPACITY_ALERT="off",
            VF_TRAFFIC_ALERT="off",
            VF_DAILY_REPORT=at,
            VF_REQUIRE_APPROVAL="never",
        )
        replicas = [await _start(tmp_path, env, "serve") for _ in range(2)]
        for proc in replicas:
            await proc.until(
                lambda proc=proc: any("daily report of" in line for line in proc.lines),
                "the replica's daily report job",
            )
        await replicas[0].until(lambda: bool(fake.messages("C0ALERTS")), "the report in Slack")
        written = [p for p in replicas if any("fleet: daily report of" in x for x in p.lines)]
        assert len(written) == 1
        for proc in replicas:
            await _sigterm(proc)
        (report,) = fake.messages("C0ALERTS")  # the other replica's delivery did not repeat it
        assert "vfbot daily report" in str(report.get("text"))


async def test_two_serve_replicas_receiving_one_webhook_record_one_build(tmp_path: Path) -> None:
    """Two `vfbot serve` processes on one PostgreSQL database, polling once a minute: the
    panel's `server.build` webhook reaches the first, and the same delivery the second; the
    build is recorded once, within seconds, and each replica answered at once."""
    token = "process-webhook-token-0123"
    panel = PanelState(timing=BuildTiming(queued_s=0.2, build_s=0.5))
    async with (
        _fresh_postgres_database() as url,
        running_sandbox(panel) as sandbox,
        running_fake_slack(BOT_TOKEN) as fake,
        aiohttp.ClientSession() as http,
    ):
        env = _env(
            tmp_path,
            sandbox,
            DATABASE_URL=url,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=signing.TEST_SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            PORT="0",
            VF_POLL_INTERVAL="60s",
            VF_REQUIRE_APPROVAL="never",
            VIRTFUSION_WEBHOOK_TOKEN=token,
        )
        replicas = [await _start(tmp_path, env, "serve") for _ in range(2)]
        urls = []
        for proc in replicas:
            await proc.until(lambda p=proc: any("listening on" in x for x in p.lines), "start")
            (line,) = [e["message"] for e in proc.entries() if "listening on" in e["message"]]
            assert "POST /virtfusion/webhook" in line
            port = int(line.split("listening on 127.0.0.1:")[1].split(" ")[0])
            urls.append(f"http://127.0.0.1:{port}")
        sandbox.hooks.configure({"url": urls[0] + "/virtfusion/webhook", "token": token})
        db = Database(url)
        await db.start()
        try:
            text = "create " + json.dumps(_request("hooked", 1))
            body, headers = signing.slash_command(
                signing.TEST_SIGNING_SECRET, text=text, response_url=fake.response_url()
            )
            async with http.post(f"{urls[0]}/slack/events", data=body, headers=headers) as r:
                assert r.status == 200  # the engine is kicked at once (the poll is a minute)
            await replicas[0].until(lambda: _builds(panel) == 1, "the build call")
            async with db.uow() as uow:
                (record,) = await uow.requests.list_recent(limit=5)
            request_id = record.id
            await replicas[0].until(
                lambda: any(d.event == "server.build" for d in sandbox.hooks.sent), "the webhook"
            )
            (sent,) = [d for d in sandbox.hooks.sent if d.event == "server.build"]
            again = await sandbox.hooks.send(
                "server.build",
                "success",
                sent.server_id,
                None,
                hook_event_id=sent.hook_event_id,
                url=urls[1] + "/virtfusion/webhook",
            )
            assert (sent.answered, again.answered) == (202, 202)
            deadline = time.monotonic() + 20  # the poll alone would take a minute
            while (await _state(db, request_id))[0].state is not RequestState.COMPLETED:
                assert time.monotonic() < deadline, "\n".join(replicas[0].lines)
                await asyncio.sleep(0.05)
            async with db.uow() as uow:
                kinds = [e.kind for e in await uow.events.list_for_request(request_id)]
            assert kinds.count("instance.built") == 1
            outcomes = []
            for base in urls:
                async with http.get(f"{base}/metrics") as response:
                    found = samples(await response.text())
                for outcome in ("accepted", "duplicate"):
                    labels = {"outcome": outcome, "event": "server.build"}
                    if ("vfbot_webhooks_total", tuple(sorted(labels.items()))) in found:
                        outcomes.append(outcome)
            assert sorted(outcomes) == ["accepted", "duplicate"]
        finally:
            await db.stop()
        for proc in replicas:
            await _sigterm(proc)


async def test_a_worker_follows_the_panels_webhook_at_once(tmp_path: Path) -> None:
    """`vfbot worker --until-idle --metrics-port` with VIRTFUSION_WEBHOOK_TOKEN, polling once a
    minute: the panel's `server.build` webhook has the build recorded, printed and the worker
    done within seconds (without the webhook it would wait for the next poll)."""
    token = "worker-webhook-token-0123"
    panel = PanelState(timing=BuildTiming(queued_s=0.2, build_s=0.5))
    db = Database(f"sqlite:///{tmp_path / 'vfbot.db'}")
    await db.upgrade()
    await db.start()
    with socket.socket() as probe:  # a free port to tell the panel before the worker starts
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with running_sandbox(panel) as sandbox:
        sandbox.hooks.configure(
            {"url": f"http://127.0.0.1:{port}/virtfusion/webhook", "token": token}
        )
        request_id = await _submit(db, sandbox, _request("hooked", 1))
        env = _env(tmp_path, sandbox, VF_POLL_INTERVAL="60s", VIRTFUSION_WEBHOOK_TOKEN=token)
        started = time.monotonic()
        worker = await _start(tmp_path, env, "worker", "--until-idle", "--metrics-port", str(port))
        assert await asyncio.wait_for(worker.process.wait(), timeout=30) == 0
        assert time.monotonic() - started < 30  # the poll alone would take a minute
        assert any("POST /virtfusion/webhook on" in e["message"] for e in worker.entries())
        (sent,) = [d for d in sandbox.hooks.sent if d.event == "server.build"]
        assert sent.answered == 202
        record, states = await _state(db, request_id)
        assert record.state is RequestState.COMPLETED and states == [InstanceState.BUILT]
        _assert_clean(worker)
    await db.stop()
