"""End-to-end harness: the real `Runtime` in HTTP mode on loopback, the sandbox panel and a fake
Slack Web API, driven with correctly signed requests in Slack's own payload formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.app import Runtime
from bot.config import load_settings
from bot.provisioning.model import RequestRecord
from bot.redact import BODY_LOGGERS, quiet_libraries
from bot.sandbox import BuildTiming, FakeClock, PanelState, SandboxServer, running_sandbox
from bot.slack import ids
from bot.virtfusion import AiohttpVirtFusionClient, RetryPolicy
from tests.databases import new_sqlite_file
from tests.slack import signing
from tests.slack.blockkit import check_blocks, check_view
from tests.slack.fake_slack import FakeSlack, running_fake_slack

BOT_TOKEN = "xoxb-test-token-0123456789"
REQUESTER = "U0REQUESTER"
APPROVER = "U0APPROVER"
APPROVER2 = "U0APPROVER2"
ADMIN = "U0ADMIN"
CHANNEL = "C0OPS"

FAST_RETRY = RetryPolicy(
    max_attempts=3, deadline_s=5, backoff_base_s=0.001, backoff_max_s=0.005, locked_wait_s=0.001
)


@dataclass
class SlackHarness:
    """Drive the bot as Slack and a user would; inspect what it said and did."""

    runtime: Runtime
    slack: FakeSlack
    sandbox: SandboxServer
    clock: FakeClock
    http: aiohttp.ClientSession
    logs: list[logging.LogRecord] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.bound_port}/slack/events"

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST to /slack/events and wait for the work the listener started after ack()."""
        data = io.BytesIO(body) if len(body) > 1_000_000 else body  # aiohttp warns on big bytes
        async with self.http.post(self.url, data=data, headers=headers) as response:
            text = await response.text()
            status = response.status
        await self.runtime.settle()
        return status, text

    async def command(self, text: str, *, user: str = REQUESTER, channel: str = CHANNEL) -> str:
        """Run `/vf <text>`; returns the trigger id used."""
        trigger = signing.new_trigger_id()
        body, headers = signing.slash_command(
            signing.TEST_SIGNING_SECRET,
            text=text,
            user_id=user,
            channel_id=channel,
            trigger_id=trigger,
            response_url=self.slack.response_url(),
        )
        status, _ = await self.post(body, headers)
        assert status == 200
        return trigger

    async def submit(
        self,
        values: dict[str, Any],
        *,
        user: str = REQUESTER,
        view_id: str | None = None,
        channel: str = CHANNEL,
        callback_id: str = ids.CREATE_VIEW,
        metadata: str | None = None,
    ) -> dict[str, Any]:
        """Submit a modal; returns the JSON Slack would get back (empty dict for a plain ack)."""
        payload = signing.view_submission(
            callback_id=callback_id,
            values=values,
            view_id=view_id or f"V{signing.new_trigger_id()[-8:]}",
            user_id=user,
            private_metadata=metadata if metadata is not None else json.dumps({"c": channel}),
        )
        body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
        status, text = await self.post(body, headers)
        assert status == 200, text
        return json.loads(text) if text.strip() else {}

    async def click(
        self,
        action_id: str,
        request: RequestRecord | int,
        *,
        user: str,
        message_ts: str | None = None,
    ) -> None:
        request_id = request if isinstance(request, int) else request.id
        payload = signing.block_actions(
            action_id=action_id,
            value=str(request_id),
            user_id=user,
            message_ts=message_ts or "1700000000.000100",
            channel_id=CHANNEL,
            trigger_id=signing.new_trigger_id(),
            response_url=self.slack.response_url(),
        )
        body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
        status, _ = await self.post(body, headers)
        assert status == 200

    async def run_engine(self, *, ticks: int = 30, step_s: float = 2.0) -> None:
        """Tick the engine and the notifier, advancing the shared clock."""
        for _ in range(ticks):
            await self.runtime.tick()
            self.clock.advance(step_s)

    def ephemeral_texts(self) -> list[str]:
        """Everything said only to one user (response_url posts and chat.postEphemeral)."""
        texts = [str(r.get("text", "")) for r in self.slack.responses]
        texts += [str(c.params.get("text", "")) for c in self.slack.calls_to("chat.postEphemeral")]
        return texts

    def check_limits(self) -> None:
        """Every message and view the bot sent stays within Block Kit limits."""
        for call in self.slack.calls:
            params = call.params
            if call.method in ("chat.postMessage", "chat.update") and params.get("blocks"):
                check_blocks(params["blocks"], surface="message")
            if call.method in ("views.open", "views.update", "views.push", "views.publish"):
                check_view(params["view"])


