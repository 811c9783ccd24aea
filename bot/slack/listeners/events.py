"""Middleware every request passes: hand the deps to the listeners, and drop Slack's retried
deliveries of an event already handled (by `event_id`, in the database, across replicas)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse

from bot.slack.deps import CONTEXT_KEY, SlackDeps, deps_of

__all__ = ["deps_middleware", "drop_duplicate_events"]

logger = logging.getLogger("bot.slack.events")

Next = Callable[[], Awaitable[None]]


def deps_middleware(deps: SlackDeps) -> Callable[..., Awaitable[None]]:
    """A middleware that puts `deps` in every request's context."""

    async def inject(context: Any, next: Next) -> None:  # `next`: Bolt's name
        context[CONTEXT_KEY] = deps
        await next()

    return inject


async def drop_duplicate_events(
    body: dict[str, Any],
    context: Any,
    next: Next,  # `next`: Bolt's name
) -> BoltResponse | None:
    event_id = body.get("event_id") if body.get("type") == "event_callback" else None
    if isinstance(event_id, str) and event_id:
        deps = deps_of(context)
        if not await deps.store.remember_event(event_id, deps.clock()):
            logger.info("ignoring a repeated delivery of Slack event %s", event_id)
            return BoltResponse(status=200, body="")
    await next()
    return None
