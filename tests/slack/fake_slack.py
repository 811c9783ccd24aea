"""A fake Slack Web API on loopback for tests: records calls, answers like Slack, never sleeps.

It speaks the wire protocol `slack_sdk.web.async_client.AsyncWebClient` uses (form, query or JSON
bodies, `Authorization: Bearer`), serves `url_private_download` files (bearer only; otherwise the
HTML login page Slack really returns) and `response_url` endpoints. For Socket Mode it answers
`apps.connections.open` (app-level token only) and serves the `/link/` websocket, driven through
`FakeSlack.socket` (`tests/slack/fake_socket_mode.py`). It holds no business logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.slack.fake_socket_mode import FakeSocketMode

__all__ = [
    "APP_TOKEN",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "FakeSlack",
    "SlackCall",
    "running_fake_slack",
]

TEAM_ID = "T1"
TEAM_NAME = "Test"
TEAM_DOMAIN = "test"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A0VFBOT"
APP_TOKEN = "xapp-1-A0VFBOT-1-0123456789abcdef"  # app-level token (Socket Mode)
# The one method an app-level token may call here; bot tokens may not call it.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

_TS_BASE = 1_700_000_000
# Fields Slack accepts as JSON text inside form bodies; parsed so tests always see objects.
_JSON_FIELDS = ("blocks", "view", "attachments", "metadata")
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
_MAX_PRIVATE_METADATA = 3000
_MAX_TITLE = 24

# What files.slack.com serves to a request without a valid token (bolt-js#2585).
_LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><meta charset="utf-8">'
    "<title>Slack</title></head><body><h1>Sign in to Test</h1>"
    '<form action="/signin" method="post"><input type="email" name="email">'
    '<button type="submit">Sign in with Email</button></form></body></html>'
)

Params = dict[str, Any]
Answer = dict[str, Any]


@dataclass(frozen=True)
class SlackCall:
    """One Web API request: `params` is the query merged with the form or JSON body."""

    method: str
    params: Params
    headers: Mapping[str, str]
    at: float


@dataclass
class _Fault:
    kind: str  # "error" | "ratelimit" | "server"
    times: int
    error: str = ""
    status: int = 200
    retry_after_s: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class _Reply(Exception):
    """Raised inside a method handler to answer `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, **extra: object) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _need(params: Params, name: str, error: str | None = None) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise _Reply(error or "invalid_arguments", response_metadata={"messages": [name]})
    return value


def _flag(value: object) -> bool:
    """Slack booleans arrive as JSON `true`, or as "1"/"true" in forms and queries."""
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


class FakeSlack:
    """State and recordings of one fake workspace; the HTTP side lives in `running_fake_slack`.

    `reset()` forgets recorded calls, responses, downloads and pending faults but keeps
    messages, views, files and DM channels.
    """

    def __init__(
        self,
        bot_token: str,
        *,
        members: dict[str, set[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        app_token: str = APP_TOKEN,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.members: dict[str, set[str]] = members if members is not None else {}
        self.bot_channels: set[str] | None = None
        self.expire_triggers = False
        self.latency_s: dict[str, float] = {}  # method -> how long Slack takes to answer it
        self.users: dict[str, dict[str, Any]] = {}
        self.channel_names: dict[str, str] = {}
        self.url = ""
        self.api_url = ""
        self.port = 0
        self.calls: list[SlackCall] = []
        self.responses: list[dict[str, Any]] = []
        self.downloads: list[SlackCall] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self._clock = clock
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._file_content: dict[str, bytes] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, list[dict[str, Any]]] = {}
        self._dms: dict[str, str] = {}
        self._seq = itertools.count(1)
        self.socket = FakeSocketMode(APP_ID, url=lambda: self.url)
        self._methods: dict[str, Callable[[Params], Answer]] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "files.info": self._files_info,
        }

    def __repr__(self) -> str:
        return f"FakeSlack(url={self.url!r}, calls={len(self.calls)})"

    # -- test helpers ----------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        """Recorded calls of one Web API method, oldest first."""
        return [call for call in self.calls if call.method == method]

    def reset(self) -> None:
        """Forget recordings and pending faults (workspace state stays)."""
        self.calls.clear()
        self.responses.clear()
        self.downloads.clear()
        self.ephemerals.clear()
        self._faults.clear()
        for posts in self._response_urls.values():
            posts.clear()

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every message in `channel` (thread replies included), in post order.

        The dicts are live: `chat.update` edits them in place, `chat.delete` removes them.
        """
        return list(self._messages.get(self._resolve_channel(channel), []))

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The stored message `ts` in `channel`, if any."""
        for message in self._messages.get(self._resolve_channel(channel), []):
            if message["ts"] == ts:
                return message
        return None

    def seed_message(self, channel: str, ts: str, text: str = "") -> None:
        """A bot message posted before this fake started (by an older vfbot, say); later
        messages get later timestamps."""
        self._messages.setdefault(channel, []).append(
            {"type": "message", "user": BOT_USER_ID, "channel": channel, "ts": ts, "text": text}
        )
        seconds, _, micros = ts.partition(".")
        seen = ((int(seconds) - _TS_BASE) * 1_000_000 + int(micros)) // 100
        self._seq = itertools.count(max(next(self._seq), seen + 1))

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies to the parent message `ts`, without the parent."""
        return [
            message
            for message in self.messages(channel)
            if message.get("thread_ts") == ts and message["ts"] != ts
        ]

    def dm_channel(self, user_id: str) -> str:
        """The DM channel id `conversations.open` returns for `user_id` (stable per user)."""
        return self._dms.setdefault(user_id, f"D{user_id}")

    def fail_next(
        self, method: str, error: str = "ratelimited", times: int = 1, **extra: object
    ) -> None:
        """Answer the next `times` calls of `method` with HTTP 200 `{"ok": false, "error": ...}`.

        `extra` is merged into the body, e.g. `needed="files:read"` for `missing_scope`.
        """
        self._add_fault(method, _Fault("error", times, error=error, extra=dict(extra)))

    def rate_limit_next(self, method: str, retry_after_s: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls with HTTP 429, `Retry-After` and `ratelimited`."""
        self._add_fault(method, _Fault("ratelimit", times, retry_after_s=retry_after_s))

    def server_error_next(
        self, method: str, status: int = 503, times: int = 1, error: str | None = None
    ) -> None:
        """Answer the next `times` calls with HTTP `status` (5xx) and a JSON error body."""
        default = "internal_error" if status == 500 else "service_unavailable"
        self._add_fault(method, _Fault("server", times, error=error or default, status=status))

    def add_file(
        self,
        name: str,
        content: bytes,
        mimetype: str = "application/json",
        filetype: str = "json",
        *,
        user: str = "U_REQ",
    ) -> dict[str, Any]:
        """Store a file and return its Slack file object (as `files.info` and `file_input`
        give it); `url_private_download` is served by this fake."""
        file_id = f"F{next(self._seq):06d}"
        base = f"{self.url}/files-pri/{TEAM_ID}-{file_id}"
        created = _TS_BASE + len(self.files)
        obj: dict[str, Any] = {
            "id": file_id,
            "created": created,
            "timestamp": created,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": TEAM_ID,
            "editable": False,
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{base}/{name}",
            "url_private_download": f"{base}/download/{name}",
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{user}/{file_id}/{name}",
        }
        self.files[file_id] = obj
        self._file_content[file_id] = content
        return dict(obj)

    def response_url(self) -> str:
        """A fresh `response_url` served by this fake; posts land in `responses`."""
        path = f"/commands/{next(self._seq)}"
        self._response_urls[path] = []
        return self.url + path

    def responses_to(self, url: str) -> list[dict[str, Any]]:
        """Bodies posted to one `response_url`."""
        return list(self._response_urls.get(url.removeprefix(self.url), []))

    # -- dispatch --------------------------------------------------------------------------------

    def _add_fault(self, method: str, fault: _Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        self._faults.setdefault(method, []).append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times == 0:
            queue.pop(0)
        return fault

    def _authorized(self, headers: Mapping[str, str], method: str = "") -> str | None:
        """None when the bearer token is right for `method`, else Slack's error code.

        `apps.connections.open` takes only the app-level token; every other method only the bot
        token. The wrong kind of valid token is `not_allowed_token_type`, as on Slack.
        """
        value = headers.get("Authorization", "")
        if not value:
            return "not_authed"
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token not in (self.bot_token, self.app_token):
            return "invalid_auth"
        wanted = self.app_token if method in _APP_TOKEN_METHODS else self.bot_token
        if token != wanted:
            return "not_allowed_token_type"
        return None

    async def handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        headers = CIMultiDict(request.headers)
        self.calls.append(SlackCall(method, params, headers, self._clock()))
        if self.latency_s.get(method):
            await asyncio.sleep(self.latency_s[method])  # a slow Slack, for crash tests

        if method not in self._methods:
            return web.json_response({"ok": False, "error": "unknown_method"})
        auth_error = self._authorized(headers, method)
        if auth_error is not None:
            return web.json_response({"ok": False, "error": auth_error})
        fault = self._take_fault(method)
        if fault is not None:
            return _fault_response(fault)
        try:
            answer = self._methods[method](params)
        except _Reply as reply:
            return web.json_response({"ok": False, "error": reply.error, **reply.extra})
        return web.json_response({"ok": True, **answer})

    async def handle_file(self, request: web.Request) -> web.Response:
        headers = CIMultiDict(request.headers)
        self.downloads.append(SlackCall("files-pri", dict(request.query), headers, self._clock()))
        team_file = request.match_info["team_file"]
        file_id = team_file.removeprefix(f"{TEAM_ID}-")
        if self._authorized(headers) is not None:
            # Slack answers 200 with its sign-in page, not 401/403 (bolt-js#2585).
            return web.Response(text=_LOGIN_PAGE, content_type="text/html", charset="utf-8")
        obj = self.files.get(file_id)
        if obj is None or request.match_info["name"] != obj["name"]:
            return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")
        return web.Response(body=self._file_content[file_id], content_type=obj["mimetype"])

    async def handle_response_url(self, request: web.Request) -> web.Response:
        posts = self._response_urls.get(request.path)
        if posts is None:
            return web.Response(status=404, text="expired_url")
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        posts.append(body)
        self.responses.append(body)
        return web.json_response({"ok": True})

    # -- ids -------------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        micros = next(self._seq) * 100
        return f"{_TS_BASE + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _resolve_channel(self, channel: str) -> str:
        """Posting to a user id lands in the app's DM with that user, as on Slack."""
        if channel[:1] in ("U", "W"):
            return self.dm_channel(channel)
        return channel

    # -- methods ---------------------------------------------------------------------------------

    def _apps_connections_open(self, params: Params) -> Answer:
        return {"url": self.socket.issue_url()}

    def _auth_test(self, params: Params) -> Answer:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": "vfbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _check_postable(self, channel: str) -> None:
        if channel.startswith("D"):
            return
        if self.bot_channels is not None and channel not in self.bot_channels:
            raise _Reply("not_in_channel")

    def _chat_post_message(self, params: Params) -> Answer:
        channel = self._resolve_channel(str(_need(params, "channel", "channel_not_found")))
        self._check_postable(channel)
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks and not params.get("attachments"):
            raise _Reply("no_text")
        _check_blocks(blocks, _MAX_MESSAGE_BLOCKS)
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "channel": channel,
            "ts": ts,
            "thread_ts": params.get("thread_ts"),
            "text": text or "",
            "blocks": blocks or [],
            "attachments": params.get("attachments"),
            "metadata": params.get("metadata"),
            "reply_broadcast": _flag(params.get("reply_broadcast", False)),
        }
        self._messages.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": ts, "message": _public_message(message)}

    def _chat_update(self, params: Params) -> Answer:
        channel = self._resolve_channel(str(_need(params, "channel", "channel_not_found")))
        ts = str(_need(params, "ts", "message_not_found"))
        message = self.message(channel, ts)
        if message is None:
            raise _Reply("message_not_found")
        blocks = params.get("blocks")
        _check_blocks(blocks, _MAX_MESSAGE_BLOCKS)
        # Slack keeps fields the update leaves out; `blocks: []` clears them.
        for name in ("text", "blocks", "attachments", "metadata"):
            if name in params:
                message[name] = params[name]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": _public_message(message),
        }

    def _chat_post_ephemeral(self, params: Params) -> Answer:
        channel = self._resolve_channel(str(_need(params, "channel", "channel_not_found")))
        user = str(_need(params, "user", "user_not_found"))
        self._check_postable(channel)
        if not params.get("text") and not params.get("blocks"):
            raise _Reply("no_text")
        _check_blocks(params.get("blocks"), _MAX_MESSAGE_BLOCKS)
        message_ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "message_ts": message_ts,
                "thread_ts": params.get("thread_ts"),
                "text": params.get("text", ""),
                "blocks": params.get("blocks") or [],
            }
        )
        return {"message_ts": message_ts}

    def _chat_delete(self, params: Params) -> Answer:
        channel = self._resolve_channel(str(_need(params, "channel", "channel_not_found")))
        ts = str(_need(params, "ts", "message_not_found"))
        message = self.message(channel, ts)
        if message is None:
            raise _Reply("message_not_found")
        self._messages[channel].remove(message)
        return {"channel": channel, "ts": ts}

    def _use_trigger(self, params: Params) -> None:
        trigger_id = str(_need(params, "trigger_id", "invalid_trigger_id"))
        if self.expire_triggers:
            raise _Reply("expired_trigger_id")
        if trigger_id in self._used_triggers:
            raise _Reply("exchanged_trigger_id")
        self._used_triggers.add(trigger_id)

    def _new_view(self, view: dict[str, Any], *, view_id: str | None = None) -> dict[str, Any]:
        view_id = view_id or f"V{next(self._seq):06d}"
        stored: dict[str, Any] = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{_TS_BASE}.{next(self._seq):08d}",
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": view.get("clear_on_close", False),
            "notify_on_close": view.get("notify_on_close", False),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        self.views[view_id] = stored
        return stored

    def _views_open(self, params: Params) -> Answer:
        self._use_trigger(params)
        view = _check_view(params, "modal")
        return {"view": self._new_view(view)}

    def _views_push(self, params: Params) -> Answer:
        self._use_trigger(params)
        view = _check_view(params, "modal")
        return {"view": self._new_view(view)}

    def _views_update(self, params: Params) -> Answer:
        view = _check_view(params, "modal")
        view_id = params.get("view_id")
        if not view_id and params.get("external_id"):
            view_id = next(
                (v["id"] for v in self.views.values() if v["external_id"] == params["external_id"]),
                None,
            )
        current = self.views.get(str(view_id)) if view_id else None
        if current is None:
            raise _Reply("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise _Reply("hash_conflict")
        updated = self._new_view(view, view_id=current["id"])
        updated["root_view_id"] = current["root_view_id"]
        updated["previous_view_id"] = current["previous_view_id"]
        return {"view": updated}

    def _views_publish(self, params: Params) -> Answer:
        user_id = str(_need(params, "user_id", "invalid_arguments"))
        view = _check_view(params, "home")
        current = self.home_views.get(user_id)
        if current is not None and params.get("hash") and params["hash"] != current["hash"]:
            raise _Reply("hash_conflict")
        published = self._new_view(view, view_id=current["id"] if current else None)
        self.home_views[user_id] = published
        return {"view": published}

    def _usergroups_users_list(self, params: Params) -> Answer:
        group = str(_need(params, "usergroup", "no_such_subteam"))
        if group not in self.members:
            raise _Reply("no_such_subteam")
        return {"users": sorted(self.members[group])}

    def _users_info(self, params: Params) -> Answer:
        user_id = str(_need(params, "user", "user_not_found"))
        if user_id in self.users:
            return {"user": self.users[user_id]}
        if user_id[:1] not in ("U", "W"):
            raise _Reply("user_not_found")
        name = user_id.lower()
        return {
            "user": {
                "id": user_id,
                "team_id": TEAM_ID,
                "name": name,
                "deleted": False,
                "real_name": name,
                "tz": "Etc/UTC",
                "tz_offset": 0,
                "is_admin": False,
                "is_bot": user_id == BOT_USER_ID,
                "is_app_user": False,
                "profile": {"real_name": name, "display_name": name, "team": TEAM_ID},
            }
        }

    def _conversations_open(self, params: Params) -> Answer:
        users = [u for u in str(params.get("users", "")).split(",") if u]
        if params.get("channel"):
            return {"channel": {"id": params["channel"]}, "no_op": True, "already_open": True}
        if not users:
            raise _Reply("users_list_not_supplied")
        if len(users) > 1:
            raise _Reply("method_not_supported_for_channel_type")
        already = users[0] in self._dms
        return {
            "channel": {"id": self.dm_channel(users[0])},
            "no_op": already,
            "already_open": already,
        }

    def _conversations_info(self, params: Params) -> Answer:
        channel = str(_need(params, "channel", "channel_not_found"))
        if channel.startswith("D"):
            user = next((u for u, d in self._dms.items() if d == channel), None)
            if user is None:
                raise _Reply("channel_not_found")
            return {"channel": {"id": channel, "is_im": True, "user": user, "is_open": True}}
        if channel[:1] not in ("C", "G"):
            raise _Reply("channel_not_found")
        return {
            "channel": {
                "id": channel,
                "name": self.channel_names.get(channel, channel.lower()),
                "is_channel": channel.startswith("C"),
                "is_group": channel.startswith("G"),
                "is_private": channel.startswith("G"),
                "is_im": False,
                "is_archived": False,
                "is_member": self.bot_channels is None or channel in self.bot_channels,
            }
        }

    def _files_info(self, params: Params) -> Answer:
        file_id = str(_need(params, "file", "file_not_found"))
        obj = self.files.get(file_id)
        if obj is None:
            raise _Reply("file_not_found")
        return {"file": dict(obj), "comments": [], "response_metadata": {"next_cursor": ""}}


def _public_message(message: dict[str, Any]) -> dict[str, Any]:
    """The `message` object Slack echoes: no `channel`, no empty optional fields."""
    return {
        k: v
        for k, v in message.items()
        if k != "channel" and v is not None and not (k == "reply_broadcast" and v is False)
    }


def _check_blocks(blocks: object, limit: int) -> None:
    if blocks is None:
        return
    if (
        not isinstance(blocks, list)
        or len(blocks) > limit
        or not all(isinstance(b, dict) and b.get("type") for b in blocks)
    ):
        raise _Reply("invalid_blocks")


def _check_view(params: Params, view_type: str) -> dict[str, Any]:
    view = params.get("view")
    if not isinstance(view, dict) or view.get("type") != view_type:
        raise _Reply("invalid_arguments", response_metadata={"messages": ["view.type"]})
    problems: list[str] = []
    blocks = view.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > _MAX_VIEW_BLOCKS:
        problems.append("[ERROR] must be no more than 100 items [json-pointer:/view/blocks]")
    if len(str(view.get("private_metadata", ""))) > _MAX_PRIVATE_METADATA:
        problems.append(
            "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]"
        )
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    title = view.get("title")
    if view_type == "modal" and (not isinstance(title, dict) or not title.get("text")):
        problems.append("[ERROR] missing required field: title [json-pointer:/view]")
    elif isinstance(title, dict) and len(str(title.get("text", ""))) > _MAX_TITLE:
        problems.append("[ERROR] must be less than 25 characters [json-pointer:/view/title/text]")
    if problems:
        raise _Reply("invalid_arguments", response_metadata={"messages": problems})
    return view


def _fault_response(fault: _Fault) -> web.Response:
    if fault.kind == "ratelimit":
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(fault.retry_after_s)},
        )
    return web.json_response(
        {"ok": False, "error": fault.error, **fault.extra}, status=fault.status
    )


async def _read_params(request: web.Request) -> Params:
    """Query merged with the body, whichever encoding slack_sdk chose for the method."""
    params: Params = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for name in _JSON_FIELDS:
        value = params.get(name)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            # Left as the raw string when broken; the method answers invalid_blocks/arguments.
            with contextlib.suppress(ValueError):
                params[name] = json.loads(value)
    return params


def _create_app(slack: FakeSlack) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/api/{method}", slack.handle_api)
    app.router.add_get("/files-pri/{team_file}/download/{name}", slack.handle_file)
    app.router.add_get("/files-pri/{team_file}/{name}", slack.handle_file)
    app.router.add_post("/commands/{n}", slack.handle_response_url)
    app.router.add_get("/link/", slack.socket.handle_link)
    return app


@asynccontextmanager
async def running_fake_slack(
    bot_token: str = "xoxb-test-token",
    *,
    members: dict[str, set[str]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    app_token: str = APP_TOKEN,
) -> AsyncIterator[FakeSlack]:
    """Serve a fake Slack on 127.0.0.1 (ephemeral port) for the block.

    `members` maps user-group ids ("S…") to user ids for `usergroups.users.list`; `clock`
    stamps `SlackCall.at`; `app_token` is the `xapp-` token `apps.connections.open` accepts.
    """
    slack = FakeSlack(bot_token, members=members, clock=clock, app_token=app_token)
    runner = web.AppRunner(_create_app(slack), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        slack.port = int(runner.addresses[0][1])
        slack.url = f"http://127.0.0.1:{slack.port}"
        slack.api_url = f"{slack.url}/api/"
        yield slack
    finally:
        await slack.socket.close_all()  # websocket handlers end before the server goes
        await runner.cleanup()
