"""Day-2 subcommands of `/vf` (list, status, delete, suspend, power, traffic, VNC, …), their
confirmation modal, the delete approval buttons, and the paged list button.

Who may do what (docs/commands.md): requesters act on the servers they requested, approvers on
every server vfbot created, admins on every server of the vfbot owner, and only admins use
`list all`, `owner` and `audit`. Every command, confirmation and click is checked again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import (
    AlreadyDecidedError,
    ProvisioningError,
    UnknownRequestError,
)
from bot.provisioning.operations import ResolvedServer, explain_panel_error
from bot.slack import ids
from bot.slack.blocks.ops import (
    audit_blocks,
    check_blocks_text,
    confirm_modal,
    done_text,
    hypervisors_blocks,
    operation_blocks,
    operation_text,
    parse_list_page,
    power_result_text,
    request_status_blocks,
    server_detail_blocks,
    server_list_blocks,
    traffic_blocks,
    vnc_blocks,
    vnc_text,
)
from bot.slack.blocks.summary import summarize
from bot.slack.deps import SlackDeps
from bot.slack.listeners.common import Actor, actor_of, refuse, tell
from bot.slack.mrkdwn import escape, mention
from bot.slack.parse import build_metadata, parse_metadata
from bot.store import Operation, OperationState, parse_human_id
from bot.virtfusion import VirtFusionError

__all__ = ["DAY2", "dispatch", "refresh_operation_message", "register"]

logger = logging.getLogger("bot.slack.ops")

PAGE_SIZE = 25
POWER_ACTIONS = ("boot", "shutdown", "restart", "poweroff")
_CONFIRM_POWER = {"shutdown", "restart", "poweroff"}

Reply = Callable[..., Awaitable[None]]


def _reply(client: AsyncWebClient, body: dict[str, Any], respond: AsyncRespond | None) -> Reply:
    async def reply(text: str, blocks: list[dict[str, object]] | None = None) -> None:
        await tell(client, body, text, respond=respond, blocks=blocks)

    return reply


def _may_act(actor: Actor, server: ResolvedServer) -> str | None:
    """None when the actor may act on this server, else why not (naming who may)."""
    if actor.admin:
        return None
    if server.request is None:
        return f"Only an admin can act on {escape(server.label)}: vfbot did not create it."
    if actor.approver or server.request.requester == actor.user:
        return None
    return (
        f"Only {mention(server.request.requester)} (who requested it), the approvers or an "
        f"admin can act on {escape(server.label)}."
    )


async def dispatch(
    deps: SlackDeps,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond,
    subcommand: str,
    rest: str,
) -> None:
    """Run a day-2 subcommand after `ack()`; every answer goes only to the caller."""
    reply = _reply(client, body, respond)
    user, channel = str(body["user_id"]), str(body["channel_id"])
    actor = await actor_of(deps, user)
    decision = deps.access.can_request(user, set(actor.groups), channel)
    if not decision.allowed:
        await refuse(deps, respond, user, f"server.{subcommand}", channel, decision.reason)
        return
    handler = _COMMANDS[subcommand]
    try:
        await handler(deps, body, client, reply, actor, rest.split())
    except ProvisioningError as error:
        await reply(escape(str(error)))
    except VirtFusionError as error:
        await reply(escape(explain_panel_error(error)))


# -- looking ------------------------------------------------------------------------------------


async def _list(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    scope = (args[0] if args else "mine").lower()
    await _send_page(deps, reply, actor, scope, 0)


async def _send_page(deps: SlackDeps, reply: Reply, actor: Actor, scope: str, offset: int) -> None:
    ops = deps.ops
    if scope == "all":
        if not actor.admin:
            await deps.service.audit(actor.user, "server.list", "all", "refused")
            await reply("Only admins can list every server of the vfbot owner; try `/vf list`.")
            return
        rows, total = await ops.list_owner_servers(limit=PAGE_SIZE, offset=offset)
        title = "All servers of the vfbot owner"
    elif scope == "mine":
        rows, total = await ops.list_managed(requester=actor.user, limit=PAGE_SIZE, offset=offset)
        rows = await ops.enrich(rows)
        title = "Your servers"
    else:
        request_id = parse_human_id(scope)
        if request_id is None:
            await reply(
                f"Use `/vf list`, `/vf list all` or `/vf list VF-12`, not `{escape(scope)}`."
            )
            return
        record, _ = await deps.service.get(request_id)
        if not (actor.admin or actor.approver or record.requester == actor.user):
            await reply(
                f"Only {mention(record.requester)}, approvers or admins can list {record.human_id}."
            )
            return
        rows, total = await ops.list_managed(request_id=request_id, limit=PAGE_SIZE, offset=offset)
        rows = await ops.enrich(rows)
        title = f"Servers of {record.human_id}"
        scope = record.human_id
    blocks = server_list_blocks(
        rows, total=total, offset=offset, page_size=PAGE_SIZE, title=title, scope=scope
    )
    await reply(f"{title} ({total})", blocks)


async def _status(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    if not args:
        await reply("Use `/vf status web-1`, `/vf status 123` or `/vf status VF-12`.")
        return
    request_id = parse_human_id(args[0]) if args[0].upper().startswith("VF-") else None
    if request_id is not None:
        record, instances = await deps.service.get(request_id)
        if not (actor.admin or actor.approver or record.requester == actor.user):
            await reply(
                f"Only {mention(record.requester)}, approvers or admins can see {record.human_id}."
            )
            return
        now = deps.clock()
        summary = summarize(record, instances)
        await reply(
            f"{record.human_id}: {record.state.value}", request_status_blocks(summary, now=now)
        )
        return
    server = await deps.ops.resolve(args[0])
    refusal = _may_act(actor, server)
    if refusal is not None:
        await deps.service.audit(actor.user, "server.status", server.label, "refused")
        await reply(refusal)
        return
    live = any(a.lower() in ("live", "--live", "remote") for a in args[1:])
    detail = await deps.ops.status(server, live=live)
    await reply(f"{server.label}: {detail.phase}", server_detail_blocks(detail, now=deps.clock()))


async def _traffic(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    server = await _target(deps, reply, actor, args, "traffic", "`/vf traffic web-1`")
    if server is not None:
        summary = await deps.ops.traffic(server)
        await reply(f"Traffic of {server.label}", traffic_blocks(summary))


async def _hypervisors(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    rows = await deps.ops.hypervisors()
    await reply("Hypervisor groups", hypervisors_blocks(rows))


async def _check(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    steps = await deps.ops.check()
    await reply(check_blocks_text(steps))


async def _audit(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    if not actor.admin:
        await deps.service.audit(actor.user, "audit.read", "audit", "refused")
        await reply("Only admins (VF_ADMINS) can read the audit log.")
        return
    count = int(args[0]) if args and args[0].isdigit() else 20
    entries = await deps.ops.recent_audit(max(1, min(count, 200)))
    await reply(f"Last {len(entries)} audit entries", audit_blocks(entries, now=deps.clock()))


# -- changing -----------------------------------------------------------------------------------


async def _target(
    deps: SlackDeps, reply: Reply, actor: Actor, args: list[str], action: str, usage: str
) -> ResolvedServer | None:
    """The server named in `args[0]`, if the actor may act on it (else they are told why)."""
    if not args:
        await reply(f"Name the server: {usage}.")
        return None
    server = await deps.ops.resolve(args[0])
    refusal = _may_act(actor, server)
    if refusal is not None:
        await deps.service.audit(actor.user, f"server.{action}", server.label, "refused")
        await reply(refusal)
        return None
    return server


async def _confirm(
    client: AsyncWebClient, body: dict[str, Any], *, title: str, text: str, label: str,
    action: str, server: ResolvedServer, extra: str = "",
) -> None:  # fmt: skip
    # Re-resolve at confirmation the way the user named it: a server vfbot made by its name
    # (so one deleted in the panel meanwhile still counts as done), any other by its id.
    reference = server.name if server.instance is not None else str(server.server_id)
    metadata = build_metadata(a=action, s=reference, c=str(body.get("channel_id", "")), x=extra)
    await client.views_open(
        trigger_id=str(body["trigger_id"]),
        view=confirm_modal(
            title=title,
            text=text,
            action=action,
            metadata=metadata,
            confirm_label=label,
            danger=True,
        ),
    )


async def _delete(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    server = await _target(deps, reply, actor, args, "delete", "`/vf delete web-1 [delay minutes]`")
    if server is None:
        return
    delay = args[1] if len(args) > 1 and args[1].isdigit() else "0"
    await _confirm(
        client, body, title="Delete server", label="Delete", action="delete", server=server,
        text=f"Delete {server.label}? This cannot be undone.", extra=delay,
    )  # fmt: skip


async def _suspend(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    server = await _target(deps, reply, actor, args, "suspend", "`/vf suspend web-1`")
    if server is not None:
        await _confirm(
            client, body, title="Suspend server", label="Suspend", action="suspend",
            server=server, text=f"Suspend {server.label}? It stops until it is unsuspended.",
        )  # fmt: skip


async def _unsuspend(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    server = await _target(deps, reply, actor, args, "unsuspend", "`/vf unsuspend web-1`")
    if server is not None:
        result = await deps.ops.unsuspend(server, actor=actor.user)
        await reply(done_text("unsuspend", server.name, server.server_id, result))


async def _power(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    usage = "`/vf power web-1 boot|shutdown|restart|poweroff`"
    action = args[1].lower() if len(args) > 1 else ""
    if action not in POWER_ACTIONS:
        await reply(f"Say which power action: {usage}.")
        return
    server = await _target(deps, reply, actor, args, "power", usage)
    if server is None:
        return
    if action in _CONFIRM_POWER:
        await _confirm(
            client, body, title="Power action", label=action.capitalize(), action="power",
            server=server, text=f"{action.capitalize()} {server.label}?", extra=action,
        )  # fmt: skip
        return
    await reply(power_result_text(await deps.ops.power(server, action, actor=actor.user)))


async def _vnc(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    usage = "`/vf vnc web-1 enable|disable`"
    mode = args[1].lower() if len(args) > 1 else ""
    if mode not in ("enable", "disable"):
        await reply(f"Say enable or disable: {usage}.")
        return
    server = await _target(deps, reply, actor, args, "vnc", usage)
    if server is None:
        return
    enabled = mode == "enable"
    session = await deps.ops.vnc(server, enable=enabled, actor=actor.user)
    # Credentials go to the caller only: `reply` answers through response_url (ephemeral).
    await reply(
        vnc_text(name=server.name, server_id=server.server_id, enabled=enabled),
        vnc_blocks(session, name=server.name, server_id=server.server_id, enabled=enabled),
    )


async def _backup_plan(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    usage = "`/vf backup-plan web-1 2` or `/vf backup-plan web-1 none`"
    value = args[1].lower() if len(args) > 1 else ""
    if not (value.isdigit() or value in ("none", "0")):
        await reply(f"Give a backup plan id or none: {usage}.")
        return
    server = await _target(deps, reply, actor, args, "backup-plan", usage)
    if server is not None:
        plan_id = None if value in ("none", "0") else int(value)
        result = await deps.ops.set_backup_plan(server, plan_id, actor=actor.user)
        await reply(done_text("backup-plan", server.name, server.server_id, result))


async def _owner(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    if not actor.admin:
        await deps.service.audit(actor.user, "server.owner", " ".join(args), "refused")
        await reply("Only admins (VF_ADMINS) can give a server to another VirtFusion user.")
        return
    if len(args) < 2 or not args[1].isdigit():
        await reply("Use `/vf owner web-1 42` (42 = the new owner's VirtFusion user id).")
        return
    server = await _target(deps, reply, actor, args, "owner", "`/vf owner web-1 42`")
    if server is not None:
        result = await deps.ops.change_owner(server, int(args[1]), actor=actor.user)
        await reply(done_text("owner", server.name, server.server_id, result))


async def _throttle(
    deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, reply: Reply,
    actor: Actor, args: list[str],
) -> None:  # fmt: skip
    usage = "`/vf throttle web-1 50` (0-99 %, 0 removes the limit)"
    if len(args) < 2 or not args[1].isdigit():
        await reply(f"Give a percentage: {usage}.")
        return
    server = await _target(deps, reply, actor, args, "throttle", usage)
    if server is not None:
        result = await deps.ops.throttle(server, int(args[1]), actor=actor.user)
        await reply(done_text("throttle", server.name, server.server_id, result))


Handler = Callable[
    [SlackDeps, dict[str, Any], AsyncWebClient, Reply, Actor, list[str]], Awaitable[None]
]
_COMMANDS: dict[str, Handler] = {
    "list": _list,
    "status": _status,
    "traffic": _traffic,
    "hypervisors": _hypervisors,
    "check": _check,
    "audit": _audit,
    "delete": _delete,
    "suspend": _suspend,
    "unsuspend": _unsuspend,
    "power": _power,
    "vnc": _vnc,
    "backup-plan": _backup_plan,
    "owner": _owner,
    "throttle": _throttle,
}
DAY2 = frozenset(_COMMANDS)


# -- confirmations, delete approvals, list paging -----------------------------------------------


async def refresh_operation_message(
    deps: SlackDeps, client: AsyncWebClient, operation: Operation
) -> None:
    """Rewrite a delete's channel message from its current state (buttons gone once decided)."""
    if not operation.slack_channel or not operation.slack_ts:
        return
    try:
        await client.chat_update(
            channel=operation.slack_channel,
            ts=operation.slack_ts,
            text=operation_text(operation),
            blocks=operation_blocks(operation, now=deps.clock()),
        )
    except SlackApiError as error:
        logger.warning("could not update %s: %s", operation.human_id, error.response.get("error"))


