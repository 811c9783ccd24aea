"""`vfbot check`, `hypervisors`, `servers`, `server` and `sandbox`: the panel, read straight
through the client (no database)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    AddParser,
    check_step_text,
    make_client,
    settings_of,
)
from bot.provisioning.servers.checks import check_panel
from bot.provisioning.servers.inventory import TemplateNames, hypervisor_groups
from bot.provisioning.servers.model import HypervisorGroupRow
from bot.virtfusion import NotFoundError

__all__ = [
    "add_parsers",
    "add_sandbox_parser",
    "cmd_check",
    "cmd_hypervisors",
    "cmd_sandbox",
    "cmd_server",
    "cmd_servers",
    "render_groups_table",
]


async def cmd_check(args: argparse.Namespace, out: Console) -> int:
    """Connection test: config, /connect, compute scope, the configured user/package/group."""
    from bot.factories import engine_defaults

    settings = settings_of(args)
    out.print(f"[green]✓[/] configuration loaded (panel {settings.panel_api_url})")
    async with make_client(settings) as client:
        steps = await check_panel(client, engine_defaults(settings))
    for step in steps:
        text = escape(check_step_text(step))
        if not step.passed:
            out.print(f"[red]✗[/] {step.label}: {text}", highlight=False)
            return EXIT_FAILED
        out.print(f"[green]✓[/] {step.label}" if not text else f"[yellow]![/] {step.label}: {text}")
    out.print("[bold green]The panel is reachable and vfbot is ready to use it.[/]")
    return EXIT_OK


async def cmd_hypervisors(args: argparse.Namespace, out: Console) -> int:
    """Hypervisor groups with their free capacity, and the hypervisors in each."""
    async with make_client(settings_of(args)) as client:
        rows = await hypervisor_groups(client)
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
    settings = settings_of(args)
    async with make_client(settings) as client:
        if args.all:
            servers = [s async for s in client.servers()]
        else:
            servers = await client.user_servers(settings.virtfusion_user_id)
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
    from bot.factories import utcnow

    settings = settings_of(args)
    async with make_client(settings) as client:
        try:
            server = await client.server(args.id, remote_state=args.remote)
        except NotFoundError:
            out.print(f"[red]Server {args.id} does not exist on the panel.[/] See `vfbot servers`.")
            return EXIT_FAILED
        names = TemplateNames(client, settings.virtfusion_package_id, utcnow)
        os_name = await names.label(server.os_template_id)
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
        ("OS", os_name or "-"),
        ("Suspended", "yes" if server.suspended else "no"),
    ]
    if args.remote:
        # Unknown unless remoteState proves it: the spec documents no answer beyond `false`.
        running = {True: "yes", False: "no", None: "unknown (the panel's answer did not say)"}
        rows.append(("Running", running[server.running]))
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)
    return EXIT_OK


async def cmd_sandbox(args: argparse.Namespace, out: Console) -> int:
    """Run the sandbox panel until interrupted."""
    from bot.sandbox import BuildTiming, PanelState, serve  # only this command needs aiohttp.web

    state = PanelState(
        token=args.token,
        timing=BuildTiming(queued_s=args.queued_seconds, build_s=args.build_seconds),
    )
    out.print(
        f"Sandbox VirtFusion panel on http://{args.host}:{args.port}/api/v1 "
        f"(token {args.token!r}; demo data only). Press Ctrl+C to stop."
    )
    await serve(
        args.host, args.port, state, webhook_url=args.webhook_url, webhook_token=args.webhook_token
    )
    return EXIT_OK


def add_parsers(add_parser: AddParser) -> None:
    """Add `check`, `hypervisors`, `servers` and `server` to `vfbot`'s sub-commands."""
    add_parser("check", help="test the panel connection and configuration").set_defaults(
        run=cmd_check
    )
    add_parser("hypervisors", help="hypervisor groups, capacity and hypervisors").set_defaults(
        run=cmd_hypervisors
    )
    servers = add_parser("servers", help="servers owned by VIRTFUSION_USER_ID")
    servers.add_argument("--all", action="store_true", help="every server on the panel")
    servers.set_defaults(run=cmd_servers)
    server = add_parser("server", help="one server in detail")
    server.add_argument("id", type=int, help="VirtFusion server id")
    server.add_argument("--remote", action="store_true", help="ask the hypervisor for power state")
    server.set_defaults(run=cmd_server)


def add_sandbox_parser(add_parser: AddParser) -> None:
    """Add `sandbox` (listed last in `vfbot --help`)."""
    sandbox = add_parser("sandbox", help="run a fake VirtFusion panel for trying vfbot")
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--token", default="sandbox-token", help="API token the sandbox accepts")
    sandbox.add_argument("--queued-seconds", type=float, default=2.0)
    sandbox.add_argument("--build-seconds", type=float, default=8.0)
    sandbox.add_argument(
        "--webhook-url",
        help="send the panel's webhooks here, e.g. http://127.0.0.1:3000/virtfusion/webhook",
    )
    sandbox.add_argument(
        "--webhook-token", help="the webhook's token (vfbot's VIRTFUSION_WEBHOOK_TOKEN)"
    )
    sandbox.set_defaults(run=cmd_sandbox)
