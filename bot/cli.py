"""The `vfbot` command line: argument parsing, output and exit codes; the CLI's error edge.

Exit codes: 0 success, 1 the panel or the operation failed, 2 configuration or usage problem,
3 partial failure (some servers of a request failed), 4 internal error (logged with a reference).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table

from bot import __version__
from bot.app import (
    Runtime,
    SlackSetupError,
    engine_defaults,
    make_client,
    slack_problems,
    slack_secrets,
)
from bot.cli_engine import (
    cmd_cancel,
    cmd_create,
    cmd_requests,
    cmd_status,
    cmd_worker,
)
from bot.cli_ops import add_parsers as add_ops_parsers
from bot.config import ConfigError, Settings, load_settings
from bot.provisioning.operations import check_panel, explain_panel_error, hypervisor_groups
from bot.provisioning.ops_model import HypervisorGroupRow
from bot.redact import configure_logging
from bot.virtfusion import (
    NotFoundError,
    VirtFusionError,
)

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_PARTIAL", "main"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_PARTIAL, EXIT_INTERNAL = 0, 1, 2, 3, 4

logger = logging.getLogger("bot.cli")

Command = Callable[[argparse.Namespace, Console], Coroutine[None, None, int]]


# -- commands -----------------------------------------------------------------------------------


async def cmd_check(args: argparse.Namespace, out: Console) -> int:
    """Connection test: config, /connect, compute scope, the configured user/package/group."""
    settings = _settings(args)
    out.print(f"[green]✓[/] configuration loaded (panel {settings.panel_api_url})")
    async with make_client(settings) as client:
        steps = await check_panel(client, engine_defaults(settings))
    for label, passed, detail in steps:
        if not passed:
            out.print(f"[red]✗[/] {label}: {detail}", highlight=False)
            return EXIT_FAILED
        out.print(f"[green]✓[/] {label}" if not detail else f"[yellow]![/] {label}: {detail}")
    out.print("[bold green]The panel is reachable and vfbot is ready to use it.[/]")
    return EXIT_OK


async def cmd_hypervisors(args: argparse.Namespace, out: Console) -> int:
    """Hypervisor groups with their free capacity, and the hypervisors in each."""
    settings = _settings(args)
    async with make_client(settings) as client:
        try:
            rows = await hypervisor_groups(client)
        except VirtFusionError as error:
            out.print(f"[red]{explain_panel_error(error)}[/]")
            return EXIT_FAILED
    out.print(render_groups_table(rows))
    return EXIT_OK


def render_groups_table(rows: Sequence[HypervisorGroupRow]) -> Table:
    """A table of groups (capacity) and their hypervisors (state)."""
    table = Table(title="Hypervisor groups")
    for column in ("Group", "ID", "Hypervisors", "Free memory", "Free disk", "Free IPv4"):
        table.add_column(column, justify="right" if column != "Group" else "left")
    for row in rows:
        table.add_row(
            row.name + (" [dim](default)[/]" if row.default else ""),
            str(row.group_id),
            ", ".join(row.hypervisors) or "-",
            f"{row.memory_free_mb:,} MB",
            f"{row.storage_free_gb:,} GB",
            str(row.ipv4_free),
        )
    return table


async def cmd_servers(args: argparse.Namespace, out: Console) -> int:
    """Servers owned by VIRTFUSION_USER_ID (or every server with --all)."""
    settings = _settings(args)
    async with make_client(settings) as client:
        try:
            if args.all:
                servers = [s async for s in client.servers()]
            else:
                servers = await client.user_servers(settings.virtfusion_user_id)
        except VirtFusionError as error:
            out.print(f"[red]{explain_panel_error(error)}[/]")
            return EXIT_FAILED
    table = Table(title=f"{len(servers)} servers")
    for column in ("ID", "Name", "Phase", "IPv4", "Owner", "Suspended"):
        table.add_column(column)
    for server in servers:
        table.add_row(
            str(server.id),
            server.name or "[dim](unnamed)[/]",
            server.phase.value,
            server.primary_ipv4 or "-",
            str(server.owner_id or "-"),
            "yes" if server.suspended else "no",
        )
    out.print(table)
    return EXIT_OK


async def cmd_server(args: argparse.Namespace, out: Console) -> int:
    """One server in detail."""
    settings = _settings(args)
    async with make_client(settings) as client:
        try:
            server = await client.server(args.id, remote_state=args.remote)
        except NotFoundError:
            out.print(f"[red]Server {args.id} does not exist on the panel.[/] See `vfbot servers`.")
            return EXIT_FAILED
        except VirtFusionError as error:
            out.print(f"[red]{explain_panel_error(error)}[/]")
            return EXIT_FAILED
    table = Table(show_header=False, title=f"Server {server.id}")
    res = server.resources
    rows = [
        ("Name", server.name or "(unnamed: not built yet)"),
        ("Hostname", server.hostname or "-"),
        ("Phase", server.phase.value),
        ("State", server.state or "-"),
        ("Hypervisor", f"{server.hypervisor.name if server.hypervisor else server.hypervisor_id}"),
        ("Group", server.group_name or "-"),
        ("IPv4", ", ".join(server.ipv4) or "-"),
        ("IPv6", ", ".join(server.ipv6) or "-"),
        ("Memory", f"{res.memory_mb} MB" if res and res.memory_mb else "-"),
        ("Disk", f"{res.storage_gb} GB" if res and res.storage_gb else "-"),
        ("CPU cores", str(res.cpu_cores) if res and res.cpu_cores else "-"),
        ("OS", server.os_name or "-"),
        ("Suspended", "yes" if server.suspended else "no"),
    ]
    if args.remote:
        running = "unknown" if server.running is None else "yes" if server.running else "no"
        rows.append(("Running", running))
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    return EXIT_OK


async def cmd_serve(args: argparse.Namespace, out: Console) -> int:
    """The Slack app, the engine and the notifier, until SIGTERM or Ctrl+C."""
    settings = _settings(args)
    problems = slack_problems(settings)
    if problems:
        print(
            ConfigError(problems),
            "\nSlack app setup, step by step: docs/slack-setup.md (README, 'Slack app').",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    runtime = Runtime(settings)
    try:
        await runtime.start()
    except SlackSetupError as error:
        print(f"{error}\nSlack app setup, step by step: docs/slack-setup.md.", file=sys.stderr)
        return EXIT_CONFIG
    mode = (
        "Socket Mode"
        if settings.slack_app_token is not None
        else f"HTTP mode on port {runtime.bound_port} (POST /slack/events)"
    )
    out.print(
        f"vfbot serve: {mode}; health on /healthz and /readyz. Ctrl+C or SIGTERM stops it.",
        markup=False,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        out.print("vfbot serve: stopping (finishing work in flight)…", markup=False)
        await runtime.stop()
    return EXIT_OK


async def cmd_sandbox(args: argparse.Namespace, out: Console) -> int:
    """Run the sandbox panel until interrupted."""
    from bot.sandbox import BuildTiming, PanelState, serve

    state = PanelState(
        token=args.token,
        timing=BuildTiming(queued_s=args.queued_seconds, build_s=args.build_seconds),
    )
    out.print(
        f"Sandbox VirtFusion panel on http://{args.host}:{args.port}/api/v1 "
        f"(token {args.token!r}; demo data only). Press Ctrl+C to stop."
    )
    await serve(args.host, args.port, state)
    return EXIT_OK


# -- plumbing -----------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    settings = args.settings
    if not isinstance(settings, Settings):
        raise ConfigError(["this command needs the VIRTFUSION_* settings"])
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfbot", description="Create and run VirtFusion servers from Slack and the shell."
    )
    parser.add_argument("--version", action="version", version=f"vfbot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("check", help="test the panel connection and configuration").set_defaults(
        run=cmd_check
    )
    sub.add_parser("hypervisors", help="hypervisor groups, capacity and hypervisors").set_defaults(
        run=cmd_hypervisors
    )
    servers = sub.add_parser("servers", help="servers owned by VIRTFUSION_USER_ID")
    servers.add_argument("--all", action="store_true", help="every server on the panel")
    servers.set_defaults(run=cmd_servers)
    server = sub.add_parser("server", help="one server in detail")
    server.add_argument("id", type=int, help="VirtFusion server id")
    server.add_argument("--remote", action="store_true", help="ask the hypervisor for power state")
    server.set_defaults(run=cmd_server)

    create = sub.add_parser("create", help="create servers from a request JSON file")
    create.add_argument("-f", "--file", required=True, help="request file (- for stdin)")
    create.add_argument("--dry-run", action="store_true", help="plan and validate, create nothing")
    create.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    create.add_argument("--wait", action="store_true", help="run the build here until it ends")
    create.set_defaults(run=cmd_create)
    requests = sub.add_parser("requests", help="recent requests")
    requests.add_argument("--limit", type=int, default=20)
    requests.set_defaults(run=cmd_requests)
    status = sub.add_parser("status", help="one request (VF-n) and its servers")
    status.add_argument("request", help="request id, e.g. VF-12")
    status.set_defaults(run=cmd_status)
    cancel = sub.add_parser("cancel", help="stop a request: nothing new is created")
    cancel.add_argument("request", help="request id, e.g. VF-12")
    cancel.add_argument("--delete", action="store_true", help="also delete its servers")
    cancel.set_defaults(run=cmd_cancel)
    worker = sub.add_parser("worker", help="run the provisioning engine without Slack")
    worker.add_argument("--until-idle", action="store_true", help="exit when no work is left")
    worker.set_defaults(run=cmd_worker)
    add_ops_parsers(sub.add_parser)

    sub.add_parser("serve", help="run the Slack app with the engine").set_defaults(run=cmd_serve)

    sandbox = sub.add_parser("sandbox", help="run a fake VirtFusion panel for trying vfbot")
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--token", default="sandbox-token", help="API token the sandbox accepts")
    sandbox.add_argument("--queued-seconds", type=float, default=2.0)
    sandbox.add_argument("--build-seconds", type=float, default=8.0)
    sandbox.set_defaults(run=cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Entry point of the `vfbot` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    out = Console(file=stdout or sys.stdout, highlight=False, soft_wrap=True)
    level = "DEBUG" if args.verbose else "WARNING"
    secrets: list[str] = []
    try:
        settings = load_settings() if args.command != "sandbox" else None
        if settings is not None:
            secrets.extend(slack_secrets(settings))
            level = "DEBUG" if args.verbose else settings.log_level
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    args.settings = settings
    configure_logging(level, secrets)
    command: Command = args.run
    try:
        return asyncio.run(command(args, out))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception:  # the CLI's error edge: log with a reference the user can quote
        reference = uuid.uuid4().hex[:8]
        logger.exception("vfbot %s failed (reference %s)", args.command, reference)
        print(f"vfbot {args.command} failed unexpectedly (reference {reference}).", file=sys.stderr)
        return EXIT_INTERNAL