async def _confirmed(deps: SlackDeps, client: AsyncWebClient, body: dict[str, Any]) -> None:
    """A confirmation modal was submitted: check again, then do it."""
    view = body["view"]
    meta = parse_metadata(str(view.get("private_metadata") or ""))
    user, channel = str(body["user"]["id"]), meta.get("c", "")
    action, extra = meta.get("a", ""), meta.get("x", "")
    context = {"user": {"id": user}, "channel": {"id": channel}}
    reply = _reply(client, context, None)
    actor = await actor_of(deps, user)
    try:
        server = await deps.ops.resolve(meta.get("s", ""))
        refusal = _may_act(actor, server)
        if refusal is not None:
            await deps.service.audit(user, f"server.{action}", server.label, "refused")
            await reply(refusal)
            return
        if action == "suspend":
            result = await deps.ops.suspend(server, actor=user)
            await reply(done_text("suspend", server.name, server.server_id, result))
        elif action == "power":
            await reply(power_result_text(await deps.ops.power(server, extra, actor=user)))
        elif action == "delete":
            await _delete_confirmed(deps, client, reply, actor, server, view, extra, channel)
    except ProvisioningError as error:
        await reply(escape(str(error)))
    except VirtFusionError as error:
        await reply(escape(explain_panel_error(error)))


