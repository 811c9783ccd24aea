"""`vfbot delete`, `suspend`, `power`, `traffic`, `vnc`, `backup-plan`, `owner`, `throttle` and
`audit`: day-2 work on servers that exist.

The CLI operator is trusted: a delete needs no Slack approval, only a confirmation (or --yes).
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.table import Table

from bot.app import open_core
from bot.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    AddParser,
    Command,
    actor,
    confirm,
    settings_of,
)
from bot.provisioning.errors import InvalidValueError
from bot.provisioning.model import OperationState
from bot.provisioning.servers import MAX_DELETE_DELAY_MIN, POWER_ACTIONS, Servers
from bot.provisioning.servers.model import ResolvedServer, format_bytes

__all__ = [
    "ServerCall",
    "add_parsers",
    "cmd_audit",
    "cmd_backup_plan",
    "cmd_delete",
    "cmd_owner",
    "cmd_power",
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
            return await command(ServerCall(args, out, core.servers, resolved))

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
        no_terminal=refused,
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

    audit = add_parser("audit", help="recent audit log entries")
    audit.add_argument("-n", type=int, default=20, help="how many (default 20)")
    audit.set_defaults(run=cmd_audit)
