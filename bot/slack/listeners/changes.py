"""Carrying out what a confirmation or an approval decided for a rebuild, resize, firewall change
or address removal; and the second confirmation before a server's last IPv4 address goes.

Everything is planned again when it is confirmed (the server may have changed since the
command), and approval is asked when VF_REQUIRE_APPROVAL wants it for a rebuild or resize, as
for a delete. A rebuild's root password (only for servers without SSH keys) goes to the person
who asked, ephemerally, also when an approver's click started it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import LastAddressError
from bot.provisioning.model import Operation, OperationKind, OperationState
from bot.provisioning.servers.changes import parse_rulesets
from bot.provisioning.servers.model import RebuildRun, ResolvedServer
from bot.slack.blocks.changes import confirm_modal, done_text
from bot.slack.blocks.day2 import (
    address_text,
    operation_reply_text,
    rebuild_password_blocks,
    rebuild_text,
    second_ask_text,
)
from bot.slack.deps import SlackDeps
from bot.slack.listeners.common import Reply, tell
from bot.slack.mrkdwn import escape
from bot.slack.parse import build_metadata, parse_metadata
from bot.slack.policy import Actor

__all__ = ["CHANGE_ACTIONS", "ask_twice_for_last_address", "run_confirmed", "run_operation"]

CHANGE_ACTIONS = frozenset({"rebuild", "resize", "firewall", "ip-remove"})


Listener = Callable[..., Awaitable[None]]


def ask_twice_for_last_address(inner: Listener) -> Listener:
    """Wrap the confirmation listener: removing a server's last address asks once more. The
    modal is replaced by a second one, built from its metadata alone (no I/O before the ack);
    every other submission goes to `inner`."""

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond | None,
        context: Any,
    ) -> None:
        try:
            meta = parse_metadata(str(body["view"].get("private_metadata") or ""))
        except ValueError:
            meta = {}
        if meta.get("a") == "ip-remove" and meta.get("t") == "2":
            reference, address = meta.get("s", ""), meta.get("x", "")
            view = confirm_modal(
                title="Last IPv4 address",
                text=second_ask_text(address, reference, _id_of(reference)),
                action="ip-remove",
                metadata=build_metadata(**{**meta, "t": "1"}),
                confirm_label="Remove anyway",
                danger=True,
            )
            await ack(response_action="update", view=view)
            return
        await inner(ack, body, client, respond, context)

    return listener


def _id_of(reference: str) -> int:
    return int(reference) if reference.isascii() and reference.isdigit() else 0


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
        partial(resizes.request, plan), plan.new_memory_mb, plan.new_disk_gb
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
