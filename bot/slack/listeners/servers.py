"""The day-2 subcommands of `/vf` (list, status, delete, suspend, power, traffic, VNC, …; the
second set, rebuild to backups, is in ``changes.py``).

Each handler takes one `Invocation` and runs after `ack()`; who may do what is decided in
``bot.slack.policy``, and every answer goes only to the caller. Destructive actions open the
confirmation modal, which ``confirm.py`` handles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.provisioning.model import (
    InstanceRecord,
    InstanceState,
    RequestRecord,
    RequestState,
    parse_human_id,
)
from bot.provisioning.servers import MAX_DELETE_DELAY_MIN, POWER_ACTIONS
from bot.provisioning.servers.model import ResolvedServer
from bot.slack.blocks.changes import (
    confirm_modal,
    done_text,
    power_result_text,
    vnc_blocks,
    vnc_text,
)
from bot.slack.blocks.panel import audit_blocks, check_blocks_text, hypervisors_blocks
from bot.slack.blocks.servers import (
    request_status_blocks,
    server_detail_blocks,
    server_list_blocks,
    traffic_blocks,
)
from bot.slack.blocks.summary import summarize
from bot.slack.deps import SlackDeps
from bot.slack.listeners.common import Invocation, Reply
from bot.slack.messages import cancelled_text, check_detail, not_cancellable_text
from bot.slack.mrkdwn import escape
from bot.slack.parse import build_metadata
from bot.slack.policy import Actor, Decision

__all__ = [
    "PAGE_SIZE",
    "cancel_request",
    "confirm_first",
    "handle_audit",
    "handle_backup_plan",
    "handle_cancel",
    "handle_check",
    "handle_delete",
    "handle_hypervisors",
    "handle_list",
    "handle_owner",
    "handle_power",
    "handle_status",
    "handle_suspend",
    "handle_throttle",
    "handle_traffic",
    "handle_unsuspend",
    "handle_vnc",
    "may_cancel",
    "number",
    "send_page",
    "target_server",
]

PAGE_SIZE = 25
_CONFIRM_POWER = {"shutdown", "restart", "poweroff"}
_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is True, int() fails


def number(text: str) -> int | None:
    """A whole number typed by a user, or None (only ASCII digits count)."""
    return int(text) if _NUMBER.fullmatch(text) else None


# -- looking ------------------------------------------------------------------------------------


async def handle_list(call: Invocation) -> None:
    scope = (call.args[0] if call.args else "mine").lower()
    await send_page(call.deps, call.reply, call.actor, scope, 0)


async def send_page(deps: SlackDeps, reply: Reply, actor: Actor, scope: str, offset: int) -> None:
    """One page of `/vf list <scope>` (also the Next page button)."""
    inventory = deps.servers.inventory
    if scope == "all":
        refusal = deps.policy.admins_only(
            actor, "Only admins can list every server of the vfbot owner; try `/vf list`."
        )
        if not refusal.allowed:
            await deps.refused(actor.user, "server.list", "all", refusal.reason)
            await reply(refusal.reason)
            return
        rows, total = await inventory.list_owner_servers(limit=PAGE_SIZE, offset=offset)
        title = "All servers of the vfbot owner"
    elif scope == "mine":
        rows, total = await inventory.list_managed(
            requester=actor.user, limit=PAGE_SIZE, offset=offset
        )
        rows = await inventory.enrich(rows)
        title = "Your servers"
    else:
        request_id = parse_human_id(scope)
        if request_id is None:
            await reply(
                f"Use `/vf list`, `/vf list all` or `/vf list VF-12`, not `{escape(scope)}`."
            )
            return
        record, _ = await deps.requests.get(request_id)
        decision = deps.policy.can_see_request(actor, record.requester, record.human_id, "list")
        if not decision.allowed:
            await deps.refused(actor.user, "server.list", record.human_id, decision.reason)
            await reply(decision.reason)
            return
        rows, total = await inventory.list_managed(
            request_id=request_id, limit=PAGE_SIZE, offset=offset
        )
        rows = await inventory.enrich(rows)
        title = f"Servers of {record.human_id}"
        scope = record.human_id
    blocks = server_list_blocks(
        rows, total=total, offset=offset, page_size=PAGE_SIZE, title=title, scope=scope
    )
    await reply(f"{title} ({total})", blocks)


async def handle_status(call: Invocation) -> None:
    deps, args = call.deps, call.args
    if not args:
        await call.reply("Use `/vf status web-1`, `/vf status 123` or `/vf status VF-12`.")
        return
    request_id = parse_human_id(args[0]) if args[0].upper().startswith("VF-") else None
    if request_id is not None:
        record, instances = await deps.requests.get(request_id)
        decision = deps.policy.can_see_request(call.actor, record.requester, record.human_id, "see")
        if not decision.allowed:
            await call.refuse("request.status", record.human_id, decision.reason)
            return
        summary = summarize(record, instances)
        blocks = request_status_blocks(summary, now=deps.clock())
        await call.reply(f"{record.human_id}: {record.state.value}", blocks)
        return
    server = await target_server(call, "status", "`/vf status web-1`")
    if server is None:
        return
    live = any(a.lower() in ("live", "--live", "remote") for a in args[1:])
    detail = await deps.servers.inventory.status(server, live=live)
    blocks = server_detail_blocks(detail, now=deps.clock())
    await call.reply(f"{server.label}: {detail.phase}", blocks)


async def handle_traffic(call: Invocation) -> None:
    server = await target_server(call, "traffic", "`/vf traffic web-1`")
    if server is not None:
        summary = await call.deps.servers.inventory.traffic(server)
        await call.reply(f"Traffic of {server.label}", traffic_blocks(summary))


async def handle_hypervisors(call: Invocation) -> None:
    rows = await call.deps.servers.inventory.hypervisors()
    await call.reply("Hypervisor groups", hypervisors_blocks(rows))


async def handle_check(call: Invocation) -> None:
    steps = await call.deps.servers.inventory.check()
    await call.reply(check_blocks_text([(s.label, s.passed, check_detail(s)) for s in steps]))


async def handle_audit(call: Invocation) -> None:
    wanted = number(call.args[0]) if call.args else 20
    if wanted is None or not 1 <= wanted <= 200:
        await call.reply("Give how many entries, 1 to 200: `/vf audit 50` (default 20).")
        return
    entries = await call.deps.servers.inventory.recent_audit(wanted)
    blocks = audit_blocks(entries, now=call.deps.clock())
    await call.reply(f"Last {len(entries)} audit entries", blocks)


# -- changing -----------------------------------------------------------------------------------


async def target_server(
    call: Invocation, action: str, usage: str, *, ask: str = ""
) -> ResolvedServer | None:
    """The server named in the first argument, if the actor may act on it (else they are told
    why, and the refusal is audited). `ask` names what the other words lack: then the user is
    asked for it (with `usage`) before any server is looked up."""
    if ask:
        await call.reply(f"Say {ask}: {usage}.")
        return None
    if not call.args:
        await call.reply(f"Name the server: {usage}.")
        return None
    server = await call.deps.servers.resolver.resolve(call.args[0])
    requester = server.request.requester if server.request is not None else None
    decision = call.deps.policy.can_act_on_server(call.actor, requester, server.label)
    if not decision.allowed:
        await call.refuse(f"server.{action}", server.label, decision.reason)
        return None
    return server


async def confirm_first(
    call: Invocation,
    server: ResolvedServer,
    *,
    action: str,
    title: str,
    text: str,
    label: str,
    extra: str = "",
    **more: str,
) -> None:
    # Re-resolved at confirmation the way the user named it: a server vfbot made by its name
    # (so one deleted in the panel meanwhile still counts as done), any other by its id.
    reference = server.name if server.instance is not None else str(server.server_id)
    metadata = build_metadata(a=action, s=reference, c=call.channel, x=extra, **more)
    view = confirm_modal(
        title=title, text=text, action=action, metadata=metadata, confirm_label=label, danger=True
    )
    await call.client.views_open(trigger_id=str(call.body["trigger_id"]), view=view)


async def handle_delete(call: Invocation) -> None:
    usage = "`/vf delete web-1 [delay minutes]`"
    delay = number(call.args[1]) if len(call.args) > 1 else 0
    if delay is None or delay > MAX_DELETE_DELAY_MIN:
        await call.reply(
            f"The delay is a whole number of minutes from 0 to {MAX_DELETE_DELAY_MIN}: {usage}."
        )
        return
    server = await target_server(call, "delete", usage)
    if server is None:
        return
    text = f"Delete {server.label}? This cannot be undone."
    extra = str(delay)
    await confirm_first(
        call, server, action="delete", title="Delete server", text=text, label="Delete", extra=extra
    )


async def handle_suspend(call: Invocation) -> None:
    server = await target_server(call, "suspend", "`/vf suspend web-1`")
    if server is not None:
        text = f"Suspend {server.label}? It stops until it is unsuspended."
        await confirm_first(
            call, server, action="suspend", title="Suspend server", text=text, label="Suspend"
        )


async def handle_unsuspend(call: Invocation) -> None:
    server = await target_server(call, "unsuspend", "`/vf unsuspend web-1`")
    if server is not None:
        result = await call.deps.servers.actions.unsuspend(server, actor=call.actor.user)
        await call.reply(done_text("unsuspend", server.name, server.server_id, result))


async def handle_power(call: Invocation) -> None:
    usage = "`/vf power web-1 boot|shutdown|restart|poweroff`"
    action = call.args[1].lower() if len(call.args) > 1 else ""
    if action not in POWER_ACTIONS:
        await call.reply(f"Say which power action: {usage}.")
        return
    server = await target_server(call, "power", usage)
    if server is None:
        return
    if action in _CONFIRM_POWER:
        label, text = action.capitalize(), f"{action.capitalize()} {server.label}?"
        await confirm_first(
            call, server, action="power", title="Power action", text=text, label=label, extra=action
        )
        return
    result = await call.deps.servers.actions.power(server, action, actor=call.actor.user)
    await call.reply(power_result_text(result))


async def handle_vnc(call: Invocation) -> None:
    usage = "`/vf vnc web-1 enable|disable`"
    mode = call.args[1].lower() if len(call.args) > 1 else ""
    if mode not in ("enable", "disable"):
        await call.reply(f"Say enable or disable: {usage}.")
        return
    server = await target_server(call, "vnc", usage)
    if server is None:
        return
    enabled = mode == "enable"
    session = await call.deps.servers.actions.vnc(server, enable=enabled, actor=call.actor.user)
    # Credentials go to the caller only: `reply` answers through response_url (ephemeral).
    await call.reply(
        vnc_text(name=server.name, server_id=server.server_id, enabled=enabled),
        vnc_blocks(session, name=server.name, server_id=server.server_id, enabled=enabled),
    )


async def handle_backup_plan(call: Invocation) -> None:
    usage = "`/vf backup-plan web-1 2` or `/vf backup-plan web-1 none`"
    value = call.args[1].lower() if len(call.args) > 1 else ""
    plan_id = number(value)
    if plan_id is None and value != "none":
        await call.reply(f"Give a backup plan id or none: {usage}.")
        return
    server = await target_server(call, "backup-plan", usage)
    if server is not None:
        actions = call.deps.servers.actions
        result = await actions.set_backup_plan(server, plan_id or None, actor=call.actor.user)
        await call.reply(done_text("backup-plan", server.name, server.server_id, result))


async def handle_owner(call: Invocation) -> None:
    owner = number(call.args[1]) if len(call.args) > 1 else None
    if owner is None:
        await call.reply("Use `/vf owner web-1 42` (42 = the new owner's VirtFusion user id).")
        return
    server = await target_server(call, "owner", "`/vf owner web-1 42`")
    if server is not None:
        result = await call.deps.servers.actions.change_owner(server, owner, actor=call.actor.user)
        await call.reply(done_text("owner", server.name, server.server_id, result))


# -- requests -----------------------------------------------------------------------------------


async def handle_cancel(call: Invocation) -> None:
    """`/vf cancel VF-n [delete]`: stop a request, as `vfbot cancel` does; with `delete` its
    servers are deleted too, after a confirmation."""
    deps, args = call.deps, call.args
    request_id = parse_human_id(args[0]) if args else None
    more = [word.lower() for word in args[1:]]
    if request_id is None or more not in ([], ["delete"]):
        await call.reply(
            "Name the request: `/vf cancel VF-12` keeps the servers it made, "
            "`/vf cancel VF-12 delete` deletes them too."
        )
        return
    delete = more == ["delete"]
    record, instances = await deps.requests.get(request_id)
    if record.state not in _CANCELLABLE:
        await call.reply(not_cancellable_text(record))
        return
    decision, existing = may_cancel(deps, call.actor, record, instances, delete=delete)
    if not decision.allowed:
        await call.refuse("request.cancel", record.human_id, decision.reason)
        return
    if delete and existing:
        metadata = build_metadata(a="cancel", r=record.human_id, c=call.channel, x="delete")
        servers = f"{existing} server{'s' if existing != 1 else ''}"
        view = confirm_modal(
            title="Cancel request",
            text=f"Cancel {record.human_id} and delete its {servers}? This cannot be undone.",
            action="cancel",
            metadata=metadata,
            confirm_label="Cancel and delete",
            danger=True,
        )
        await call.client.views_open(trigger_id=str(call.body["trigger_id"]), view=view)
        return
    await cancel_request(deps, call.reply, call.actor, request_id, delete=delete)


def may_cancel(
    deps: SlackDeps,
    actor: Actor,
    record: RequestRecord,
    instances: Sequence[InstanceRecord],
    *,
    delete: bool,
) -> tuple[Decision, int]:
    """The policy's answer to cancelling `record` (with `delete`: deleting its servers too, which
    a requester may only where a delete would need no approval), and how many servers exist."""
    existing = [i for i in instances if i.state not in _NO_SERVER]
    needs_approval = delete and deps.policy.approval.required(
        servers=len(existing),
        memory_mb=sum(i.plan.memory_mb for i in existing),
        disk_gb=sum(i.plan.disk_gb for i in existing),
    )
    decision = deps.policy.can_cancel(
        actor, record.requester, record.human_id, delete_needs_approval=needs_approval
    )
    return decision, len(existing)


async def cancel_request(
    deps: SlackDeps, reply: Reply, actor: Actor, request_id: int, *, delete: bool
) -> None:
    """Cancel (after the checks and any confirmation) and say what happens now."""
    record = await deps.requests.cancel(request_id, actor=actor.user, delete_servers=delete)
    deps.kick()  # the thread hears of it; the engine stops (and deletes) at its next tick
    await reply(cancelled_text(record, delete=delete))


_CANCELLABLE = frozenset(
    {RequestState.PENDING_APPROVAL, RequestState.APPROVED, RequestState.RUNNING}
)
_NO_SERVER = frozenset({InstanceState.PLANNED, InstanceState.CANCELLED, InstanceState.DELETED})
"""Instance states in which no server exists on the panel (so none to delete)."""


async def handle_throttle(call: Invocation) -> None:
    usage = "`/vf throttle web-1 50` (0-99 %, 0 removes the limit)"
    percent = number(call.args[1]) if len(call.args) > 1 else None
    if percent is None:
        await call.reply(f"Give a percentage: {usage}.")
        return
    server = await target_server(call, "throttle", usage)
    if server is not None:
        result = await call.deps.servers.actions.throttle(server, percent, actor=call.actor.user)
        await call.reply(done_text("throttle", server.name, server.server_id, result))
