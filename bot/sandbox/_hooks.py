"""The sandbox's webhooks: what VirtFusion POSTs to a configured URL when something happens
(docs.virtfusion.com/guides/webhooks), so tests and benchmarks reach vfbot by the real path.

Headers as the docs list them: `Authorization: Bearer <base64 of the token>` (only with a
token), `X-VirtFusion-Hook` (the webhook id), `X-VirtFusion-Created` (ISO 8601 Zulu),
`X-VirtFusion-Hook-Event` (this delivery's id), `X-VirtFusion-Event` (the event name),
`X-VirtFusion-Event-Status`, `User-Agent: VirtFusion-Hookshot/...`, `Content-Type` and `Accept`
`application/json`. The body has the docs' minimum fields: `event`, `created`, `hookId`,
`hookEventId`, `eventStatus`, `controlDomain`, `controlName`, `controlSupportLink` and
`data{errors: [], server: <the server object as GET /servers/{id} renders it>}`.

What the docs leave UNKNOWN, the sandbox chooses and says so: delivery ids are integers from a
random base (a panel's are likely database ids); one delivery per event, no retries; events
sent are `server.create` (success), `server.build` (success or fail, when the build's time is
up) and `server.destroy` (success, when a server disappears).

Build progress is derived from the clock, so events are found by `flush()`: a background loop
calls it every `every_s` of real time (`every_s=None`: only when a test calls it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox import _render as render
from bot.sandbox._models import COMPLETE
from bot.sandbox._state import PanelState

__all__ = ["HOOKS_KEY", "Delivery", "WebhookSender", "admin_routes"]

logger = logging.getLogger("bot.sandbox.hooks")

_USER_AGENT = "VirtFusion-Hookshot/sandbox"


@dataclass(frozen=True)
class Delivery:
    """One webhook sent: its id, event, server, the HTTP status it got (0: no answer) and when
    it was sent (epoch seconds, real time)."""

    hook_event_id: int
    event: str
    server_id: int | None
    answered: int
    sent_at: float


@dataclass
class WebhookSender:
    """Sends the panel's webhooks for what happens in `state` to `url` (None: off)."""

    state: PanelState
    url: str | None = None
    token: str | None = None
    every_s: float | None = 0.05
    hook_id: int = 1
    timeout_s: float = 5.0
    sent: list[Delivery] = field(default_factory=list)
    _next_id: int = field(default_factory=lambda: 10**6 + secrets.randbelow(10**9))
    _known: set[int] = field(default_factory=set)
    _announced: set[tuple[int, object]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None
    _loop: asyncio.Task[None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def configure(self, values: dict[str, Any]) -> None:
        """Change `url`, `token` or `every_s` (the admin endpoint's JSON); ValueError on a bad
        field. What already happened is not sent when a URL is first set."""
        for name, value in values.items():
            if name in ("url", "token"):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{name} must be a string or null")
            elif name == "every_s":
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
                ):
                    raise ValueError("every_s must be a number above zero, or null")
            else:
                raise ValueError(f"unknown webhook field {name!r}")
            setattr(self, name, value)
        self._catch_up()

    def to_json(self) -> dict[str, object]:
        return {"url": self.url, "token": self.token is not None, "every_s": self.every_s}

    def _catch_up(self) -> None:
        """Remember what exists now, so only what happens from here is sent."""
        for _ in self.due():
            pass

    def due(self) -> list[tuple[str, str, int, dict[str, Any] | None]]:
        """The events that happened since the last call: (event, status, server id, server
        object or None); each is returned once."""
        now = self.state.now()
        found: list[tuple[str, str, int, dict[str, Any] | None]] = []
        current = {sid for sid, s in self.state.servers.items() if not s.gone(now)}
        for server_id in sorted(current - self._known):
            server = self.state.servers[server_id]
            found.append(
                ("server.create", "success", server_id, render.server_json(self.state, server))
            )
        for server_id in sorted(self._known - current):
            found.append(("server.destroy", "success", server_id, None))
        self._known = current
        for server_id in sorted(current):
            server = self.state.servers[server_id]
            build = server.build
            if build is None or (server_id, build.requested_at) in self._announced:
                continue
            if server.failed(now) or server.commission_status(now) == COMPLETE:
                self._announced.add((server_id, build.requested_at))
                status = "fail" if server.failed(now) else "success"
                found.append(
                    ("server.build", status, server_id, render.server_json(self.state, server))
                )
        return found

    async def flush(self) -> list[Delivery]:
        """Send every event that happened since the last flush (nothing while `url` is None)."""
        async with self._lock:
            if self.url is None:
                return []
            events = self.due()
            return [await self.send(*event) for event in events]

    def body(
        self, event: str, status: str, server: dict[str, Any] | None, hook_event_id: int
    ) -> dict[str, Any]:
        """The JSON body the panel sends (the docs' minimum fields)."""
        return {
            "event": event,
            "created": _zulu(self.state),
            "hookId": self.hook_id,
            "hookEventId": hook_event_id,
            "eventStatus": status,
            "controlDomain": "sandbox.invalid",
            "controlName": "vfbot sandbox",
            "controlSupportLink": "https://sandbox.invalid/support",
            "data": {"errors": [], "server": server if server is not None else False},
        }

    async def send(
        self,
        event: str,
        status: str,
        server_id: int | None,
        server: dict[str, Any] | None,
        *,
        hook_event_id: int | None = None,
        url: str | None = None,
    ) -> Delivery:
        """POST one delivery as the panel would, to `url` or the configured URL (tests also
        send made-up ones: a `server` object that says something the panel does not, or an id
        already sent)."""
        url = url or self.url
        if hook_event_id is None:
            hook_event_id = self._next_id
            self._next_id += 1
        payload = self.body(event, status, server, hook_event_id)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
            "X-VirtFusion-Hook": str(self.hook_id),
            "X-VirtFusion-Created": payload["created"],
            "X-VirtFusion-Hook-Event": str(hook_event_id),
            "X-VirtFusion-Event": event,
            "X-VirtFusion-Event-Status": status,
        }
        if self.token is not None:
            encoded = base64.b64encode(self.token.encode()).decode("ascii")
            headers["Authorization"] = f"Bearer {encoded}"
        answered = 0
        sent_at = time.time()
        if url is not None:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            try:
                async with self._session.post(
                    url,
                    data=json.dumps(payload),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                ) as response:
                    answered = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                logger.warning("webhook %s to %s failed: %s", event, url, error)
        delivery = Delivery(hook_event_id, event, server_id, answered, sent_at)
        self.sent.append(delivery)
        return delivery

    async def start(self) -> None:
        """Start the background loop (when `every_s` is set)."""
        self._catch_up()
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="sandbox-webhooks")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s or 0.05)
            if self.every_s is not None:
                await self.flush()

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._session is not None:
            await self._session.close()
            self._session = None


def _zulu(state: PanelState) -> str:
    return state.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


HOOKS_KEY = web.AppKey("vfbot_sandbox_hooks", WebhookSender)


async def _admin_webhook(request: web.Request) -> web.Response:
    """`GET|POST /_sandbox/webhook`: where webhooks go (`{"url", "token", "every_s"}`)."""
    sender = request.app[HOOKS_KEY]
    if request.method == "POST":
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object of webhook fields")
            sender.configure(body)
        except ValueError as exc:
            return web.json_response({"errors": [str(exc)]}, status=400)
    return web.json_response(sender.to_json())


def admin_routes(prefix: str) -> list[web.RouteDef]:
    return [
        web.get(prefix + "/webhook", _admin_webhook),
        web.post(prefix + "/webhook", _admin_webhook),
    ]
