"""The App Home tab: published on `app_home_opened`, on Refresh, and after a decision made there."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.model import RequestState
from bot.slack.blocks.home import HOME_EXPIRING_S, home_view
from bot.slack.blocks.summary import summarize
from bot.slack.deps import SlackDeps, deps_of
from bot.slack.listeners.common import acked

__all__ = ["handle_home_opened", "handle_refresh", "publish_home"]

logger = logging.getLogger("bot.slack.home")


async def publish_home(deps: SlackDeps, client: AsyncWebClient, user: str) -> None:
    """Build and publish `user`'s Home tab from the current state."""
    actor = await deps.actor(user)
    requests = deps.requests
    self_ok = deps.policy.allow_self_approval
    mine = []
    for record in await requests.recent(requester=user, limit=10):
        _, instances = await requests.get(record.id)
        mine.append(summarize(record, instances))
    pending = []
    operations = []
    if actor.approver:
        for record in await requests.by_state([RequestState.PENDING_APPROVAL]):
            if record.requester != user or self_ok:
                _, instances = await requests.get(record.id)
                pending.append(summarize(record, instances))
        operations = [
            op for op in await deps.servers.deletes.pending() if op.requester != user or self_ok
        ]
    servers, _ = await deps.servers.inventory.list_managed(
        requester=None if actor.approver else user, limit=10, offset=0
    )
    expiring = await deps.servers.expiry.expiring(
        within_s=HOME_EXPIRING_S, requester=None if actor.approver else user
    )
    view = home_view(
        user_id=user,
        my_requests=mine,
        pending_requests=pending,
        pending_operations=operations,
        recent_servers=servers,
        can_approve=actor.approver,
        now=deps.clock(),
        expiring=expiring,
    )
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as error:
        logger.warning(
            "could not publish the Home tab of %s: %s", user, error.response.get("error")
        )


async def handle_home_opened(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
    if event.get("tab", "home") != "home":
        return
    deps = deps_of(context)
    deps.background.spawn(publish_home(deps, client, str(event["user"])), name="home")


async def _refresh(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, _: AsyncRespond | None
) -> None:
    await publish_home(deps, client, str(body["user"]["id"]))


handle_refresh = acked("home", _refresh)
