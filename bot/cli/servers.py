"""`vfbot delete`, `suspend`, `power`, `traffic`, `vnc`, `backup-plan`, `owner`, `throttle`,
`rebuild`, `resize`, `rename`, `password`, `firewall`, `ip`, `backups` and `audit`: day-2 work on
servers that exist.

The CLI operator is trusted: a delete, rebuild or resize needs no Slack approval, only a
confirmation (or --yes). Secrets the panel returns (a VNC password, a new root password) are
printed in this terminal only, never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.table import Table

from bot.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    AddParser,
    Command,
    actor,
    confirm,
    open_core,
    settings_of,
)
from bot.config import Settings
from bot.provisioning.errors import InvalidValueError, LastAddressError
from bot.provisioning.model import Operation, OperationState
from bot.provisioning.servers import MAX_DELETE_DELAY_MIN, POWER_ACTIONS, Servers
from bot.provisioning.servers.changes import parse_rulesets
from bot.provisioning.servers.model import ResolvedServer, format_bytes
from bot.virtfusion import RESET_USERS

__all__ = [
    "ServerCall",
    "add_parsers",
    "cmd_audit",
    "cmd_backup_plan",
    "cmd_backups",
    "cmd_delete",
    "cmd_firewall",
    "cmd_ip",
    "cmd_owner",
    "cmd_password",
    "cmd_power",
    "cmd_rebuild",
    "cmd_rename",
    "cmd_resize",
    "cmd_suspend",
    "cmd_throttle",
    "cmd_traffic",
    "cmd_vnc",
]


@dataclass(frozen=True)
class ServerCall:
    """What a day-2 command works on: its arguments, the output, the services and the server."""

    args: argparse.Namespace
    out: Console
    servers: Servers
    server: ResolvedServer
    settings: Settings

    def say(self, text: str, code: int = EXIT_OK) -> int:
        """Print `text` as is (no rich markup) and return `code`."""
        self.out.print(text, markup=False)
        return code


def _on_server(command: Callable[[ServerCall], Awaitable[int]]) -> Command:
    """A command on the server `args.server` names, resolved (and checked to be vfbot's
    owner's) before `command` runs."""

    @functools.wraps(command)
    async def run(args: argparse.Namespace, out: Console) -> int:
        async with open_core(settings_of(args)) as core:
            resolved = await core.servers.resolver.resolve(args.server)
            return await command(ServerCall(args, out, core.servers, resolved, core.settings))

    return run


@_on_server
async def cmd_delete(call: ServerCall) -> int:
    """Delete a server (after a confirmation naming it, unless --yes)."""
    label, delay = call.server.label, call.args.delay
    refused = f"Not deleted. Add --yes to delete {label} without asking."
    if not await confirm(
        call.out,
        f"Delete {label}{f' in {delay} min' if delay else ''}? This cannot be undone.",
        yes=call.args.yes,
        refused=refused,
    ):
        return EXIT_FAILED
    deletes = call.servers.deletes
    operation = await deletes.request(
        call.server, requester=actor(), delay_min=delay, approval_required=False, ttl_s=0
    )
    done = await deletes.run(operation.id)
    code = EXIT_OK if done.state is OperationState.DONE else EXIT_FAILED
    return call.say(f"{done.human_id}: {done.result}", code)


@_on_server
async def cmd_suspend(call: ServerCall) -> int:
    """Suspend or unsuspend a server (`args.command` says which)."""
    actions = call.servers.actions
    change = actions.suspend if call.args.command == "suspend" else actions.unsuspend
    return call.say(await change(call.server, actor=actor()))


@_on_server
async def cmd_power(call: ServerCall) -> int:
    """Run a power action and follow it on the panel's queue."""
    action, label = call.args.action, call.server.label
    result = await call.servers.actions.power(call.server, action, actor=actor())
    if result.failed:
        reason = result.error or "no reason given"
        return call.say(f"{action} of {label} failed on the panel: {reason}", EXIT_FAILED)
    if not result.finished:
        return call.say(
            f"{action} of {label} is still running on the panel (queue task {result.queue_id}); "
            f"check later with `vfbot server {call.server.server_id} --remote`.",
            EXIT_FAILED,
        )
    return call.say(f"{action} of {label}: done.")


@_on_server
async def cmd_traffic(call: ServerCall) -> int:
    """This month's traffic of a server, in human units."""
    summary = await call.servers.inventory.traffic(call.server)
    month = _month(summary.month_start, summary.month_end)
    return call.say(
        f"Traffic of {call.server.label}{month}: {summary.usage_text()}\n"
        f"  in {format_bytes(summary.rx_bytes)}, out {format_bytes(summary.tx_bytes)}"
    )


def _month(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    until = f" to {end:%Y-%m-%d}" if end else ""
    return f" ({start:%Y-%m-%d}{until})"


@_on_server
async def cmd_vnc(call: ServerCall) -> int:
    """Enable or disable VNC; enabling prints the credentials to this terminal only."""
    enable = call.args.state == "enable"
    session = await call.servers.actions.vnc(call.server, enable=enable, actor=actor())
    if not enable:
        return call.say(f"VNC is disabled for {call.server.label}.")
    host = session.hostname or session.ip
    lines = [
        f"VNC is enabled for {call.server.label}. Keep these credentials to yourself:",
        f"  address   {host}:{session.port}" if session.port else f"  address   {host}",
        f"  password  {session.password.get_secret_value() if session.password else '-'}",
    ]
    if session.wss_url is not None:
        lines.append(f"  websocket {session.wss_url.get_secret_value()}")
    return call.say("\n".join(lines))


async def cmd_backup_plan(args: argparse.Namespace, out: Console) -> int:
    """Attach a backup plan to a server, or remove it with `none`."""
    _backup_plan_id(args.plan)  # a usage problem is reported before the server is looked up
    return await _set_backup_plan(args, out)


def _backup_plan_id(text: str) -> int | None:
    raw = text.strip().lower()
    if raw in ("none", "0", "off"):
        return None
    if raw.isascii() and raw.isdigit():  # "²".isdigit() is true too, and int() refuses it
        return int(raw)
    raise InvalidValueError(f"{text!r} is not a backup plan id; give a number or none.")


@_on_server
async def _set_backup_plan(call: ServerCall) -> int:
    plan_id = _backup_plan_id(call.args.plan)
    return call.say(await call.servers.actions.set_backup_plan(call.server, plan_id, actor=actor()))


@_on_server
async def cmd_owner(call: ServerCall) -> int:
    """Give a server to another VirtFusion user."""
    owner = call.args.user_id
    return call.say(await call.servers.actions.change_owner(call.server, owner, actor=actor()))


@_on_server
async def cmd_throttle(call: ServerCall) -> int:
    """Limit a server's CPU by a percentage (0 removes the limit)."""
    percent = call.args.percent
    return call.say(await call.servers.actions.throttle(call.server, percent, actor=actor()))


@_on_server
async def cmd_rebuild(call: ServerCall) -> int:
    """Reinstall the OS (asks first unless --yes), then follow it to built or failed."""
    rebuilds, label = call.servers.rebuilds, call.server.label
    params = await rebuilds.plan(call.server, call.args.template)
    refused = f"Not rebuilt. Add --yes to rebuild {label} without asking."
    question = f"Rebuild {label} with {params.what()}? This erases its disk."
    if not await confirm(call.out, question, yes=call.args.yes, refused=refused):
        return EXIT_FAILED
    operation = await rebuilds.request(
        call.server, params, requester=actor(), approval_required=False, ttl_s=0
    )
    run = await rebuilds.run(operation.id)
    if run.operation.state is OperationState.FAILED:
        return call.say(f"{operation.human_id}: {run.operation.result}", EXIT_FAILED)
    call.say(f"{operation.human_id}: OS install of {params.what()} started on the panel.")
    if run.password is not None:
        call.say(
            "New root password (shown once, keep it to yourself): "
            + run.password.get_secret_value()
        )
    elif run.unclear:
        call.say("The panel's answer was lost; vfbot follows the server instead.")
    done = await _follow_rebuild(call, operation)
    code = EXIT_OK if done.state is OperationState.DONE else EXIT_FAILED
    return call.say(f"{done.human_id}: {done.result or done.state.value}", code)


async def _follow_rebuild(call: ServerCall, operation: Operation) -> Operation:
    """Track the rebuild until it ends (VF_BUILD_TIMEOUT fails it), checking every
    VF_POLL_INTERVAL."""
    rebuilds, deletes = call.servers.rebuilds, call.servers.deletes
    while True:
        await rebuilds.track_due()
        current = await deletes.get(operation.id)
        if current.state not in (OperationState.BUILDING, OperationState.RUNNING):
            return current
        await asyncio.sleep(call.settings.vf_poll_interval)


@_on_server
async def cmd_resize(call: ServerCall) -> int:
    """Move a server to another package, or change its memory and CPU (asks unless --yes)."""
    args, resizes = call.args, call.servers.resizes
    plan = await resizes.plan(
        call.server, package_id=args.package, memory_mb=args.memory, cpu_cores=args.cpu
    )
    refused = f"Not resized. Add --yes to resize {call.server.label} without asking."
    question = f"Resize {call.server.label}: {plan.describe()}?"
    if not await confirm(call.out, question, yes=args.yes, refused=refused):
        return EXIT_FAILED
    operation = await resizes.request(plan, requester=actor(), approval_required=False, ttl_s=0)
    done = await resizes.run(operation.id)
    code = EXIT_OK if done.state is OperationState.DONE else EXIT_FAILED
    return call.say(f"{done.human_id}: {done.result}", code)


@_on_server
async def cmd_rename(call: ServerCall) -> int:
    """Give a server a new name; vfbot's records follow."""
    return call.say(await call.servers.changes.rename(call.server, call.args.name, actor=actor()))


@_on_server
async def cmd_password(call: ServerCall) -> int:
    """Reset the root (or Administrator) password; prints it in this terminal only."""
    result = await call.servers.changes.reset_password(
        call.server, actor=actor(), user=call.args.user
    )
    label, task = call.server.label, result.task
    if task.failed:
        reason = task.error or "no reason given"
        return call.say(f"The password reset of {label} failed on the panel: {reason}", EXIT_FAILED)
    state = (
        "is set"
        if task.finished
        else f"is being set (queue task {task.queue_id}; it may take a minute)"
    )
    return call.say(
        f"The {result.user} password of {label} {state}. Keep it to yourself:\n"
        f"  {result.password.get_secret_value()}"
    )


@_on_server
async def cmd_firewall(call: ServerCall) -> int:
    """Show the firewall, turn it on or off, or apply rulesets (off and rulesets ask first)."""
    changes, label, args = call.servers.changes, call.server.label, call.args
    if args.action is None:
        view = await changes.firewall(call.server)
        lines = [f"Firewall of {label}: {'on' if view.enabled else 'off'}"]
        lines += [f"  {rule}" for rule in view.rules] or ["  (no rules)"]
        return call.say("\n".join(lines))
    if args.action == "on":
        return call.say(await changes.set_firewall(call.server, enabled=True, actor=actor()))
    if args.action == "rulesets":
        rulesets = parse_rulesets(args.rulesets or "")
        what = f"replace every firewall rule of {label} with rulesets {args.rulesets}"
    else:
        rulesets = None
        what = f"turn the firewall of {label} off"
    refused = f"Not changed. Add --yes to {what} without asking."
    if not await confirm(call.out, f"{what.capitalize()}?", yes=args.yes, refused=refused):
        return EXIT_FAILED
    if rulesets is None:
        return call.say(await changes.set_firewall(call.server, enabled=False, actor=actor()))
    return call.say(await changes.apply_rulesets(call.server, rulesets, actor=actor()))


@_on_server
async def cmd_ip(call: ServerCall) -> int:
    """Add IPv4 addresses, or remove one (asks first; the last address asks twice)."""
    changes, label, args = call.servers.changes, call.server.label, call.args
    if args.action == "add":
        quantity = _count(args.value)
        change = await changes.add_ipv4(call.server, quantity, actor=actor())
        return call.say(
            f"Added to {label}: {', '.join(change.added) or '(the panel listed none)'}. "
            f"It now has {', '.join(change.addresses) or 'no IPv4 address'}."
        )
    if args.value is None:
        raise InvalidValueError("Name the address to remove: vfbot ip SERVER remove ADDR.")
    refused = f"Not removed. Add --yes to remove {args.value} from {label} without asking."
    if not await confirm(
        call.out,
        f"Remove {args.value} from {label}?",
        yes=args.yes >= 1,
        refused=refused,
    ):
        return EXIT_FAILED
    try:
        change = await changes.remove_ipv4(call.server, args.value, actor=actor())
    except LastAddressError as error:
        again = f"{error} Not removed: give --yes twice to remove it anyway."
        if not await confirm(
            call.out,
            f"{error} Remove it anyway?",
            yes=args.yes >= 2,
            no_terminal=again,
            refused="Not removed.",
        ):
            return EXIT_FAILED
        change = await changes.remove_ipv4(
            call.server, args.value, actor=actor(), last_confirmed=True
        )
    left = ", ".join(change.addresses) or "no IPv4 address"
    return call.say(f"Removed {args.value} from {label}; it now has {left}.")


def _count(text: str | None) -> int:
    if text is None:
        return 1
    if not (text.isascii() and text.isdigit()):
        raise InvalidValueError(
            f"{text!r} is not a number of addresses; e.g. vfbot ip web-1 add 2."
        )
    return int(text)


@_on_server
async def cmd_backups(call: ServerCall) -> int:
    """A server's backups; the API cannot create or restore one."""
    listing = await call.servers.changes.backups(call.server)
    table = Table(title=f"Backups of {call.server.label} (plan: {listing.plan or 'none'})")
    for column in ("Id", "Taken (UTC)", "State", "Storage", "Deleted after (UTC)"):
        table.add_column(column)
    for backup in listing.backups:
        table.add_row(
            str(backup.id),
            f"{backup.created:%Y-%m-%d %H:%M}" if backup.created else "-",
            backup.state,
            backup.storage or "-",
            f"{backup.delete_after:%Y-%m-%d %H:%M}" if backup.delete_after else "-",
        )
    if listing.backups:
        call.out.print(table)
    else:
        call.say(f"{call.server.label} has no backups.")
    return call.say(
        "The VirtFusion API cannot take or restore a backup: do that in the panel. "
        "`vfbot backup-plan` sets the plan that takes them."
    )


async def cmd_audit(args: argparse.Namespace, out: Console) -> int:
    """The newest audit entries."""
    async with open_core(settings_of(args)) as core:
        entries = await core.servers.inventory.recent_audit(args.n)
    table = Table(title=f"Last {len(entries)} audit entries")
    for column in ("At (UTC)", "Actor", "Action", "Target", "Result", "Detail"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            entry.actor,
            entry.action,
            entry.target,
            entry.result,
            json.dumps(entry.detail, sort_keys=True, default=str) if entry.detail else "",
        )
    out.print(table)
    return EXIT_OK


def _delay(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("the delay is a whole number of minutes") from None
    if not 0 <= value <= MAX_DELETE_DELAY_MIN:
        raise argparse.ArgumentTypeError(f"the delay must be 0 to {MAX_DELETE_DELAY_MIN} minutes")
    return value


def add_parsers(add_parser: AddParser) -> None:
    """Add the day-2 commands to `vfbot`'s sub-commands."""

    def on_server(name: str, text: str, run: Command) -> argparse.ArgumentParser:
        parser = add_parser(name, help=text)
        parser.add_argument(
            "server", help="server name (as vfbot named it) or VirtFusion server id"
        )
        parser.set_defaults(run=run)
        return parser

    delete = on_server("delete", "delete a server (asks first unless --yes)", cmd_delete)
    delete.add_argument(
        "--delay", type=_delay, default=0, metavar="MIN", help="minutes before deletion"
    )
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    on_server("suspend", "suspend a server", cmd_suspend)
    on_server("unsuspend", "lift a suspension", cmd_suspend)
    power = on_server("power", "boot, shutdown, restart or power off a server", cmd_power)
    power.add_argument("action", choices=POWER_ACTIONS)
    on_server("traffic", "this month's traffic of a server", cmd_traffic)
    vnc = on_server("vnc", "enable (prints credentials here) or disable VNC", cmd_vnc)
    vnc.add_argument("state", choices=("enable", "disable"))
    backup = on_server(
        "backup-plan", "set a server's backup plan (none removes it)", cmd_backup_plan
    )
    backup.add_argument("plan", metavar="PLAN|none")
    owner = on_server("owner", "give a server to another VirtFusion user", cmd_owner)
    owner.add_argument("user_id", type=int, metavar="USER_ID")
    throttle = on_server("throttle", "limit a server's CPU by PERCENT (0-99)", cmd_throttle)
    throttle.add_argument("percent", type=int)

    rebuild = on_server("rebuild", "reinstall a server's OS (asks first unless --yes)", cmd_rebuild)
    rebuild.add_argument(
        "template", nargs="?", help="OS template name or id (default: the current one)"
    )
    rebuild.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    resize = on_server(
        "resize", "another package, or new memory/CPU (asks unless --yes)", cmd_resize
    )
    resize.add_argument("--package", type=int, metavar="ID", help="move to this package")
    resize.add_argument("--memory", type=int, metavar="MB", help="new memory in MB")
    resize.add_argument("--cpu", type=int, metavar="N", help="new number of CPU cores")
    resize.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rename = on_server("rename", "give a server a new name", cmd_rename)
    rename.add_argument("name", metavar="NAME")
    password = on_server("password", "reset the root password (printed here only)", cmd_password)
    password.add_argument("--user", choices=RESET_USERS, default="root")
    firewall = on_server("firewall", "show, turn on/off, or apply rulesets", cmd_firewall)
    firewall.add_argument("action", nargs="?", choices=("on", "off", "rulesets"))
    firewall.add_argument("rulesets", nargs="?", metavar="IDS", help="e.g. 2,3 (none: remove all)")
    firewall.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    ip = on_server("ip", "add IPv4 addresses or remove one", cmd_ip)
    ip.add_argument("action", choices=("add", "remove"))
    ip.add_argument("value", nargs="?", metavar="N|ADDR", help="how many to add, or the address")
    ip.add_argument(
        "--yes", action="count", default=0, help="do not ask (twice for the last address)"
    )
    on_server("backups", "list a server's backups", cmd_backups)

    audit = add_parser("audit", help="recent audit log entries")
    audit.add_argument("-n", type=int, default=20, help="how many (default 20)")
    audit.set_defaults(run=cmd_audit)
