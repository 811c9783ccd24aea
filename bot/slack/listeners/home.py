"""The App Home tab: published on `app_home_opened`, on Refresh, and after a decision made there."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import ids
from bot.slack.blocks.home import home_view
from bot.slack.blocks.summary import summarize
from bot.slack.deps import SlackDeps
from bot.slack.listeners.common import actor_of
from bot.store import RequestState

__all__ = ["publish_home", "register"]

logger = logging.getLogger("bot.slack.home")


async def publish_home(deps: SlackDeps, client: AsyncWebClient, user: str) -> None:
    """Build and publish `user`'s Home tab from the current state."""
    actor = await actor_of(deps, user)
    mine = []
    for record in await deps.service.recent(requester=user, limit=10):
        _, instances = await deps.service.get(record.id)
        mine.append(summarize(record, instances))
    pending = []
    operations = []
    if actor.approver:
        for record in await deps.service.by_state([RequestState.PENDING_APPROVAL]):
            if record.requester != user or deps.access.allow_self_approval:
                _, instances = await deps.service.get(record.id)
                pending.append(summarize(record, instances))
        operations = [
            op
            for op in await deps.ops.pending_operations()
            if op.requester != user or deps.access.allow_self_approval
        ]
    servers, _ = await deps.ops.list_managed(
        requester=None if actor.approver else user, limit=10, offset=0
    )
    view = home_view(
        user_id=user,
        my_requests=mine,
        pending_requests=pending,
        pending_operations=operations,
        recent_servers=servers,
        can_approve=actor.approver,
        now=deps.clock(),
    )
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as error:
        logger.warning(
            "could not publish the Home tab of %s: %s", user, error.response.get("error")
        )


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.event("app_home_opened")
    async def handle_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        deps.background.spawn(publish_home(deps, client, str(event["user"])), name="home")

    @app.action(ids.HOME_REFRESH)
    async def handle_refresh(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        deps.background.spawn(publish_home(deps, client, str(body["user"]["id"])), name="home")
