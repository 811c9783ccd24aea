"""Slack's request bodies (commands, interactions, events) signed like Slack signs them; no I/O.

Each request function returns `(body, headers)` ready to POST to `/slack/events` or to wrap in an
`AsyncBoltRequest`. Payload shapes follow Slack's documented formats and bolt-python's scenario
tests (`tests/scenario_tests_async/test_{slash_command,block_actions,view_submission}.py`).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

__all__ = [
    "API_APP_ID",
    "TEAM_ID",
    "TEST_SIGNING_SECRET",
    "app_home_opened_event",
    "block_actions",
    "bolt_request",
    "checkboxes",
    "event",
    "event_callback",
    "file_input",
    "interaction",
    "new_trigger_id",
    "now_timestamp",
    "number_input",
    "plain_text_input",
    "radio_buttons",
    "sign",
    "slash_command",
    "stale_timestamp",
    "static_select",
    "url_verification",
    "view_closed",
    "view_submission",
    "with_bad_signature",
]

TEST_SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T1"
TEAM_DOMAIN = "test"
API_APP_ID = "A0VFBOT"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
VERIFICATION_TOKEN = "legacy-verification-token"  # deprecated field Slack still sends
DEFAULT_RESPONSE_URL = "https://hooks.slack.com/commands/T1/1000000000001/abcdefABCDEF0123"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
REPLAY_WINDOW_S = 300  # SignatureVerifier rejects |now - timestamp| > 5 minutes

_ids = itertools.count(1)

Headers = dict[str, str]
Payload = dict[str, Any]


def now_timestamp() -> int:
    """The current Unix time, as Slack puts it in `X-Slack-Request-Timestamp`."""
    return int(time.time())


def stale_timestamp() -> int:
    """Six minutes ago: outside the 5-minute replay window, so verification fails."""
    return now_timestamp() - REPLAY_WINDOW_S - 60


def new_trigger_id() -> str:
    """A unique trigger id in Slack's `<digits>.<digits>.<hex>` shape."""
    n = next(_ids)
    return f"1700000000{n:03d}.1234567890.{n:032x}"


