"""Server lifetimes: `/vf extend`, `/vf expiring`, and the expiry reminder's Extend, Delete now
and Keep; every click is checked again (the requester, approvers or admins; Keep only admins).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.durations import parse_lifetime
from bot.provisioning.errors import ProvisioningError
from bot.provisioning.model import InstanceRecord, RequestRecord, parse_human_id
from bot.slack.blocks.lifetimes import (
    expiring_blocks,
    expiry_line,
    parse_extend_value,
    settled_reminder,
)
from bot.slack.deps import SlackDeps
from bot.slack.listeners.common import Invocation, Reply, acked, refuse, replier
from bot.slack.listeners.confirm import request_delete
from bot.slack.messages import error_text, panel_error_text
from bot.slack.mrkdwn import code, escape, mention
from bot.slack.policy import Actor
from bot.virtfusion import VirtFusionError

__all__ = [
    "handle_expiring",
    "handle_expiry_delete",
    "handle_expiry_extend",
    "handle_expiry_keep",
    "handle_extend",
]

logger = logging.getLogger(__name__)

_EXTEND_USAGE = "`/vf extend web-1 1d` or `/vf extend VF-12 4h`"
_ALL_EXPIRIES_S = 10 * 365 * 86400.0  # `/vf expiring`: every server that has an expiry


def _extended_text(instance: InstanceRecord, deps: SlackDeps) -> str:
    return (
        f"{code(instance.name)} (server {instance.server_id}) now "
        f"{expiry_line(instance.expires_at, deps.clock())}."
    )


async def handle_extend(call: Invocation) -> None:
    """`/vf extend <server|VF-n> <duration>`: push the expiry of one server, or of every built
    server of a request, further by the duration."""
    deps, args = call.deps, call.args
    if len(args) != 2:
        await call.reply(f"Name the server (or request) and the duration: {_EXTEND_USAGE}.")
        return
    try:
        seconds = parse_lifetime(args[1]).total_seconds()
    except ValueError as error:
        await call.reply(f"The duration {escape(args[1])} {error}: {_EXTEND_USAGE}.")
        return
    expiry = deps.servers.expiry
    request_id = parse_human_id(args[0]) if args[0].upper().startswith("VF-") else None
    if request_id is not None:
        record, _ = await deps.requests.get(request_id)
        decision = deps.policy.can_act_on_server(call.actor, record.requester, record.human_id)
        if not decision.allowed:
            await call.refuse("server.extend", record.human_id, decision.reason)
            return
        instances = await expiry.instances_of(request_id)
        if not instances:
            await call.reply(f"{record.human_id} has no built server whose lifetime can change.")
            return
    else:
        server = await deps.servers.resolver.resolve(args[0])
        requester = server.request.requester if server.request is not None else None
        decision = deps.policy.can_act_on_server(call.actor, requester, server.label)
        if not decision.allowed:
            await call.refuse("server.extend", server.label, decision.reason)
            return
        instances = await expiry.instances_of(server)
    lines = []
    for instance in instances:
        extended = await expiry.extend(
            instance, seconds, actor=call.actor.user, admin=call.actor.admin
        )
        lines.append(_extended_text(extended, deps))
    deps.kick()  # the thread hears of it
    await call.reply("\n".join(lines))


async def handle_expiring(call: Invocation) -> None:
    """`/vf expiring [mine|all]`: servers with an expiry, soonest first; `all` for approvers
    and admins."""
    deps = call.deps
    scope = (call.args[0] if call.args else "mine").lower()
    if scope not in ("mine", "all"):
        await call.reply("Use `/vf expiring` (your servers) or `/vf expiring all`.")
        return
    if scope == "all" and not (call.actor.admin or call.actor.approver):
        await call.refuse(
            "server.expiring", "all", "Only approvers and admins can list every server's expiry."
        )
        return
    requester = None if scope == "all" else call.actor.user
    rows = await deps.servers.expiry.expiring(within_s=_ALL_EXPIRIES_S, requester=requester)
    title = "Servers that expire" + ("" if scope == "all" else " (yours)")
    await call.reply(
        f"{len(rows)} server(s) expire", expiring_blocks(rows, deps.clock(), title=title)
    )


# -- the reminder's controls --------------------------------------------------------------------


async def _clicked(
    deps: SlackDeps,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond | None,
    instance_id: int,
    action: str,
) -> tuple[Actor, Reply, InstanceRecord, RequestRecord | None] | None:
    """Who clicked, if they may act on the server (else told why, and it is audited). The
    reminder is in the thread and in a DM: the server decides, not where it was clicked."""
    actor = await deps.actor(str(body["user"]["id"]))
    reply = replier(client, body, respond)
    may_use = deps.policy.can_use(actor, None)  # in no channel: only the roles count
    if not may_use.allowed:
        await refuse(deps, client, body, respond, (action, "expiry reminder", may_use.reason))
        return None
    try:
        instance, request = await deps.servers.expiry.get(instance_id)
    except ProvisioningError as error:
        await reply(error_text(error))
        return None
    label = f"server {instance.server_id} ({instance.name})"
    requester = request.requester if request is not None else None
    decision = deps.policy.can_act_on_server(actor, requester, label)
    if not decision.allowed:
        await refuse(deps, client, body, respond, (action, label, decision.reason))
        return None
    return actor, reply, instance, request


async def _settle(client: AsyncWebClient, body: dict[str, Any], outcome: str) -> None:
    """The reminder clicked says what was done instead of offering its controls again (the
    other copy, thread or DM, keeps them; a later click there is checked as any other)."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if not channel or not ts or not isinstance(message.get("blocks"), list):
        return
    blocks = settled_reminder(message["blocks"], outcome)
    try:
        await client.chat_update(channel=channel, ts=ts, text=outcome, blocks=blocks)
    except SlackApiError as error:  # the answer to the user went out already
        logger.info("could not settle the reminder: %s", error.response.get("error"))


