"""VirtFusion webhooks: `POST /virtfusion/webhook`, a hint that something changed on the panel.

A delivery is never the truth. It only says *when* to look: the receiver checks the bearer
token, answers at once, and in the background records the delivery's `hookEventId` (so a
repeat, or the same delivery reaching another replica, does nothing) and hands the hint on
(`Runtime` reads the named server from the panel and follows it through the engine's tracking,
or tracks every building server). No state is ever read from the payload.

What the panel sends (docs.virtfusion.com/guides/webhooks, docs/operations.md#virtfusion-webhooks):
`Authorization: Bearer <base64 of the configured token>` (the panel base64-encodes the token on
every request), `X-VirtFusion-Hook-Event: <delivery id>`, `X-VirtFusion-Event: <event name>`, and
a JSON body with `event`, `hookEventId` and `data` (for server events, `data.server` is the
server object or false). Anything else about the body is UNKNOWN, so it is read defensively.

Refusals are one log line each, naming the reason and never a header value or the body:
no or wrong token 401 (no body), body over 64 KiB 413, endpoint off (`VIRTFUSION_WEBHOOK_TOKEN`
unset) 404.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from aiohttp import web

from bot.provisioning.ports import DatabaseUnavailableError
from bot.redact import log_refusal
from bot.virtfusion import VirtFusionError

__all__ = [
    "KNOWN_EVENTS",
    "MAX_BODY_BYTES",
    "RETENTION",
    "SERVER_EVENTS",
    "WEBHOOK_PATH",
    "Hint",
    "HookStore",
    "WebhookReceiver",
    "authorization_header",
    "parse_hint",
]

logger = logging.getLogger("bot.webhook")

WEBHOOK_PATH: Final = "/virtfusion/webhook"
MAX_BODY_BYTES: Final = 64 * 1024
RETENTION: Final = timedelta(days=1)
"""How long a handled delivery's id is remembered (a repeat after that is one more hint)."""

# The docs' event table (readable rows) and the events seen in third-party receivers. A server
# event names one server; anything else only says "something changed".
SERVER_EVENTS: Final = frozenset(
    {
        "server.create",
        "server.destroy",
        "server.build",
        "server.assign.ipv6",
        "server.delete",
        "server.boot",
        "server.suspend",
    }
)
KNOWN_EVENTS: Final = SERVER_EVENTS | {"catch.all", "user.create"}

# Deliveries handled at once; beyond this a hint is dropped (the next tick still sees it all).
_MAX_IN_FLIGHT: Final = 64
_MAX_ID_CHARS: Final = 200  # the column's width


class HookStore(Protocol):
    """The deliveries already handled, shared by every replica (`webhook_events`)."""

    async def remember_hook(self, hook_event_id: str, now: datetime) -> bool:
        """Record a delivery id; True the first time, False for a repeat."""
        ...

    async def forget_hooks(self, before: datetime) -> int:
        """Forget ids recorded before `before`; returns how many were forgotten."""
        ...


@dataclass(frozen=True)
class Hint:
    """What a delivery names, and nothing more: its id (None when it carries none), its event
    name ("" when unreadable) and the server id of a server event (None when there is none)."""

    hook_event_id: str | None
    event: str
    server_id: int | None

    @property
    def known(self) -> bool:
        return self.event in KNOWN_EVENTS


def authorization_header(token: str) -> str:
    """The `Authorization` value the panel sends for `token`: the token base64-encoded."""
    return "Bearer " + base64.b64encode(token.encode()).decode("ascii")


def _text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text[:_MAX_ID_CHARS] if text else None