def form(
    *,
    name: str = "web",
    count: str = "1",
    group: str = "1",
    template: str = "1",
    memory: str | None = None,
    ssh_key: str | None = "default",
    profile: str | None = None,
    project: str = "shop",
) -> dict[str, Any]:
    """`view.state.values` of a filled create modal."""
    values: dict[str, Any] = {
        ids.B_PROJECT: {ids.B_PROJECT: signing.plain_text_input(project)},
        ids.B_NAME: {ids.B_NAME: signing.plain_text_input(name)},
        ids.B_COUNT: {ids.B_COUNT: signing.number_input(count)},
        ids.B_GROUP: {ids.B_GROUP: signing.static_select(group)},
        ids.B_TEMPLATE: {ids.B_TEMPLATE: signing.static_select(template)},
        ids.B_MEMORY: {ids.B_MEMORY: signing.number_input(memory)},
        ids.B_DISK: {ids.B_DISK: signing.number_input(None)},
        ids.B_CPU: {ids.B_CPU: signing.number_input(None)},
        ids.B_SSH_KEY: {ids.B_SSH_KEY: signing.static_select(ssh_key)},
        ids.B_PROFILE: {ids.B_PROFILE: signing.number_input(profile)},
        ids.B_PUBLIC_IP: {ids.B_PUBLIC_IP: signing.radio_buttons(None)},
        ids.B_BANDWIDTH: {ids.B_BANDWIDTH: signing.number_input(None)},
        ids.B_VOLUME_SIZE: {ids.B_VOLUME_SIZE: signing.number_input(None)},
        ids.B_VOLUME_MOUNT: {ids.B_VOLUME_MOUNT: signing.plain_text_input(None)},
        ids.B_FILE: {ids.B_FILE: signing.file_input([])},
    }
    return values


class _Collect(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(level=logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


MakeHarness = Callable[..., Any]


@pytest.fixture
async def slack_env(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """A factory: `await make(**settings_overrides)` -> SlackHarness (one per test)."""
    clock = FakeClock()
    panel = PanelState(clock=clock, timing=BuildTiming(queued_s=2, build_s=6))
    started: list[Runtime] = []
    logs: list[logging.LogRecord] = []
    handler = _Collect(logs)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in BODY_LOGGERS}
    quiet_libraries()  # as configure_logging does in production
    database = tmp_path / "slack.db"  # a test may put a file there before its first `make()`
    async with (
        running_sandbox(panel) as sandbox,
        running_fake_slack(
            BOT_TOKEN, members={"S0APPROVERS": {APPROVER2}, "S0OPS": {REQUESTER, APPROVER}}
        ) as slack,
        aiohttp.ClientSession() as http,
    ):

        async def _advance(seconds: float) -> None:
            """The operations service waits (423, queue tasks) on the fake clock."""
            clock.advance(seconds)

        async def make(
            restart_of: SlackHarness | None = None, *, socket_mode: bool = False, **overrides: str
        ) -> SlackHarness:
            """`socket_mode=True`: SLACK_APP_TOKEN instead of a signing secret (Socket Mode)."""
            env = {
                "VIRTFUSION_HOST": sandbox.url,
                "VIRTFUSION_API_TOKEN": panel.token,
                "VIRTFUSION_USER_ID": "1",
                "VIRTFUSION_PACKAGE_ID": "1",
                "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
                "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": signing.TEST_SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "VF_APPROVERS": APPROVER,
                "VF_APPROVER_GROUPS": "S0APPROVERS",
                "VF_ADMINS": ADMIN,
                "VF_REQUIRE_APPROVAL": "always",
                "VF_APPROVAL_TTL": "1h",
                "VF_CREATE_GRACE": "30s",
                **overrides,
            }
            if socket_mode:
                if "SLACK_SIGNING_SECRET" not in overrides:
                    del env["SLACK_SIGNING_SECRET"]
                env.setdefault("SLACK_APP_TOKEN", slack.app_token)
            settings = load_settings(env, env_file=None)
            if not database.exists():  # what `vfbot db upgrade` makes, without the wait
                new_sqlite_file(database)
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
                sleep=_advance,
            )
            await runtime.start()
            started.append(runtime)
            return SlackHarness(runtime, slack, sandbox, clock, http, logs)

        try:
            yield make
        finally:
            for runtime in started:
                if runtime.bound_port is not None:
                    await runtime.stop()
            root.removeHandler(handler)
            root.setLevel(old_level)
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
