"""How long Slack waited for its acknowledgement: a Bolt middleware that times `ack()` per
listener, for whatever records it (the composition root passes the metrics' observer).

Slack gives up after 3 seconds, so this is the latency that users feel first. It is measured from
the moment Bolt hands the request to the middleware (signature checked, body parsed) to the
listener's `ack()`. Labels stay bounded: a `/vf` subcommand name from the registry, or a known
action or view id; anything else is "other".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_bolt.response import BoltResponse

from bot.slack import commands, ids
from bot.slack.parse import split_command

__all__ = ["AckObserver", "ack_label", "ack_timer"]

AckObserver = Callable[[str, str, float], None]
"""Told once per acknowledged request: kind (command, action, view), name, seconds."""

Next = Callable[[], Awaitable[None]]

_KNOWN_IDS = frozenset(
    value for name, value in vars(ids).items() if name.isupper() and isinstance(value, str)
)


def ack_label(body: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of a Slack request that a listener acknowledges; None for events, which
    Bolt acknowledges itself."""
    if "command" in body:
        word, _ = split_command(str(body.get("text") or ""))
        name = word if commands.find(word) is not None or word == "help" else "other"
        return "command", name
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        return "action", _known(str(actions[0].get("action_id", "")))
    if kind in ("view_submission", "view_closed"):
        view = body.get("view") or {}
        return "view", _known(str(view.get("callback_id", "")))
    if kind in ("shortcut", "message_action", "block_suggestion"):
        return str(kind), "other"
    return None


def _known(identifier: str) -> str:
    return identifier if identifier in _KNOWN_IDS else "other"


class _TimedAck(AsyncAck):
    """Bolt's `ack` that reports, the first time it is called, how long it took to be called."""

    def __init__(
        self, observe: AckObserver, label: tuple[str, str], monotonic: Callable[[], float]
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # untyped in Bolt
        self._observe = observe
        self._label = label
        self._monotonic = monotonic
        self._started = monotonic()

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        if self.response is None:
            kind, name = self._label
            self._observe(kind, name, self._monotonic() - self._started)
        response: BoltResponse = await super().__call__(*args, **kwargs)
        return response


def ack_timer(
    observe: AckObserver, *, monotonic: Callable[[], float] = time.monotonic
) -> Callable[..., Awaitable[None]]:
    """A Bolt middleware (register it first) that times each listener's `ack()`."""

    async def middleware(body: dict[str, Any], context: Any, next: Next) -> None:  # Bolt's name
        label = ack_label(body)
        if label is not None:
            context["ack"] = _TimedAck(observe, label, monotonic)
        await next()

    return middleware
