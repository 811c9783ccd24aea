"""The HTTP side of the Slack app: `POST /slack/events` (signed), beside the operators' routes
(`/healthz`, `/readyz`, `/metrics`) that the composition root passes in.

Everything that reaches `/slack/events` is untrusted until its signature checks out, so this
module checks it before Bolt sees the request: the body is capped before it is read, a request
that is unsigned, stale or too big is answered 401/413 with one log line that never contains the
body (Slack bodies carry `response_url`, which lets anyone who has it post into the channel), and
a signed body that cannot be decoded is answered 400, never a 500 with a traceback. Bolt checks
the signature again; its own log line for a refusal is silenced in `bot.redact`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Final

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.provisioning.request import RequestLimits
from bot.redact import log_refusal

__all__ = ["MAX_BODY_BYTES", "make_web_app"]

logger = logging.getLogger("bot.slack.web")

# The biggest legitimate body is `/vf create {…}` with a request at the documented 1 MiB limit:
# form-encoding turns each byte into at most three (`%7B`), plus the command's other fields.
MAX_BODY_BYTES: Final = 3 * RequestLimits().max_body_bytes + 64 * 1024

# Bodies up to this size are decoded on the event loop (tens of microseconds); bigger ones in a
# worker thread, where a 1 MiB form takes Bolt 0.1-0.4 s.
_INLINE_BODY_BYTES: Final = 32 * 1024
_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")
_REPLAY_WINDOW_S: Final = 300  # Slack's rule, and slack_sdk's SignatureVerifier's
_SIGNATURE: Final = re.compile(r"v0=[0-9a-f]{64}")
_CHARSET: Final = re.compile(r";\s*charset=\"?([A-Za-z0-9_-]+)\"?", re.IGNORECASE)
_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "application/json"})
# What Bolt raises from parsing a body it cannot read (json.loads, deep nesting, a JSON value
# that is not an object, fields of the wrong type while it builds the context).
_UNREADABLE: Final = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


def _refuse(status: int, reason: str, request: web.Request) -> web.Response:
    """One log line naming the reason and size, never the body or a header value."""
    log_refusal(logger, request.method, request.path, reason, request.content_length)
    return web.json_response({"error": reason}, status=status)


def _signed(secret: bytes, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's `v0` signature over the raw bytes (slack_sdk's verifier decodes them as UTF-8
    first, and raises on any other bytes)."""
    if abs(time.time() - int(timestamp)) > _REPLAY_WINDOW_S:
        return False
    digest = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return hmac.compare_digest("v0=" + digest.hexdigest(), signature)


def _read_body(
    text: str, query: str, headers: dict[str, str | Sequence[str]]
) -> AsyncBoltRequest | None:
    """Bolt's request for a verified body, or None when Bolt cannot parse it (run in a thread:
    a big form body takes Bolt 0.1-0.4 s to decode)."""
    try:
        request = AsyncBoltRequest(body=text, query=query, headers=headers)
    except _UNREADABLE:
        return None
    return request if isinstance(request.body, dict) else None


def make_web_app(
    bolt: AsyncApp,
    routes: Iterable[web.RouteDef] = (),
    *,
    signing_secret: str,
    events_path: str = "/slack/events",
    max_body_bytes: int = MAX_BODY_BYTES,
) -> web.Application:
    """One aiohttp application for both modes (Socket Mode simply receives no POSTs).

    `signing_secret` must be the one Bolt verifies with.
    """
    secret = signing_secret.encode()

    async def slack_events(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
            return _refuse(401, "missing or malformed signature headers", request)
        length = request.content_length
        if length is not None and length > max_body_bytes:
            return _refuse(413, f"body over {max_body_bytes} bytes", request)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refuse(413, f"body over {max_body_bytes} bytes", request)
        if not _signed(secret, body, timestamp, signature):
            return _refuse(401, "bad signature or stale timestamp", request)
        charset = _CHARSET.search(request.headers.get("Content-Type", ""))
        if request.content_type not in _TYPES or (
            charset is not None and charset[1].lower().replace("-", "") != "utf8"
        ):
            return _refuse(400, "content type is not UTF-8 form or JSON", request)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _refuse(400, "body is not UTF-8", request)
        headers: dict[str, str | Sequence[str]] = {
            name: request.headers.getall(name) for name in request.headers
        }
        if len(body) <= _INLINE_BODY_BYTES:  # a thread hop would cost more than decoding it
            bolt_request = _read_body(text, request.query_string, headers)
        else:
            bolt_request = await asyncio.to_thread(_read_body, text, request.query_string, headers)
        if bolt_request is None:
            return _refuse(400, "body is not a Slack payload", request)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post(events_path, slack_events)
    app.router.add_routes(list(routes))
    return app
