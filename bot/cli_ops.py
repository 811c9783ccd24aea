"""CLI commands for day-2 operations: delete, suspend, power, traffic, VNC, settings, audit.

The CLI operator is trusted: a delete needs no Slack approval, only a confirmation (or --yes).
Exit codes as in `bot.cli`: 0 success, 1 the panel or the operation failed, 2 usage problem.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime

from rich.console import Console
from rich.table import Table

from bot.app import open_operations
from bot.config import ConfigError, Settings
from bot.provisioning.errors import InvalidValueError, ProvisioningError
from bot.provisioning.operations import (
    MAX_DELETE_DELAY_MIN,
    POWER_ACTIONS,
    OperationsService,
    ResolvedServer,
    explain_panel_error,
)
from bot.provisioning.ops_model import OperationState, TrafficSummary, format_bytes
from bot.virtfusion import VirtFusionError

__all__ = ["add_parsers", "format_bytes", "traffic_text"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

Action = Callable[[OperationsService, ResolvedServer, str], Awaitable[int]]


def traffic_text(summary: TrafficSummary) -> str:
    """``12.3 GiB of 1,000 GB (1.2 %)``, or ``… (unlimited)``."""
    return summary.usage_text()


def _settings(args: argparse.Namespace) -> Settings:
    settings = args.settings
    if not isinstance(settings, Settings):
        raise ConfigError(["this command needs the VIRTFUSION_* settings"])
    return settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


async def _on_server(args: argparse.Namespace, out: Console, action: Action) -> int:
    """Resolve `args.server`, run `action`, and turn expected errors into a line and a code."""
    async with open_operations(_settings(args)) as ops:
        try:
            resolved = await ops.resolve(args.server)
            return await action(ops, resolved, _actor())
        except InvalidValueError as error:
            out.print(str(error), markup=False)
            return EXIT_CONFIG
        except ProvisioningError as error:
            out.print(str(error), markup=False)
            return EXIT_FAILED
        except VirtFusionError as error:
            out.print(explain_panel_error(error), markup=False)
            return EXIT_FAILED


async def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


# -- commands ------------------------------------------------------------------------------------


async def cmd_delete(args: argparse.Namespace, out: Console) -> int:
    """Delete a server (after a confirmation naming it, unless --yes)."""

    async def delete(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        if not args.yes:
            when = f" in {args.delay} min" if args.delay else ""
            if not await _confirm(f"Delete {resolved.label}{when}? This cannot be undone."):
                out.print(
                    f"Not deleted. Add --yes to delete {resolved.label} without asking.",
                    markup=False,
                )
                return EXIT_FAILED
        operation = await ops.request_delete(
            resolved, requester=actor, delay_min=args.delay, approval_required=False, ttl_s=0
        )
        done = await ops.run_operation(operation.id)
        out.print(f"{done.human_id}: {done.result}", markup=False)
        return EXIT_OK if done.state is OperationState.DONE else EXIT_FAILED

    return await _on_server(args, out, delete)


async def cmd_suspend(args: argparse.Namespace, out: Console) -> int:
    """Suspend or unsuspend a server (`args.command` says which)."""

    async def act(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        if args.command == "suspend":
            text = await ops.suspend(resolved, actor=actor)
        else:
            text = await ops.unsuspend(resolved, actor=actor)
        out.print(text, markup=False)
        return EXIT_OK

    return await _on_server(args, out, act)


async def cmd_power(args: argparse.Namespace, out: Console) -> int:
    """Run a power action and follow it on the panel's queue."""

    async def act(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        result = await ops.power(resolved, args.action, actor=actor)
        if result.failed:
            out.print(
                f"{args.action} of {resolved.label} failed on the panel: "
                f"{result.error or 'no reason given'}",
                markup=False,
            )
            return EXIT_FAILED
        if not result.finished:
            out.print(
                f"{args.action} of {resolved.label} is still running on the panel (queue task "
                f"{result.queue_id}); check later with `vfbot server {resolved.server_id} "
                "--remote`.",
                markup=False,
            )
            return EXIT_FAILED
        out.print(f"{args.action} of {resolved.label}: done.", markup=False)
        return EXIT_OK

    return await _on_server(args, out, act)


async def cmd_traffic(args: argparse.Namespace, out: Console) -> int:
    """This month's traffic of a server, in human units."""

    async def act(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        summary = await ops.traffic(resolved)
        month = _month(summary.month_start, summary.month_end)
        out.print(f"Traffic of {resolved.label}{month}: {traffic_text(summary)}", markup=False)
        out.print(
            f"  in {format_bytes(summary.rx_bytes)}, out {format_bytes(summary.tx_bytes)}",
            markup=False,
        )
        return EXIT_OK

    return await _on_server(args, out, act)


def _month(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    until = f" to {end:%Y-%m-%d}" if end else ""
    return f" ({start:%Y-%m-%d}{until})"


async def cmd_vnc(args: argparse.Namespace, out: Console) -> int:
    """Enable or disable VNC; enabling prints the credentials to this terminal only."""

    async def act(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        enable = args.state == "enable"
        session = await ops.vnc(resolved, enable=enable, actor=actor)
        if not enable:
            out.print(f"VNC is disabled for {resolved.label}.", markup=False)
            return EXIT_OK
        host = session.hostname or session.ip
        lines = [
            f"VNC is enabled for {resolved.label}. Keep these credentials to yourself:",
            f"  address   {host}:{session.port}" if session.port else f"  address   {host}",
            f"  password  {session.password.get_secret_value() if session.password else '-'}",
        ]
        if session.wss_url is not None:
            lines.append(f"  websocket {session.wss_url.get_secret_value()}")
        out.print("\n".join(lines), markup=False)
        return EXIT_OK

    return await _on_server(args, out, act)


async def cmd_backup_plan(args: argparse.Namespace, out: Console) -> int:
    """Attach a backup plan to a server, or remove it with `none`."""
    raw = str(args.plan).strip().lower()
    if raw in ("none", "0", "off"):
        plan_id: int | None = None
    elif raw.isdigit():
        plan_id = int(raw)
    else:
        out.print(f"{args.plan!r} is not a backup plan id; give a number or none.", markup=False)
        return EXIT_CONFIG

    async def act(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        out.print(await ops.set_backup_plan(resolved, plan_id, actor=actor), markup=False)
        return EXIT_OK

    return await _on_server(args, out, act)


async def cmd_owner(args: argparse.Namespace, out: Console) -> int:
    """Give a server to another VirtFusion user."""

    async def act(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        out.print(await ops.change_owner(resolved, args.user_id, actor=actor), markup=False)
        return EXIT_OK

    return await _on_server(args, out, act)


async def cmd_throttle(args: argparse.Namespace, out: Console) -> int:
    """Limit a server's CPU by a percentage (0 removes the limit)."""

    async def act(ops: OperationsService, resolved: ResolvedServer, actor: str) -> int:
        out.print(await ops.throttle(resolved, args.percent, actor=actor), markup=False)
        return EXIT_OK

    return await _on_server(args, out, act)


async def cmd_audit(args: argparse.Namespace, out: Console) -> int:
    """The newest audit entries."""
    async with open_operations(_settings(args)) as ops:
        entries = await ops.recent_audit(args.n)
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


# -- parser --------------------------------------------------------------------------------------


def _delay(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("the delay is a whole number of minutes") from None
    if not 0 <= value <= MAX_DELETE_DELAY_MIN:
        raise argparse.ArgumentTypeError(f"the delay must be 0 to {MAX_DELETE_DELAY_MIN} minutes")
    return value


def add_parsers(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the day-2 commands through `add_parser` (the `add_parser` of `vfbot`'s sub-commands)."""
    server_help = "server name (as vfbot named it) or VirtFusion server id"

    delete = add_parser("delete", help="delete a server (asks first unless --yes)")
    delete.add_argument("server", help=server_help)
    delete.add_argument(
        "--delay", type=_delay, default=0, metavar="MIN", help="minutes before deletion"
    )
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=cmd_delete)

    for name, text in (("suspend", "suspend a server"), ("unsuspend", "lift a suspension")):
        parser = add_parser(name, help=text)
        parser.add_argument("server", help=server_help)
        parser.set_defaults(run=cmd_suspend)

    power = add_parser("power", help="boot, shutdown, restart or power off a server")
    power.add_argument("server", help=server_help)
    power.add_argument("action", choices=POWER_ACTIONS)
    power.set_defaults(run=cmd_power)

    traffic = add_parser("traffic", help="this month's traffic of a server")
    traffic.add_argument("server", help=server_help)
    traffic.set_defaults(run=cmd_traffic)

    vnc = add_parser("vnc", help="enable (prints credentials here) or disable VNC")
    vnc.add_argument("server", help=server_help)
    vnc.add_argument("state", choices=("enable", "disable"))
    vnc.set_defaults(run=cmd_vnc)

    backup = add_parser("backup-plan", help="set a server's backup plan (none removes it)")
    backup.add_argument("server", help=server_help)
    backup.add_argument("plan", metavar="PLAN|none")
    backup.set_defaults(run=cmd_backup_plan)

    owner = add_parser("owner", help="give a server to another VirtFusion user")
    owner.add_argument("server", help=server_help)
    owner.add_argument("user_id", type=int, metavar="USER_ID")
    owner.set_defaults(run=cmd_owner)

    throttle = add_parser("throttle", help="limit a server's CPU by PERCENT (0-99)")
    throttle.add_argument("server", help=server_help)
    throttle.add_argument("percent", type=int)
    throttle.set_defaults(run=cmd_throttle)

    audit = add_parser("audit", help="recent audit log entries")
    audit.add_argument("-n", type=int, default=20, help="how many (default 20)")
    audit.set_defaults(run=cmd_audit)
