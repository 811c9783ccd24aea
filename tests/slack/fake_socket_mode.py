"""Slack's Socket Mode server side, for the fake Slack: `/link/` websockets, envelopes and acks.

The wire protocol follows Slack's Socket Mode docs and bolt-python's
`tests/adapter_tests/socket_mode/mock_socket_mode_server.py`:

- `apps.connections.open` (app-level `xapp-` token) hands out `ws://…/link/?ticket=…`;
- on connect the server sends `{"type": "hello", …}`;
- the server pushes envelopes `{"envelope_id", "type", "payload", "accepts_response_payload"}`
  (`events_api` also carries `retry_attempt` and `retry_reason`);
- the client acknowledges each with `{"envelope_id": …, "payload": {…}}` (payload optional);
- `{"type": "disconnect", "reason": "refresh_requested"}` asks the client to reconnect.

Waiting helpers are driven by an `asyncio.Condition` notified on every observable change (a
connection, an ack, a close), each bounded by a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["FakeSocketMode", "SocketConnection", "SocketModeError"]

# Interactive payloads whose ack may carry a response (Slack sets accepts_response_payload).
_RESPONDING_INTERACTIONS = ("view_submission", "block_suggestion")


class SocketModeError(AssertionError):
    """A test expectation about the Socket Mode side did not come true in time."""


@dataclass
class SocketConnection:
    """One accepted websocket: what was sent to it and how it ended."""

    number: int
    ticket: str
    ws: web.WebSocketResponse
    sent: list[dict[str, Any]] = field(default_factory=list)
    pings: int = 0
    closed: bool = False
    close_code: int | None = None

    @property
    def open(self) -> bool:
        return not self.closed and not self.ws.closed


class FakeSocketMode:
    """State of the fake's Socket Mode side; `FakeSlack.socket` holds one."""

    def __init__(self, app_id: str, *, url: Callable[[], str]) -> None:
        self._app_id = app_id
        self._url = url  # the fake's http://127.0.0.1:<port>, known once it listens
        self._tickets: set[str] = set()
        self._seq = itertools.count(1)
        self._changed = asyncio.Condition()
        self.connections: list[SocketConnection] = []
        self.acks: list[dict[str, Any]] = []  # every ack message, as the client sent it
        self.rejected: list[str] = []  # tickets refused at /link/
        self.received: list[str] = []  # every text frame that was not an ack

    # -- what apps.connections.open hands out --------------------------------------------------

    def issue_url(self) -> str:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return f"{self._url().replace('http://', 'ws://', 1)}/link/?ticket={ticket}"

    # -- test helpers --------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Websockets accepted so far (reconnects count)."""
        return len(self.connections)

    @property
    def open_connections(self) -> list[SocketConnection]:
        return [c for c in self.connections if c.open]

    async def push(
        self,
        type: str,  # Slack's field name
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> str:
        """Send one envelope on the newest open connection; returns its `envelope_id`."""
        if type not in ("events_api", "slash_commands", "interactive"):
            raise ValueError(f"unknown envelope type {type!r}")
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in _RESPONDING_INTERACTIONS
            )
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        await self._send(envelope)
        return str(envelope["envelope_id"])

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every open connection to reconnect, as Slack does before it drops one."""
        for connection in self.open_connections:
            await self._send_to(
                connection,
                {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": f"applink-fake-{connection.number}"},
                },
            )

    async def close_all(self, code: int = 1001) -> None:
        """Close every open websocket from the server side (1001: going away)."""
        for connection in self.open_connections:
            await connection.ws.close(code=code, message=b"server closing")

    def acks_for(self, envelope_id: str) -> list[dict[str, Any]]:
        return [a for a in self.acks if a.get("envelope_id") == envelope_id]

    async def wait_for_ack(self, envelope_id: str, timeout_s: float = 5) -> dict[str, Any]:
        """The payload of the ack for `envelope_id` (`{}` for a plain ack)."""
        await self._wait(lambda: bool(self.acks_for(envelope_id)), timeout_s, f"ack {envelope_id}")
        payload = self.acks_for(envelope_id)[0].get("payload")
        return dict(payload) if isinstance(payload, dict) else {}

    async def wait_for_connections(self, count: int, timeout_s: float = 5) -> SocketConnection:
        """Wait until `count` websockets were accepted and the newest is open; returns it."""

        def ready() -> bool:
            return self.connection_count >= count and self.connections[-1].open

        await self._wait(ready, timeout_s, f"{count} connection(s)")
        return self.connections[-1]

    async def wait_for_pings(self, count: int = 1, timeout_s: float = 5) -> None:
        """Wait until the newest connection was pinged `count` times (and ponged back)."""

        def pinged() -> bool:
            return bool(self.connections) and self.connections[-1].pings >= count

        await self._wait(pinged, timeout_s, f"{count} ping(s)")

    async def wait_all_closed(self, timeout_s: float = 5) -> None:
        await self._wait(lambda: not self.open_connections, timeout_s, "all connections closed")

    async def wait_until(
        self, done: Callable[[], bool], *, timeout_s: float = 5, what: str = "a condition"
    ) -> None:
        """Wait until `done()` holds; re-checked on every connection, ping, ack and close."""
        await self._wait(done, timeout_s, what)

    # -- the websocket endpoint ----------------------------------------------------------------

    async def handle_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            self.rejected.append(ticket)
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=False)  # pings are answered (and counted) below
        await ws.prepare(request)
        connection = SocketConnection(next(self._seq), ticket, ws)
        self.connections.append(connection)
        await self._send_to(
            connection,
            {
                "type": "hello",
                "num_connections": len(self.open_connections),
                "debug_info": {
                    "host": f"applink-fake-{connection.number}",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self._app_id},
            },
        )
        await self._notify()
        try:
            async for message in ws:
                if message.type == WSMsgType.PING:
                    connection.pings += 1
                    await ws.pong(message.data)
                    await self._notify()
                elif message.type == WSMsgType.TEXT:
                    await self._receive(str(message.data))
        finally:
            connection.closed = True
            connection.close_code = ws.close_code
            await self._notify()
        return ws

    async def _receive(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if isinstance(message, dict) and "envelope_id" in message:
            self.acks.append(message)
        else:
            self.received.append(text)
        await self._notify()

    async def _send(self, message: dict[str, Any]) -> None:
        open_now = self.open_connections
        if not open_now:
            raise SocketModeError("no open Socket Mode connection to push to")
        await self._send_to(open_now[-1], message)

    async def _send_to(self, connection: SocketConnection, message: dict[str, Any]) -> None:
        connection.sent.append(message)
        await connection.ws.send_str(json.dumps(message))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(done)
        except TimeoutError:
            raise SocketModeError(f"timed out after {timeout_s}s waiting for {what}") from None
