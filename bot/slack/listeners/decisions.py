"""Buttons on request messages (Approve, Reject, Retry failed, Clean up) and the reject reason.

A visible button proves nothing: every click is authorized again, and every decision is a
compare-and-set in the database, so the first valid click wins and later ones are told why not.
Slack hears about the decision from the outbox (the notifier), not from here.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import AlreadyDecidedError, UnknownRequestError
from bot.provisioning.model import RequestState
from bot.slack import ids
from bot.slack.blocks.modal import reject_modal
from bot.slack.deps import SlackDeps, deps_of
from bot.slack.listeners.common import acked, allowed, allowed_here, refuse, tell
from bot.slack.listeners.home import publish_home
from bot.slack.listeners.servers import number
from bot.slack.messages import decided_text, panel_error_text, unknown_request_text
from bot.slack.parse import build_metadata, parse_metadata
from bot.virtfusion import VirtFusionError

__all__ = [
    "handle_approve",
    "handle_cleanup",
    "handle_reject",
    "handle_reject_reason",
    "handle_retry",
]

logger = logging.getLogger("bot.slack.decisions")


async def handle_reject(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
) -> None:
    """Reject: ask for an optional reason in a modal (within the trigger's 3 s)."""
    await ack()
    deps = deps_of(context)
    request_id = _request_id(body)
    if request_id is None or not await deps.first_delivery(body):
        return
    if not await _may_click(deps, client, body, respond, request_id, "request.reject"):
        return
    record, _ = await deps.requests.get(request_id)
    if record.state is not RequestState.PENDING_APPROVAL:
        await tell(client, body, await _decided(deps, request_id), respond=respond)
        return
    channel = str((body.get("channel") or {}).get("id") or "")
    metadata = build_metadata(r=str(request_id), c=channel)
    await client.views_open(
        trigger_id=str(body["trigger_id"]),
        view=reject_modal(record.human_id, private_metadata=metadata),
    )


async def handle_reject_reason(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient, context: Any
) -> None:
    """The reject modal was submitted: reject with its reason."""
    await ack()
    deps = deps_of(context)
    deps.background.spawn(_reject(deps, body, view, client), name="reject")


def _request_id(body: dict[str, Any]) -> int | None:
    """The request a button is about; None for a value no button of ours carries."""
    return number(str(body["actions"][0].get("value") or ""))


async def _may_click(
    deps: SlackDeps,
    client: AsyncWebClient,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    request_id: int,
    action: str,
) -> bool:
    """Whether the user who clicked Approve or Reject may decide the request from there; if not,
    they are told why and the refusal is audited."""
    user = str(body["user"]["id"])
    if not await allowed_here(deps, client, body, respond, await deps.actor(user), action):
        return False
    refusal = await _may_decide(deps, request_id, user)
    if refusal is not None:
        await refuse(deps, client, body, respond, (action, f"VF-{request_id}", refusal))
        return False
    return True


async def _may_decide(deps: SlackDeps, request_id: int, user: str) -> str | None:
    """None when `user` may approve or reject the request, else the reason they may not."""
    try:
        record, _ = await deps.requests.get(request_id)
    except UnknownRequestError:
        return unknown_request_text(request_id)
    actor = await deps.actor(user)
    decision = deps.policy.can_approve(user, actor.groups, record.requester)
    return None if decision.allowed else decision.reason


async def _decided(deps: SlackDeps, request_id: int) -> str:
    """Why a decision can no longer be made, naming who made it."""
    try:
        record, _ = await deps.requests.get(request_id)
    except UnknownRequestError:
        return unknown_request_text(request_id)
    return decided_text(record)


async def _approve(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond | None
) -> None:
    user, request_id = str(body["user"]["id"]), _request_id(body)
    if request_id is None:
        return
    if not await _may_click(deps, client, body, respond, request_id, "request.approve"):
        return
    try:
        await deps.requests.approve(request_id, actor=user)
    except (AlreadyDecidedError, UnknownRequestError):
        await tell(client, body, await _decided(deps, request_id), respond=respond)
        return
    deps.kick()
    if (body.get("container") or {}).get("type") == "view" or body.get("view"):
        await publish_home(deps, client, user)  # decided in the App Home tab: show it updated


async def _reject(
    deps: SlackDeps, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
) -> None:
    if not await deps.first_delivery(body):
        return
    user = str(body["user"]["id"])
    try:
        meta = parse_metadata(str(view.get("private_metadata") or ""))
    except ValueError:
        return  # not a dialog of ours
    request_id, channel = number(meta.get("r", "")), meta.get("c", "")
    if request_id is None:
        return
    reason_state = (
        view.get("state", {}).get("values", {}).get(ids.B_REASON, {}).get(ids.B_REASON, {})
    )
    reason = str(reason_state.get("value") or "").strip() or None
    # The dialog answers for where Reject was clicked: a channel, or the Home tab (no channel).
    where = (
        {"user": {"id": user}, "channel": {"id": channel}}
        if channel
        else {"user": {"id": user}, "view": {"type": "home"}}
    )
    if not await allowed_here(deps, client, where, None, await deps.actor(user), "request.reject"):
        return
    refusal = await _may_decide(deps, request_id, user)
    try:
        if refusal is None:
            await deps.requests.reject(request_id, actor=user, reason=reason)
            deps.kick()
            if not channel:  # rejected from the App Home tab: show the updated Home
                await publish_home(deps, client, user)
            return
        text = refusal
        await deps.refused(user, "request.reject", f"VF-{request_id}", refusal)
    except (AlreadyDecidedError, UnknownRequestError):
        text = await _decided(deps, request_id)
    await tell(client, {"user": {"id": user}, "channel": {"id": channel}}, text)


async def _after_failure(
    deps: SlackDeps,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond | None,
    *,
    retry: bool,
) -> None:
    """Retry failed / Clean up: the requester, approvers and admins may; idempotent."""
    user, request_id = str(body["user"]["id"]), _request_id(body)
    if request_id is None:
        return
    action = "request.retry_failed" if retry else "request.cleanup"
    actor = await deps.actor(user)
    if not await allowed_here(deps, client, body, respond, actor, action):
        return
    try:
        record, _ = await deps.requests.get(request_id)
    except UnknownRequestError:
        await tell(client, body, unknown_request_text(request_id), respond=respond)
        return
    decision = deps.policy.can_fix_request(actor, record.requester, record.human_id)
    if not await allowed(deps, client, body, respond, decision, (action, record.human_id)):
        return
    try:
        if retry:
            servers = await deps.requests.retry_failed(request_id, actor=user)
            text = f"Retrying {len(servers)} failed server(s) of {record.human_id}."
        else:
            servers = await deps.requests.cleanup_failed(request_id, actor=user)
            text = (
                f"Cleaned up {len(servers)} failed server(s) of {record.human_id}."
                if servers
                else f"Nothing left to clean up for {record.human_id}."
            )
    except AlreadyDecidedError as error:
        text = str(error)
    except VirtFusionError as error:
        text = f"Nothing was lost; try again. {panel_error_text(error)}"
    deps.kick()
    await tell(client, body, text, respond=respond)


handle_approve = acked("approve", _approve)
handle_retry = acked("retry", partial(_after_failure, retry=True))
handle_cleanup = acked("cleanup", partial(_after_failure, retry=False))
