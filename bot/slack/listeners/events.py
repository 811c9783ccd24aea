"""Events API: de-duplicate Slack's retried deliveries by `event_id`, in the database."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.slack.deps import SlackDeps

__all__ = ["register"]

logger = logging.getLogger("bot.slack.events")


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.middleware
    async def drop_duplicate_events(
        body: dict[str, Any],
        next: Callable[[], Awaitable[None]],  # Bolt's name
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if (
            isinstance(event_id, str)
            and event_id
            and not await deps.service.remember_slack_event(event_id)
        ):
            logger.info("ignoring a repeated delivery of Slack event %s", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None