async def _delete_confirmed(
    deps: SlackDeps, client: AsyncWebClient, reply: Reply, actor: Actor,
    server: ResolvedServer, view: dict[str, Any], default_delay: str, channel: str,
) -> None:  # fmt: skip
    state = view.get("state", {}).get("values", {}).get(ids.B_DELAY, {}).get(ids.B_DELAY, {})
    typed = str(state.get("value") or default_delay or "0")
    delay = int(typed) if typed.isdigit() else 0
    spec = server.instance.spec if server.instance is not None else {}
    memory = spec.get("memory_mb")
    disk = spec.get("disk_gb")
    required = deps.approval.required(
        servers=1,
        memory_mb=memory if isinstance(memory, int) else 0,
        disk_gb=disk if isinstance(disk, int) else 0,
    )
    operation = await deps.ops.request_delete(
        server, requester=actor.user, delay_min=delay, approval_required=required,
        ttl_s=deps.approval_ttl_s, channel=channel,
    )  # fmt: skip
    if operation.state is OperationState.PENDING_APPROVAL:
        posted = await client.chat_postMessage(
            channel=channel,
            text=operation_text(operation),
            blocks=operation_blocks(operation, now=deps.clock()),
        )
        await deps.ops.set_operation_message(operation.id, channel, str(posted["ts"]))
        await reply(
            f"{operation.human_id}: the delete of {escape(server.label)} waits for approval."
        )
        return
    done = await deps.ops.run_operation(operation.id)
    deps.kick()  # the create request's thread hears about the delete
    await reply(escape(done.result or f"{server.label}: {done.state.value}"))


