"""`/vf rebuild`, `resize`, `rename`, `password`, `firewall`, `ip` and `backups`: the handlers,
what their confirmations and approvals carry out, and the second confirmation before a server's
last IPv4 address goes.

Everything is planned again when it is confirmed (the server may have changed since the
command), and approval is asked when VF_REQUIRE_APPROVAL wants it for a rebuild or resize, as
for a delete. A rebuild's root password (only for servers without SSH keys) goes to the person
who asked, ephemerally, also when an approver's click started it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import LastAddressError
from bot.provisioning.model import Operation, OperationKind, OperationState
from bot.provisioning.servers.changes import parse_rulesets
from bot.provisioning.servers.model import RebuildRun, ResolvedServer
from bot.slack.blocks.changes import confirm_modal, done_text
from bot.slack.blocks.day2 import (
    address_text,
    backups_blocks,
    firewall_blocks,
    operation_reply_text,
    password_blocks,
    password_text,
    rebuild_password_blocks,
    rebuild_text,
    second_ask_text,
)
from bot.slack.deps import SlackDeps
from bot.slack.listeners.common import Invocation, Reply, tell
from bot.slack.listeners.servers import confirm_first, number, target_server
from bot.slack.mrkdwn import escape
from bot.slack.parse import build_metadata, parse_metadata
from bot.slack.policy import Actor

__all__ = [
    "CHANGE_ACTIONS",
    "handle_backups",
    "handle_firewall",
    "handle_ip",
    "handle_password",
    "handle_rebuild",
    "handle_rename",
    "handle_resize",
    "parse_resize",
    "run_confirmed",
    "run_operation",
    "second_ask",
]

CHANGE_ACTIONS = frozenset({"rebuild", "resize", "firewall", "ip-remove"})


def second_ask(body: dict[str, Any]) -> dict[str, Any] | None:
    """How to acknowledge a confirmation: removing a server's last address asks once more, the
    modal replaced by a second one built from its metadata alone (no I/O before the ack); None
    for every other submission, which is carried out."""
    try:
        meta = parse_metadata(str(body["view"].get("private_metadata") or ""))
    except ValueError:
        return None
    if meta.get("a") != "ip-remove" or meta.get("t") != "2":
        return None
    reference, address = meta.get("s", ""), meta.get("x", "")
    view = confirm_modal(
        title="Last IPv4 address",
        text=second_ask_text(address, reference),
        action="ip-remove",
        metadata=build_metadata(**{**meta, "t": "1"}),
        confirm_label="Remove anyway",
        danger=True,
    )
    return {"response_action": "update", "view": view}


async def run_confirmed(
    deps: SlackDeps,
    reply: Reply,
    actor: Actor,
    server: ResolvedServer,
    meta: dict[str, str],
) -> None:
    """Carry out a confirmed rebuild, resize, firewall change or address removal."""
    action, extra, channel = meta.get("a", ""), meta.get("x", ""), meta.get("c", "")
    changes = deps.servers.changes
    if action == "rebuild":
        await _rebuild(deps, reply, actor, server, extra, channel)
    elif action == "resize":
        await _resize(deps, reply, actor, server, extra, channel)
    elif action == "firewall":
        if extra == "off":
            result = await changes.set_firewall(server, enabled=False, actor=actor.user)
        else:
            rulesets = parse_rulesets(extra.removeprefix("rulesets:"))
            result = await changes.apply_rulesets(server, rulesets, actor=actor.user)
        await reply(done_text("firewall", server.name, server.server_id, result))
    elif action == "ip-remove":
        try:
            change = await changes.remove_ipv4(
                server, extra, actor=actor.user, last_confirmed=meta.get("t") == "1"
            )
        except LastAddressError as error:
            await reply(
                f"{escape(str(error))} Nothing was removed; run the command again to be asked "
                "twice."
            )
            return
        await reply(address_text(change))


@dataclass(frozen=True)
class Asking:
    """Who asks for a rebuild or resize, and where: the request, with approval when
    VF_REQUIRE_APPROVAL wants it for a server of that size."""

    deps: SlackDeps
    reply: Reply
    requester: str
    channel: str

    async def ask(
        self, request: Callable[..., Awaitable[Operation]], memory_mb: int, disk_gb: int
    ) -> Operation | None:
        """The operation to run now, or None when it waits for approval (the asker is told)."""
        deps = self.deps
        required = deps.policy.approval.required(servers=1, memory_mb=memory_mb, disk_gb=disk_gb)
        operation = await request(
            requester=self.requester,
            approval_required=required,
            ttl_s=deps.approval_ttl_s,
            channel=self.channel or None,
        )
        deps.kick()  # the notifier posts its message (and the approval buttons)
        if operation.state is OperationState.PENDING_APPROVAL:
            await self.reply(operation_reply_text(operation))
            return None
        return operation


async def _rebuild(
    deps: SlackDeps,
    reply: Reply,
    actor: Actor,
    server: ResolvedServer,
    template: str,
    channel: str,
) -> None:
    rebuilds = deps.servers.rebuilds
    params = await rebuilds.plan(server, template or None)
    asking = Asking(deps, reply, actor.user, channel)
    operation = await asking.ask(
        partial(rebuilds.request, server, params), params.memory_mb, params.disk_gb
    )
    if operation is None:
        return
    run = await rebuilds.run(operation.id)
    deps.kick()
    await reply(rebuild_text(run))
    if run.password is not None:
        await reply(
            "The new root password (only for you)", rebuild_password_blocks(run, run.password)
        )


async def _resize(
    deps: SlackDeps,
    reply: Reply,
    actor: Actor,
    server: ResolvedServer,
    extra: str,
    channel: str,
) -> None:
    resizes = deps.servers.resizes
    kind, _, values = extra.partition(":")
    first, _, second = values.partition(":")
    if kind == "p":
        plan = await resizes.plan(server, package_id=int(first))
    else:
        plan = await resizes.plan(
            server,
            memory_mb=int(first) if first else None,
            cpu_cores=int(second) if second else None,
        )
    asking = Asking(deps, reply, actor.user, channel)
    operation = await asking.ask(
        partial(resizes.request, plan), plan.after.memory_mb, plan.after.disk_gb
    )
    if operation is None:
        return
    done = await resizes.run(operation.id)
    deps.kick()
    await reply(operation_reply_text(done))


async def run_operation(deps: SlackDeps, client: AsyncWebClient, operation: Operation) -> None:
    """Carry out an operation an approver just approved, whatever its kind. A rebuild's root
    password goes only to whoever asked for it, ephemerally where they asked."""
    servers = deps.servers
    if operation.kind is OperationKind.REBUILD:
        run = await servers.rebuilds.run(operation.id)
        await _tell_password(client, operation, run)
    elif operation.kind is OperationKind.RESIZE:
        await servers.resizes.run(operation.id)
    else:
        await servers.deletes.run(operation.id)


async def _tell_password(client: AsyncWebClient, operation: Operation, run: RebuildRun) -> None:
    if run.password is None:
        return
    where: dict[str, Any] = {"user": {"id": operation.requester}}
    if operation.channel:
        where["channel"] = {"id": operation.channel}
    await tell(
        client,
        where,
        "The new root password of your rebuilt server (only for you)",
        blocks=rebuild_password_blocks(run, run.password),
    )


# -- the commands ---------------------------------------------------------------------------------

_SIZE = re.compile(r"(memory|mem|ram|cpu|cpus|cores)=([0-9]{1,9})", re.IGNORECASE)


def parse_resize(words: list[str]) -> tuple[str, int | None, int | None] | None:
    """`2` (a package id) or `memory=MB cpu=N` (either or both) as ("p"|"s", a, b), else None:
    ("p", package, None) or ("s", memory MB, CPU cores)."""
    if len(words) == 1 and (package := number(words[0])) is not None:
        return "p", package, None
    sizes: dict[str, int] = {}
    for word in words:
        match = _SIZE.fullmatch(word)
        if match is None:
            return None
        key = "cpu" if match[1].lower() in ("cpu", "cpus", "cores") else "memory"
        if key in sizes:
            return None
        sizes[key] = int(match[2])
    return ("s", sizes.get("memory"), sizes.get("cpu")) if sizes else None


async def handle_rebuild(call: Invocation) -> None:
    usage = "`/vf rebuild web-1` (its current OS) or `/vf rebuild web-1 ubuntu-24.04`"
    server = await target_server(call, "rebuild", usage)
    if server is None:
        return
    template = " ".join(call.args[1:]) or None
    params = await call.deps.servers.rebuilds.plan(server, template)
    text = (
        f"Rebuild {server.label} with {params.what()}? Its OS is reinstalled and everything on "
        "its disk is erased. This cannot be undone."
    )
    await confirm_first(
        call,
        server,
        action="rebuild",
        title="Rebuild server",
        text=text,
        label="Rebuild",
        extra=str(params.template_id),
    )


async def handle_resize(call: Invocation) -> None:
    usage = "`/vf resize web-1 2` (package id 2) or `/vf resize web-1 memory=4096 cpu=2`"
    parsed = parse_resize(call.args[1:])
    ask = "the new package or size" if parsed is None else ""
    server = await target_server(call, "resize", usage, ask=ask)
    if server is None or parsed is None:
        return
    kind, first, second = parsed
    resizes = call.deps.servers.resizes
    if kind == "p":
        plan = await resizes.plan(server, package_id=first)
        extra = f"p:{first}"
    else:
        plan = await resizes.plan(server, memory_mb=first, cpu_cores=second)
        extra = f"s:{first or ''}:{second or ''}"
    text = f"Resize {server.label}: {plan.describe()}? It may need a restart to apply."
    await confirm_first(
        call, server, action="resize", title="Resize server", text=text, label="Resize", extra=extra
    )


async def handle_rename(call: Invocation) -> None:
    if len(call.args) != 2:
        await call.reply("Use `/vf rename web-1 db-1` (lowercase letters, digits and hyphens).")
        return
    server = await target_server(call, "rename", "`/vf rename web-1 db-1`")
    if server is not None:
        changes = call.deps.servers.changes
        result = await changes.rename(server, call.args[1], actor=call.actor.user)
        await call.reply(done_text("rename", server.name, server.server_id, result))


async def handle_password(call: Invocation) -> None:
    usage = "`/vf password web-1` (root) or `/vf password web-1 Administrator` (Windows)"
    user = {"root": "root", "administrator": "Administrator"}.get(
        call.args[1].lower() if len(call.args) > 1 else "root"
    )
    server = await target_server(call, "password", usage, ask="" if user else "whose password")
    if server is None or user is None:
        return
    changes = call.deps.servers.changes
    result = await changes.reset_password(server, actor=call.actor.user, user=user)
    # The password goes to the caller only: `reply` answers through response_url (ephemeral).
    await call.reply(password_text(result), password_blocks(result))


async def handle_firewall(call: Invocation) -> None:
    usage = "`/vf firewall web-1`, `/vf firewall web-1 on|off` or `/vf firewall web-1 rulesets 2,3`"
    mode = call.args[1].lower() if len(call.args) > 1 else ""
    known = mode in ("", "on", "off") or (mode == "rulesets" and len(call.args) == 3)
    server = await target_server(call, "firewall", usage, ask="" if known else "what to do")
    if server is None:
        return
    changes = call.deps.servers.changes
    if mode == "":
        await call.reply("Firewall", firewall_blocks(await changes.firewall(server)))
    elif mode == "on":
        result = await changes.set_firewall(server, enabled=True, actor=call.actor.user)
        await call.reply(done_text("firewall", server.name, server.server_id, result))
    else:
        label, extra = (
            ("Turn off", "off") if mode == "off" else ("Apply", f"rulesets:{call.args[2]}")
        )
        text = (
            f"Turn the firewall of {server.label} off? Its rules stop filtering traffic."
            if mode == "off"
            else f"Replace every firewall rule of {server.label} with the rules of ruleset(s) "
            f"{call.args[2]}?"
        )
        await confirm_first(
            call, server, action="firewall", title="Firewall", text=text, label=label, extra=extra
        )


async def handle_ip(call: Invocation) -> None:
    usage = "`/vf ip web-1 add [n]` or `/vf ip web-1 remove 192.0.2.10`"
    mode = call.args[1].lower() if len(call.args) > 1 else ""
    value = call.args[2] if len(call.args) > 2 else ""
    count = number(value) if value else 1
    known = (mode == "add" and count is not None) or (mode == "remove" and bool(value))
    server = await target_server(call, "ip", usage, ask="" if known else "what to do")
    if server is None:
        return
    if mode == "add":
        change = await call.deps.servers.changes.add_ipv4(server, count or 1, actor=call.actor.user)
        await call.reply(address_text(change))
        return
    addresses = await call.deps.servers.changes.addresses(server)
    if value not in addresses:
        listed = ", ".join(addresses) or "none"
        await call.reply(
            f"{escape(server.label)} has no IPv4 address {escape(value)}; its addresses: "
            f"{escape(listed)}."
        )
        return
    last = addresses == (value,)
    text = f"Remove {value} from {server.label}?"
    if last:
        text += " It is its last IPv4 address: you will be asked once more."
    await confirm_first(
        call,
        server,
        action="ip-remove",
        title="Remove IPv4",
        text=text,
        label="Remove",
        extra=value,
        t="2" if last else "",
    )


async def handle_backups(call: Invocation) -> None:
    server = await target_server(call, "backups", "`/vf backups web-1`")
    if server is not None:
        listing = await call.deps.servers.changes.backups(server)
        await call.reply(f"Backups of {server.label}", backups_blocks(listing))