def sign(
    secret: str,
    body: bytes,
    *,
    content_type: str,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
) -> Headers:
    """The headers Slack sends with `body`: content type, timestamp and `v0=` signature."""
    ts = str(now_timestamp() if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    if signature is None:  # only for a None timestamp, which `ts` never is
        raise ValueError("no signature")
    headers = {
        "Content-Type": content_type,
        "User-Agent": SLACK_USER_AGENT,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def with_bad_signature(headers: Headers) -> Headers:
    """A copy of `headers` whose signature no secret produced (Bolt answers 401)."""
    return {**headers, "X-Slack-Signature": "v0=" + "0" * 64}


def bolt_request(body: bytes, headers: Headers) -> AsyncBoltRequest:
    """Wrap a signed request for `AsyncApp.async_dispatch`."""
    return AsyncBoltRequest(body=body.decode("utf-8"), headers=dict(headers))


# -- slash commands --------------------------------------------------------------------------


def slash_command(
    secret: str,
    *,
    text: str,
    user_id: str = "U_REQ",
    channel_id: str = "C_OPS",
    command: str = "/vf",
    trigger_id: str | None = None,
    response_url: str = DEFAULT_RESPONSE_URL,
    team_id: str = TEAM_ID,
    timestamp: int | None = None,
    user_name: str | None = None,
    channel_name: str = "ops",
) -> tuple[bytes, Headers]:
    """A signed slash command, form-encoded with every field Slack sends, in Slack's order."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    body = urlencode(fields).encode()
    return body, sign(secret, body, content_type=FORM, timestamp=timestamp)


# -- interactions ----------------------------------------------------------------------------


def interaction(
    secret: str, payload: Payload, timestamp: int | None = None
) -> tuple[bytes, Headers]:
    """A signed interaction: form body `payload=<urlencoded JSON>`."""
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    return body, sign(secret, body, content_type=FORM, timestamp=timestamp)


def _user(user_id: str, team_id: str) -> Payload:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _team(team_id: str) -> Payload:
    return {"id": team_id, "domain": TEAM_DOMAIN}


def block_actions(
    *,
    action_id: str,
    value: str,
    user_id: str,
    message_ts: str,
    channel_id: str = "C_OPS",
    trigger_id: str | None = None,
    response_url: str = DEFAULT_RESPONSE_URL,
    block_id: str = "vf_actions",
    message_text: str = "",
    message_blocks: list[Payload] | None = None,
    thread_ts: str | None = None,
    button_text: str = "Button",
    team_id: str = TEAM_ID,
    action_ts: str | None = None,
) -> Payload:
    """A `block_actions` payload for a button click on a bot message in a channel."""
    container: Payload = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": False,
    }
    message: Payload = {
        "type": "message",
        "subtype": "bot_message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": API_APP_ID,
        "team": team_id,
        "ts": message_ts,
        "text": message_text,
        "blocks": message_blocks if message_blocks is not None else [],
    }
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
        message["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "ops"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": action_ts or f"{now_timestamp()}.000001",
            }
        ],
    }


def _view(
    *,
    view_id: str,
    callback_id: str,
    values: Payload,
    private_metadata: str,
    hash: str,
    team_id: str,
    blocks: list[Payload] | None,
    title: str,
    notify_on_close: bool,
) -> Payload:
    return {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": blocks if blocks is not None else [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": values},
        "hash": hash,
        "title": {"type": "plain_text", "text": title, "emoji": True},
        "clear_on_close": False,
        "notify_on_close": notify_on_close,
        "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
        "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": API_APP_ID,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
    }


def view_submission(
    *,
    callback_id: str,
    values: Payload,
    view_id: str = "V0001",
    user_id: str = "U_REQ",
    private_metadata: str = "",
    hash: str = "1700000000.abcdef12",
    team_id: str = TEAM_ID,
    blocks: list[Payload] | None = None,
    title: str = "Create servers",
    trigger_id: str | None = None,
) -> Payload:
    """A `view_submission` payload; `values` is `state.values` ({block_id: {action_id: {...}}})."""
    return {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": _view(
            view_id=view_id,
            callback_id=callback_id,
            values=values,
            private_metadata=private_metadata,
            hash=hash,
            team_id=team_id,
            blocks=blocks,
            title=title,
            notify_on_close=False,
        ),
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(
    *,
    callback_id: str,
    view_id: str = "V0001",
    user_id: str = "U_REQ",
    private_metadata: str = "",
    values: Payload | None = None,
    hash: str = "1700000000.abcdef12",
    team_id: str = TEAM_ID,
    is_cleared: bool = False,
) -> Payload:
    """A `view_closed` payload (sent only for views opened with `notify_on_close: true`)."""
    return {
        "type": "view_closed",
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "view": _view(
            view_id=view_id,
            callback_id=callback_id,
            values=values or {},
            private_metadata=private_metadata,
            hash=hash,
            team_id=team_id,
            blocks=None,
            title="Create servers",
            notify_on_close=True,
        ),
        "is_cleared": is_cleared,
        "is_enterprise_install": False,
        "enterprise": None,
    }


# -- state.values entries (one per action_id) ------------------------------------------------


def plain_text_input(value: str | None) -> Payload:
    """A `plain_text_input` state value (`None` when left empty)."""
    return {"type": "plain_text_input", "value": value}


def number_input(value: str | None) -> Payload:
    """A `number_input` state value; Slack sends the number as a string."""
    return {"type": "number_input", "value": value}


def _option(value: str, text: str | None) -> Payload:
    return {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}


def static_select(value: str | None, text: str | None = None) -> Payload:
    """A `static_select` state value (`selected_option` is None when nothing is picked)."""
    selected = None if value is None else _option(value, text)
    return {"type": "static_select", "selected_option": selected}


def radio_buttons(value: str | None, text: str | None = None) -> Payload:
    """A `radio_buttons` state value."""
    selected = None if value is None else _option(value, text)
    return {"type": "radio_buttons", "selected_option": selected}


def checkboxes(values: list[str]) -> Payload:
    """A `checkboxes` state value."""
    return {"type": "checkboxes", "selected_options": [_option(v, None) for v in values]}


def file_input(files: list[Payload]) -> Payload:
    """A `file_input` state value; `files` are Slack file objects (e.g. `FakeSlack.add_file`)."""
    return {"type": "file_input", "files": files}


# -- events ----------------------------------------------------------------------------------


def event(
    secret: str,
    body: Payload,
    *,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timestamp: int | None = None,
) -> tuple[bytes, Headers]:
    """A signed Events API delivery (JSON), optionally marked as Slack's retry `retry_num`."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = sign(
        secret,
        raw,
        content_type=JSON,
        timestamp=timestamp,
        retry_num=retry_num,
        retry_reason=retry_reason,
    )
    return raw, headers


def event_callback(
    inner: Payload, *, event_id: str, team_id: str = TEAM_ID, event_time: int | None = None
) -> Payload:
    """The `event_callback` envelope around one event."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": API_APP_ID,
        "event": inner,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time if event_time is not None else now_timestamp(),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


def app_home_opened_event(
    *,
    user_id: str,
    event_id: str,
    tab: str = "home",
    team_id: str = TEAM_ID,
    channel_id: str | None = None,
    view: Payload | None = None,
) -> Payload:
    """An `app_home_opened` delivery; `view` is the previously published home view, if any."""
    inner: Payload = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel_id or f"D{user_id}",
        "tab": tab,
        "event_ts": f"{now_timestamp()}.000100",
    }
    if view is not None:
        inner["view"] = view
    return event_callback(inner, event_id=event_id, team_id=team_id)


def url_verification(
    challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
) -> Payload:
    """The handshake Slack sends when a Request URL is saved."""
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
