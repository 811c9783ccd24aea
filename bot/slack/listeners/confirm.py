"""Confirmations of day-2 actions, the delete approval buttons, and the list's Next page button.

Everything is checked again at click time. A delete's channel message is posted and rewritten
by the notifier from the outbox; here the clicker only gets their own answer.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import AlreadyDecidedError, ProvisioningError, UnknownRequestError
from bot.provisioning.model import OperationState, parse_human_id
from bot.provisioning.servers import MAX_DELETE_DELAY_MIN
from bot.provisioning.servers.model import ResolvedServer
from bot.slack import ids
from bot.slack.blocks.changes import done_text, power_result_text
from bot.slack.blocks.servers import parse_list_page
from bot.slack.deps import SlackDeps
from bot.slack.listeners.changes import CHANGE_ACTIONS, run_confirmed, run_operation, second_ask
from bot.slack.listeners.common import Reply, acked, allowed, allowed_here, replier
from bot.slack.listeners.servers import cancel_request, may_cancel, number, send_page
from bot.slack.messages import error_text, panel_error_text
from bot.slack.mrkdwn import escape
from bot.slack.parse import parse_metadata
from bot.slack.policy import Actor
from bot.virtfusion import VirtFusionError

__all__ = [
    "handle_confirm",
    "handle_delete_approve",
    "handle_delete_reject",
    "handle_list_page",
    "request_delete",
]

logger = logging.getLogger("bot.slack.confirm")


async def _list_page(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond | None
) -> None:
    try:
        scope, offset = parse_list_page(str(body["actions"][0]["value"]))
    except (ValueError, json.JSONDecodeError):
        return
    actor = await deps.actor(str(body["user"]["id"]))
    if not await allowed_here(deps, client, body, respond, actor, "server.list"):
        return
    reply = replier(client, body, respond)
    try:
        await send_page(deps, reply, actor, scope.lower(), offset)
    except ProvisioningError as error:
        await reply(error_text(error))


async def _confirmed(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, _: AsyncRespond | None
) -> None:
    """A confirmation modal was submitted: check again, then do it."""
    view = body["view"]
    meta = parse_metadata(str(view.get("private_metadata") or ""))
    user, channel = str(body["user"]["id"]), meta.get("c", "")
    action, extra = meta.get("a", ""), meta.get("x", "")
    reply = replier(client, {"user": {"id": user}, "channel": {"id": channel}}, None)
    actor = await deps.actor(user)
    if action == "cancel":
        await _cancel_confirmed(deps, client, body, reply, actor, meta)
        return
    if not await allowed_here(deps, client, body, None, actor, f"server.{action}"):
        return
    delay = _delay(view, extra) if action == "delete" else 0
    if delay is None:
        await reply(
            f"The delay must be a whole number of minutes from 0 to {MAX_DELETE_DELAY_MIN}, "
            "typed with the digits 0-9; nothing was deleted. Run `/vf delete` again."
        )
        return
    try:
        server = await deps.servers.resolver.resolve(meta.get("s", ""))
        requester = server.request.requester if server.request is not None else None
        decision = deps.policy.can_act_on_server(actor, requester, server.label)
        if not decision.allowed:
            await reply(decision.reason)
            await deps.refused(user, f"server.{action}", server.label, decision.reason)
            return
        actions = deps.servers.actions
        if action == "suspend":
            result = await actions.suspend(server, actor=user)
            await reply(done_text("suspend", server.name, server.server_id, result))
        elif action == "power":
            await reply(power_result_text(await actions.power(server, extra, actor=user)))
        elif action == "delete":
            await request_delete(deps, reply, actor, server, delay, channel)
        elif action in CHANGE_ACTIONS:
            await run_confirmed(deps, reply, actor, server, meta)
    except ProvisioningError as error:
        await reply(error_text(error))
    except VirtFusionError as error:
        await reply(panel_error_text(error))


async def _cancel_confirmed(
    deps: SlackDeps,
    client: AsyncWebClient,
    body: dict[str, Any],
    reply: Reply,
    actor: Actor,
    meta: dict[str, str],
) -> None:
    """`/vf cancel VF-n delete` was confirmed: ask the policy again, then cancel."""
    if not await allowed_here(deps, client, body, None, actor, "request.cancel"):
        return
    request_id = parse_human_id(meta.get("r", ""))
    if request_id is None:
        return  # not a dialog of ours
    try:
        record, instances = await deps.requests.get(request_id)
        decision, _ = may_cancel(deps, actor, record, instances, delete=True)
        if not decision.allowed:
            await reply(decision.reason)
            await deps.refused(actor.user, "request.cancel", record.human_id, decision.reason)
            return
        await cancel_request(deps, reply, actor, request_id, delete=True)
    except ProvisioningError as error:
        await reply(error_text(error))


def _delay(view: dict[str, Any], default: str) -> int | None:
    """The delay typed in the confirmation (minutes), else the one from the command; None when
    it is not a whole number (only ASCII digits count: "²".isdigit() is true)."""
    state = view.get("state", {}).get("values", {}).get(ids.B_DELAY, {}).get(ids.B_DELAY, {})
    typed = str(state.get("value") or "").strip()
    return number(typed or default or "0")


async def request_delete(
    deps: SlackDeps,
    reply: Reply,
    actor: Actor,
    server: ResolvedServer,
    delay: int,
    channel: str,
) -> None:
    """The delete of `/vf delete` once confirmed (also the expiry reminder's Delete now): with
    approval when the policy asks for it, then run through the delete path."""
    plan = server.instance.plan if server.instance is not None else None
    required = deps.policy.approval.required(
        servers=1,
        memory_mb=plan.memory_mb if plan else 0,
        disk_gb=plan.disk_gb if plan else 0,
    )
    deletes = deps.servers.deletes
    operation = await deletes.request(
        server,
        requester=actor.user,
        delay_min=delay,
        approval_required=required,
        ttl_s=deps.approval_ttl_s,
        channel=channel,
    )
    deps.kick()  # the notifier posts the approval message (or the create thread's milestone)
    if operation.state is OperationState.PENDING_APPROVAL:
        await reply(
            f"{operation.human_id}: the delete of {escape(server.label)} waits for approval."
        )
        return
    done = await deletes.run(operation.id)
    deps.kick()
    await reply(escape(done.result or f"{server.label}: {done.state.value}"))


async def _decide_operation(
    deps: SlackDeps,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond | None,
    *,
    approve: bool,
) -> None:
    user = str(body["user"]["id"])
    operation_id = number(str(body["actions"][0].get("value") or ""))
    if operation_id is None:  # not a button of ours
        return
    reply = replier(client, body, respond)
    deletes = deps.servers.deletes
    try:
        operation = await deletes.get(operation_id)
    except ProvisioningError as error:
        await reply(error_text(error))
        return
    actor = await deps.actor(user)
    action = "operation.approve" if approve else "operation.reject"
    if not await allowed_here(deps, client, body, respond, actor, action):
        return
    decision = deps.policy.can_approve(user, actor.groups, operation.requester)
    if not await allowed(deps, client, body, respond, decision, (action, operation.human_id)):
        return
    try:
        if approve:
            await deletes.approve(operation_id, actor=user)
            deps.kick()  # the message shows "approved" while the panel is asked
            await run_operation(deps, client, operation)
        else:
            await deletes.reject(operation_id, actor=user)
    except (AlreadyDecidedError, UnknownRequestError) as error:
        await reply(escape(str(error)))
        return
    finally:
        deps.kick()


handle_confirm = acked("confirm", _confirmed, answer=second_ask)
handle_list_page = acked("list page", _list_page)
handle_delete_approve = acked("delete approve", partial(_decide_operation, approve=True))
handle_delete_reject = acked("delete reject", partial(_decide_operation, approve=False))
