"""Buttons on request messages: Approve, Reject, Retry failed, Clean up.

A visible button proves nothing: every click is authorized again, and every decision is a
compare-and-set in the database, so the first valid click wins and later ones are told why not.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import AlreadyDecidedError, UnknownRequestError
from bot.slack import ids
from bot.slack.blocks.modal import reject_modal
from bot.slack.deps import SlackDeps
from bot.slack.listeners.common import refuse, tell
from bot.slack.listeners.home import publish_home
from bot.slack.mrkdwn import mention
from bot.slack.parse import build_metadata
from bot.store import RequestState
from bot.virtfusion import VirtFusionError

__all__ = ["already_decided_text", "authorize_decision", "register"]

logger = logging.getLogger("bot.slack.decisions")


async def authorize_decision(deps: SlackDeps, request_id: int, user: str) -> str | None:
    """None when `user` may approve or reject the request, else the reason they may not."""
    record, _ = await deps.service.get(request_id)
    groups = await deps.groups_of(user)
    decision = deps.access.can_approve(user, groups, record.requester)
    return None if decision.allowed else decision.reason


async def already_decided_text(deps: SlackDeps, request_id: int) -> str:
    """Why a decision can no longer be made, naming who made it."""
    try:
        record, _ = await deps.service.get(request_id)
    except UnknownRequestError:
        return f"Request VF-{request_id} does not exist any more."
    who = mention(record.decided_by) if record.decided_by else "someone"
    if record.state is RequestState.REJECTED:
        return f"{record.human_id} was already rejected by {who}."
    if record.state is RequestState.EXPIRED:
        return f"{record.human_id} expired before anyone approved it; nothing was created."
    if record.state is RequestState.CANCELLED:
        return f"{record.human_id} was cancelled."
    if record.decided_by:
        return f"{record.human_id} was already approved by {who}."
    return f"{record.human_id} does not need a decision any more."


def _request_id(body: dict[str, Any]) -> int:
    return int(str(body["actions"][0]["value"]))


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.action(ids.APPROVE)
    async def handle_approve(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        deps.background.spawn(_approve(deps, body, client, respond), name="approve")

    @app.action(ids.REJECT)
    async def handle_reject(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user, request_id = str(body["user"]["id"]), _request_id(body)
        refusal = await authorize_decision(deps, request_id, user)
        if refusal is not None:
            await refuse(
                deps, respond, user, "request.reject", f"VF-{request_id}", refusal,
                client=client, body=body,
            )  # fmt: skip
            return
        channel = str((body.get("channel") or {}).get("id") or "")
        record, _ = await deps.service.get(request_id)
        if record.state is not RequestState.PENDING_APPROVAL:
            text = await already_decided_text(deps, request_id)
            await tell(client, body, text, respond=respond)
            return
        await client.views_open(
            trigger_id=str(body["trigger_id"]),
            view=reject_modal(
                record.human_id, private_metadata=build_metadata(r=str(request_id), c=channel)
            ),
        )

    @app.action(ids.RETRY_FAILED)
    async def handle_retry(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        work = _after_failure(deps, body, client, respond, retry=True)
        deps.background.spawn(work, name="retry")

    @app.action(ids.CLEANUP)
    async def handle_cleanup(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        work = _after_failure(deps, body, client, respond, retry=False)
        deps.background.spawn(work, name="cleanup")


async def _approve(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
) -> None:
    user, request_id = str(body["user"]["id"]), _request_id(body)
    refusal = await authorize_decision(deps, request_id, user)
    if refusal is not None:
        await refuse(
            deps, respond, user, "request.approve", f"VF-{request_id}", refusal,
            client=client, body=body,
        )  # fmt: skip
        return
    try:
        await deps.service.approve(request_id, actor=user)
    except (AlreadyDecidedError, UnknownRequestError):
        await tell(client, body, await already_decided_text(deps, request_id), respond=respond)
        return
    deps.kick()
    await _refresh_home(deps, client, body)


async def _refresh_home(deps: SlackDeps, client: AsyncWebClient, body: dict[str, Any]) -> None:
    """A decision made in the App Home tab: show the clicker their updated Home."""
    if (body.get("container") or {}).get("type") == "view" or body.get("view"):
        await publish_home(deps, client, str(body["user"]["id"]))


async def _after_failure(
    deps: SlackDeps,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond,
    *,
    retry: bool,
) -> None:
    """Retry failed / Clean up: the requester, approvers and admins may; idempotent."""
    user, request_id = str(body["user"]["id"]), _request_id(body)
    action = "request.retry_failed" if retry else "request.cleanup"
    record, _ = await deps.service.get(request_id)
    groups = await deps.groups_of(user)
    allowed = user == record.requester or deps.access.can_approve(user, groups, "").allowed
    if not allowed:
        reason = (
            f"Only {mention(record.requester)}, the approvers or an admin can do that for "
            f"{record.human_id}."
        )
        await refuse(deps, respond, user, action, record.human_id, reason, client=client, body=body)
        return
    try:
        if retry:
            servers = await deps.service.retry_failed(request_id, actor=user)
            text = f"Retrying {len(servers)} failed server(s) of {record.human_id}."
        else:
            servers = await deps.service.cleanup_failed(request_id, actor=user)
            text = (
                f"Cleaned up {len(servers)} failed server(s) of {record.human_id}."
                if servers
                else f"Nothing left to clean up for {record.human_id}."
            )
    except AlreadyDecidedError as error:
        text = str(error)
    except VirtFusionError as error:
        text = f"The panel did not complete that ({error}). Nothing was lost; try again."
    deps.kick()
    await tell(client, body, text, respond=respond)