async def _decide_operation(
    deps: SlackDeps, client: AsyncWebClient, body: dict[str, Any], respond: AsyncRespond,
    *, approve: bool,
) -> None:  # fmt: skip
    user = str(body["user"]["id"])
    operation_id = int(str(body["actions"][0]["value"]))
    reply = _reply(client, body, respond)
    try:
        operation = await deps.ops.get_operation(operation_id)
    except ProvisioningError as error:
        await reply(escape(str(error)))
        return
    actor = await actor_of(deps, user)
    decision = deps.access.can_approve(user, set(actor.groups), operation.requester)
    if not decision.allowed:
        action = "operation.approve" if approve else "operation.reject"
        await refuse(deps, respond, user, action, operation.human_id, decision.reason,
                     client=client, body=body)  # fmt: skip
        return
    try:
        if approve:
            operation = await deps.ops.approve_operation(operation_id, actor=user)
            await refresh_operation_message(deps, client, operation)
            operation = await deps.ops.run_operation(operation_id)
            deps.kick()
        else:
            operation = await deps.ops.reject_operation(operation_id, actor=user)
    except (AlreadyDecidedError, UnknownRequestError) as error:
        await reply(escape(str(error)))
        return
    await refresh_operation_message(deps, client, operation)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.CONFIRM_VIEW)
    async def handle_confirm(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        deps.background.spawn(_confirmed(deps, client, body), name="confirm")

    @app.action(ids.DELETE_APPROVE)
    async def handle_delete_approve(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        deps.background.spawn(
            _decide_operation(deps, client, body, respond, approve=True), name="delete approve"
        )

    @app.action(ids.DELETE_REJECT)
    async def handle_delete_reject(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        deps.background.spawn(
            _decide_operation(deps, client, body, respond, approve=False), name="delete reject"
        )

    @app.action(ids.LIST_PAGE)
    async def handle_list_page(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user = str(body["user"]["id"])
        try:
            scope, offset = parse_list_page(str(body["actions"][0]["value"]))
        except (ValueError, json.JSONDecodeError):
            return
        actor = await actor_of(deps, user)
        reply = _reply(client, body, respond)
        try:
            await _send_page(deps, reply, actor, scope.lower(), offset)
        except ProvisioningError as error:
            await reply(escape(str(error)))
