"""Socket Mode end to end: the real `Runtime` with `SLACK_APP_TOKEN`, connected through Bolt's
`AsyncSocketModeHandler` to the fake Slack's `apps.connections.open` and `/link/` websocket.

Envelopes carry the same payloads as HTTP mode (a slash command's form fields as a JSON object,
an interaction's `payload` object, an Events API `event_callback` body); every wait is bounded
and ends on an observable event (a connection, an ack, a close).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import SlackSetupError
from bot.provisioning.model import InstanceState, RequestState
from bot.slack import ids
from tests.slack import signing
from tests.slack.conftest import APPROVER, BOT_TOKEN, CHANNEL, REQUESTER, SlackHarness, form
from tests.slack.fake_slack import FakeSlack

# -- driving the bot through the socket -----------------------------------------------------------


async def _socket_env(slack_env: Any, **overrides: str) -> SlackHarness:
    h: SlackHarness = await slack_env(socket_mode=True, **overrides)
    await h.slack.socket.wait_for_connections(1)
    return h


def _command_payload(h: SlackHarness, text: str, *, user: str = REQUESTER) -> dict[str, Any]:
    """A slash command as Socket Mode delivers it: the HTTP form fields, as a JSON object."""
    body, _ = signing.slash_command(
        signing.TEST_SIGNING_SECRET,
        text=text,
        user_id=user,
        channel_id=CHANNEL,
        response_url=h.slack.response_url(),
    )
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


async def _deliver(h: SlackHarness, type: str, payload: dict[str, Any], **envelope: Any) -> Any:
    """Push one envelope, wait for its ack and for the work the listener started after ack()."""
    envelope_id = await h.slack.socket.push(type, payload, **envelope)
    ack = await h.slack.socket.wait_for_ack(envelope_id)
    await h.runtime.settle()
    return ack


async def _command(h: SlackHarness, text: str, *, user: str = REQUESTER) -> dict[str, Any]:
    return dict(await _deliver(h, "slash_commands", _command_payload(h, text, user=user)))


async def _submit(h: SlackHarness, values: dict[str, Any]) -> dict[str, Any]:
    payload = signing.view_submission(
        callback_id=ids.CREATE_VIEW,
        values=values,
        view_id=f"V{signing.new_trigger_id()[-8:]}",
        user_id=REQUESTER,
        private_metadata=json.dumps({"c": CHANNEL}),
    )
    return dict(await _deliver(h, "interactive", payload))


async def _click(h: SlackHarness, action_id: str, request_id: int, *, user: str, ts: str) -> None:
    payload = signing.block_actions(
        action_id=action_id,
        value=str(request_id),
        user_id=user,
        message_ts=ts,
        channel_id=CHANNEL,
        trigger_id=signing.new_trigger_id(),
        response_url=h.slack.response_url(),
    )
    assert await _deliver(h, "interactive", payload) == {}


def _texts(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages)


async def _readyz(h: SlackHarness) -> tuple[int, dict[str, Any]]:
    async with h.http.get(f"http://127.0.0.1:{h.runtime.bound_port}/readyz") as response:
        return response.status, await response.json()


# -- the fake's Socket Mode side ---------------------------------------------------------------


async def test_connections_open_takes_only_the_app_token(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()  # HTTP mode: nothing connects
    slack: FakeSlack = h.slack
    with_bot = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as caught:
        await with_bot.apps_connections_open(app_token=BOT_TOKEN)
    assert caught.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as caught:
        await with_bot.apps_connections_open(app_token="xapp-1-wrong")
    assert caught.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as caught:  # an app token is no bot token
        await AsyncWebClient(token=slack.app_token, base_url=slack.api_url).auth_test()
    assert caught.value.response["error"] == "not_allowed_token_type"

    opened = await with_bot.apps_connections_open(app_token=slack.app_token)
    assert str(opened["url"]).startswith(f"ws://127.0.0.1:{slack.port}/link/?ticket=")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await h.http.ws_connect(f"ws://127.0.0.1:{slack.port}/link/?ticket=forged")
    assert refused.value.status == 401 and slack.socket.rejected == ["forged"]
    assert slack.socket.connection_count == 0


# -- the runtime over Socket Mode --------------------------------------------------------------


async def test_the_runtime_connects_once_and_reports_ready(slack_env: Any) -> None:
    h = await _socket_env(slack_env)
    socket = h.slack.socket
    assert socket.connection_count == 1
    opened = h.slack.calls_to("apps.connections.open")
    assert len(opened) == 1
    assert opened[0].headers["Authorization"] == f"Bearer {h.slack.app_token}"
    assert socket.connections[0].sent[0]["type"] == "hello"
    await socket.wait_for_pings(1)  # Bolt pings on connect; the fake pongs
    await h.runtime.ops.readiness.refresh(force=True)
    status, body = await _readyz(h)
    slack = body["checks"]["slack"]
    assert (slack["ok"], slack["detail"]) == (True, "socket mode connected")
    assert status == (200 if body["status"] == "ready" else 503)


async def test_help_is_in_the_ack(slack_env: Any) -> None:
    h = await _socket_env(slack_env)
    ack = await _command(h, "help")
    assert "/vf create" in ack["text"]
    assert h.slack.calls_to("views.open") == []


async def test_create_opens_the_modal(slack_env: Any) -> None:
    h = await _socket_env(slack_env)
    payload = _command_payload(h, "create")
    ack = await _deliver(h, "slash_commands", payload)
    assert ack == {}  # a plain ack: the modal is the answer
    opened = h.slack.calls_to("views.open")
    assert len(opened) == 1 and opened[0].params["trigger_id"] == payload["trigger_id"]
    assert len(h.slack.calls_to("views.update")) == 1  # choices loaded, then filled in


async def test_an_http_post_is_refused_in_socket_mode(slack_env: Any) -> None:
    """Without a signing secret nothing may arrive over HTTP: only the socket is trusted."""
    h = await _socket_env(slack_env)
    body, headers = signing.slash_command("any-secret-at-all", text="create", user_id=REQUESTER)
    status, _ = await h.post(body, headers)
    assert status == 401
    body, headers = signing.slash_command("any-secret-at-all", text="help")
    status, _ = await h.post(body, {"Content-Type": headers["Content-Type"]})  # unsigned
    assert status == 401
    assert h.slack.calls_to("views.open") == []


async def test_create_approve_build_and_thread(slack_env: Any) -> None:
    h = await _socket_env(slack_env)
    await _command(h, "create")
    errors = await _submit(h, form(name="Bad_Name"))
    assert errors["response_action"] == "errors" and ids.B_NAME in errors["errors"]
    assert await _submit(h, form(name="web", count="2")) == {}
    await h.runtime.tick()
    roots = [m for m in h.slack.messages(CHANNEL) if not m.get("thread_ts")]
    assert len(roots) == 1
    root = roots[0]
    (record,) = await h.runtime.core.requests.recent(limit=5)
    assert record.state is RequestState.PENDING_APPROVAL

    await _click(h, ids.APPROVE, record.id, user=APPROVER, ts=root["ts"])
    await h.run_engine(ticks=12)

    (record,) = await h.runtime.core.requests.recent(limit=5)
    assert record.state is RequestState.COMPLETED
    _, instances = await h.runtime.core.requests.get(record.id)
    assert [i.state for i in instances] == [InstanceState.BUILT, InstanceState.BUILT]
    thread = h.slack.thread(CHANNEL, root["ts"])
    joined = _texts(thread)
    assert "Approved by" in joined and "web-1" in joined and "web-2" in joined
    assert sum(1 for m in thread if m.get("reply_broadcast")) == 1
    h.check_limits()


async def test_a_redelivered_event_is_processed_once_and_both_are_acked(slack_env: Any) -> None:
    h = await _socket_env(slack_env)
    seen: list[str] = []

    assert h.runtime.bolt is not None

    @h.runtime.bolt.event("reaction_added")  # an event vfbot does not handle itself
    async def count(body: dict[str, Any]) -> None:
        seen.append(str(body["event_id"]))

    body = signing.event_callback(
        {"type": "reaction_added", "user": REQUESTER, "reaction": "eyes", "event_ts": "1.000100"},
        event_id="Ev0SOCKET01",
    )
    first = await h.slack.socket.push("events_api", body)
    assert await h.slack.socket.wait_for_ack(first) == {}
    again = await h.slack.socket.push("events_api", body, retry_attempt=1, retry_reason="timeout")
    assert await h.slack.socket.wait_for_ack(again) == {}
    await h.runtime.settle()
    assert seen == ["Ev0SOCKET01"]
    # The id is remembered in the database: a third delivery is a repeat, too.
    assert h.runtime.deps is not None
    assert await h.runtime.deps.store.remember_event("Ev0SOCKET01", h.clock()) is False


async def test_a_server_disconnect_makes_the_client_reconnect(slack_env: Any) -> None:
    h = await _socket_env(slack_env)
    socket = h.slack.socket
    await socket.disconnect("refresh_requested")
    await socket.wait_for_connections(2)
    old = socket.connections[0]
    await socket.wait_until(lambda: old.closed, what="the old connection to close")
    assert old.close_code == 1000  # the client closed it itself, before reconnecting
    assert len(h.slack.calls_to("apps.connections.open")) == 2
    ack = await _command(h, "help")  # envelopes now arrive on the new connection
    assert "/vf create" in ack["text"]
    assert socket.connection_count == 2


async def test_stopping_closes_the_websocket_cleanly(slack_env: Any) -> None:
    h = await _socket_env(slack_env)
    await h.runtime.stop()
    await h.slack.socket.wait_all_closed()
    (connection,) = h.slack.socket.connections
    assert connection.close_code == 1000  # a normal closure from the client
    assert h.slack.socket.connection_count == 1  # and no reconnect afterwards


async def test_a_refused_app_token_fails_start_fast_and_cleanly(slack_env: Any) -> None:
    """Bolt alone would retry the connect forever; `start()` says what is wrong instead."""
    with pytest.raises(SlackSetupError, match="invalid_auth"):
        await slack_env(socket_mode=True, SLACK_APP_TOKEN="xapp-1-A0VFBOT-1-revoked")
    probe = await slack_env()  # the failed start released the database and its port
    slack: FakeSlack = probe.slack
    slack.fail_next("apps.connections.open", "missing_scope", needed="connections:write")
    with pytest.raises(SlackSetupError, match="connections:write"):
        await slack_env(socket_mode=True)
    assert slack.socket.connection_count == 0