def _value(body: dict[str, Any]) -> str:
    action = body["actions"][0]
    selected = action.get("selected_option") or {}
    return str(selected.get("value") or action.get("value") or "")


async def _extend(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond | None
) -> None:
    parsed = parse_extend_value(_value(body))
    if parsed is None:
        return  # not ours
    instance_id, seconds = parsed
    clicked = await _clicked(deps, body, client, respond, instance_id, "server.extend")
    if clicked is None:
        return
    actor, reply, instance, _ = clicked
    try:
        extended = await deps.servers.expiry.extend(
            instance, seconds, actor=actor.user, admin=actor.admin
        )
    except ProvisioningError as error:
        await reply(error_text(error))
        return
    deps.kick()
    await reply(_extended_text(extended, deps))
    await _settle(
        client, body, f"Extended by {mention(actor.user)}: {_extended_text(extended, deps)}"
    )


async def _delete(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond | None
) -> None:
    instance_id = _number(_value(body))
    if instance_id is None:
        return
    clicked = await _clicked(deps, body, client, respond, instance_id, "server.delete")
    if clicked is None:
        return
    actor, reply, instance, request = clicked
    channel = request.channel if request is not None and request.channel else ""
    try:
        server = await deps.servers.resolver.resolve(str(instance.server_id or 0))
        await request_delete(deps, reply, actor, server, 0, channel)
    except ProvisioningError as error:
        await reply(error_text(error))
    except VirtFusionError as error:
        await reply(panel_error_text(error))


async def _keep(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond | None
) -> None:
    instance_id = _number(_value(body))
    if instance_id is None:
        return
    # Clicked in a DM as often as in the channel: what counts is who may act on the server.
    actor = await deps.actor(str(body["user"]["id"]))
    if not actor.admin:
        reason = (
            "Only an admin can keep a server past its lifetime; use Extend, or "
            "`/vf extend <server> <duration>`, to keep it longer."
        )
        await refuse(deps, client, body, respond, ("server.keep", str(instance_id), reason))
        return
    reply = replier(client, body, respond)
    try:
        instance, _ = await deps.servers.expiry.get(instance_id)
        kept = await deps.servers.expiry.keep(instance, actor=actor.user)
    except ProvisioningError as error:
        await reply(error_text(error))
        return
    deps.kick()
    await reply(f"{code(kept.name)} (server {kept.server_id}) no longer expires.")
    await _settle(client, body, f"Kept by {mention(actor.user)}: it no longer expires.")


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


handle_expiry_extend = acked("expiry extend", _extend)
handle_expiry_delete = acked("expiry delete", _delete)
handle_expiry_keep = acked("expiry keep", _keep)
