"""Small helpers the listeners share: refusals, approval policy, problem lists."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.plan import Plan
from bot.provisioning.request import Problem
from bot.slack.deps import SlackDeps
from bot.slack.mrkdwn import escape, truncate

logger = logging.getLogger("bot.slack")


@dataclass(frozen=True)
class Actor:
    """Who is acting, with the roles the access policy gives them."""

    user: str
    groups: frozenset[str]
    admin: bool
    approver: bool  # may approve (approver, approver-group member or admin)


async def actor_of(deps: SlackDeps, user: str) -> Actor:
    groups = frozenset(await deps.groups_of(user))
    return Actor(
        user=user,
        groups=groups,
        admin=deps.access.is_admin(user),
        approver=deps.access.can_approve(user, groups, requester="").allowed,
    )


async def tell(
    client: AsyncWebClient,
    body: dict[str, Any],
    text: str,
    *,
    respond: AsyncRespond | None = None,
    blocks: list[dict[str, object]] | None = None,
) -> None:
    """Answer only the user who acted: via response_url when there is one, else an ephemeral
    message in the channel, else a direct message (e.g. a click in the App Home tab)."""
    user = str((body.get("user") or {}).get("id") or body.get("user_id") or "")
    channel = str((body.get("channel") or {}).get("id") or body.get("channel_id") or "")
    try:
        if respond is not None and (body.get("response_url") or body.get("response_urls")):
            await respond(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
        elif channel:
            await client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
        elif user:
            await client.chat_postMessage(channel=user, text=text, blocks=blocks)
    except SlackApiError as error:
        logger.info("could not answer %s: %s", user, error.response.get("error"))


__all__ = ["Actor", "actor_of", "approval_required", "problems_text", "refuse", "tell"]


def approval_required(deps: SlackDeps, plan: Plan) -> bool:
    """Whether VF_REQUIRE_APPROVAL asks for an approval of this plan."""
    return deps.approval.required(
        servers=len(plan.servers), memory_mb=plan.total_memory_mb, disk_gb=plan.total_disk_gb
    )


def problems_text(problems: Sequence[Problem], *, limit: int = 2800) -> str:
    """Problems as a mrkdwn list, user text escaped, within one Slack message section."""
    lines = [
        f"• `{escape(p.path)}`: {escape(p.message)}" if p.path else f"• {escape(p.message)}"
        for p in problems
    ]
    return truncate("\n".join(lines), limit)


async def refuse(
    deps: SlackDeps,
    respond: AsyncRespond | None,
    user: str,
    action: str,
    target: str,
    reason: str,
    *,
    client: AsyncWebClient | None = None,
    body: dict[str, Any] | None = None,
) -> None:
    """Tell the user (only them) why not and who may, and audit the refusal."""
    if client is not None and body is not None:
        await tell(client, body, reason, respond=respond)
    elif respond is not None:
        await respond(text=reason, response_type="ephemeral", replace_original=False)
    await deps.service.audit(user, action, target, "refused", {"reason": reason})