def _server_id(data: object) -> int | None:
    """`data.server.id` when it is a positive integer (the server object, or false)."""
    server = data.get("server") if isinstance(data, dict) else None
    value = server.get("id") if isinstance(server, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def parse_hint(body: bytes, headers: Mapping[str, str]) -> Hint:
    """Read a delivery's id, event and server id; an unreadable body reads as an unnamed hint
    (the headers still name the delivery and the event)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        payload = {}
    hook_event_id = _text(payload.get("hookEventId")) or _text(
        headers.get("X-VirtFusion-Hook-Event")
    )
    event = (_text(payload.get("event")) or _text(headers.get("X-VirtFusion-Event")) or "").lower()
    server_id = _server_id(payload.get("data")) if event in SERVER_EVENTS else None
    return Hint(hook_event_id, event, server_id)


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The whole body, or None as soon as it passes `cap` bytes (chunked bodies say no size)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


Observe = Callable[[str, str], None]
"""Told of each delivery: (outcome, event label)."""


def _ignore(outcome: str, event: str) -> None:
    del outcome, event


class WebhookReceiver:
    """The route, and the background work it starts (`stop` cancels and awaits it)."""

    def __init__(
        self,
        token: str | None,
        store: HookStore,
        follow: Callable[[Hint], Awaitable[None]],
        *,
        clock: Callable[[], datetime],
        observe: Observe = _ignore,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._expected = authorization_header(token).encode() if token else None
        self._store = store
        self._follow = follow
        self._clock = clock
        self._observe = observe
        self._max_body_bytes = max_body_bytes
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    @property
    def in_flight(self) -> int:
        """Deliveries answered whose work is still running."""
        return len(self._tasks)

    def routes(self) -> list[web.RouteDef]:
        """`POST /virtfusion/webhook` (404 while no token is configured)."""
        return [web.post(WEBHOOK_PATH, self.handle)]

    def _refuse(self, status: int, outcome: str, reason: str, request: web.Request) -> web.Response:
        """An empty answer and one log line naming the reason and size, never the body or a
        header value (the token travels in one)."""
        log_refusal(logger, request.method, request.path, reason, request.content_length)
        self._observe(outcome, "")
        return web.Response(status=status)

    def _authorized(self, request: web.Request) -> bool:
        if self._expected is None:
            return False
        try:
            given = request.headers.get("Authorization", "").encode("latin-1")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(given, self._expected)

    async def handle(self, request: web.Request) -> web.Response:
        if self._expected is None:
            return web.Response(status=404)
        if not self._authorized(request):
            return self._refuse(401, "unauthorized", "missing or wrong bearer token", request)
        too_big = f"body over {self._max_body_bytes} bytes"
        length = request.content_length
        if length is not None and length > self._max_body_bytes:
            return self._refuse(413, "too_large", too_big, request)
        body = await _read_capped(request, self._max_body_bytes)
        if body is None:
            return self._refuse(413, "too_large", too_big, request)
        hint = parse_hint(body, request.headers)
        if self._stopping:
            return web.Response(status=503)
        if len(self._tasks) >= _MAX_IN_FLIGHT:
            logger.warning("webhook dropped: %d deliveries in flight already", len(self._tasks))
            self._observe("dropped", self._label(hint))
            return web.json_response({"status": "busy"}, status=202)
        task = asyncio.create_task(self._handle(hint), name="vfbot-webhook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"status": "accepted"}, status=202)

    @staticmethod
    def _label(hint: Hint) -> str:
        return hint.event if hint.known else "unknown"

    async def _handle(self, hint: Hint) -> None:
        """The background half: skip a repeat, then hand the hint on. A failure is logged; the
        next tick covers whatever the hint was about."""
        label = self._label(hint)
        try:
            if hint.hook_event_id is not None and not await self._store.remember_hook(
                hint.hook_event_id, self._clock()
            ):
                self._observe("duplicate", label)
                logger.debug("webhook %s: already handled", hint.hook_event_id)
                return
            self._observe("accepted", label)
            if not hint.known:
                logger.debug("webhook of unknown event %r: tracking every build now", hint.event)
            await self._follow(hint)
        except (DatabaseUnavailableError, VirtFusionError) as error:  # an outage: no traceback
            logger.warning("webhook %s (%s) not followed now: %s", hint.hook_event_id, label, error)
        # The edge of a background task: log it once; polling covers the hint.
        except Exception:
            logger.exception("webhook %s (%s) could not be followed", hint.hook_event_id, label)

    async def idle(self) -> None:
        """Wait for the deliveries in flight (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def forget(self) -> int:
        """Forget delivery ids older than `RETENTION` (housekeeping)."""
        if self._expected is None:
            return 0
        return await self._store.forget_hooks(self._clock() - RETENTION)

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Accept no more deliveries; give those in flight `timeout_s`, then cancel them."""
        self._stopping = True
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
