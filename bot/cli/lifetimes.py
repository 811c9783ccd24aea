"""`vfbot extend` and `vfbot expiring`: server lifetimes from the command line.

The operator is trusted as for deletes: VF_MAX_LIFETIME does not bound an extension here.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from bot.cli.common import EXIT_OK, AddParser, actor, open_core, settings_of
from bot.provisioning.durations import format_duration, parse_lifetime
from bot.provisioning.errors import InvalidValueError
from bot.provisioning.model import parse_human_id

__all__ = ["add_parsers", "cmd_expiring", "cmd_extend"]

_EVERY_EXPIRY_S = 10 * 365 * 86400.0


def _duration(text: str) -> float:
    try:
        return parse_lifetime(text).total_seconds()
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} {error}") from None


async def cmd_extend(args: argparse.Namespace, out: Console) -> int:
    """Push the expiry of one server, or of every built server of `VF-n`, further."""
    async with open_core(settings_of(args)) as core:
        expiry = core.servers.expiry
        target = args.target
        request_id = parse_human_id(target) if target.upper().startswith("VF-") else None
        if request_id is not None:
            await core.requests.get(request_id)  # UnknownRequestError names it
            instances = await expiry.instances_of(request_id)
            if not instances:
                raise InvalidValueError(
                    f"VF-{request_id} has no built server whose lifetime can change."
                )
        else:
            instances = await expiry.instances_of(await core.servers.resolver.resolve(target))
        now = core.clock()
        for instance in instances:
            extended = await expiry.extend(instance, args.duration, actor=actor(), admin=True)
            left = (extended.expires_at - now).total_seconds() if extended.expires_at else 0
            out.print(
                f"{extended.name} (server {extended.server_id}) now expires at "
                f"{extended.expires_at:%Y-%m-%d %H:%M:%S} UTC (in {format_duration(left)}).",
                markup=False,
            )
    return EXIT_OK


async def cmd_expiring(args: argparse.Namespace, out: Console) -> int:
    """Servers that have an expiry, soonest first."""
    async with open_core(settings_of(args)) as core:
        rows = await core.servers.expiry.expiring(within_s=_EVERY_EXPIRY_S)
        now = core.clock()
    if not rows:
        out.print("No server has an expiry.")
        return EXIT_OK
    table = Table(title=f"{len(rows)} server(s) with an expiry")
    for column in ("Expires (UTC)", "In", "Server", "Name", "Request", "Requester"):
        table.add_column(column)
    for row in rows:
        left = (row.expires_at - now).total_seconds()
        table.add_row(
            f"{row.expires_at:%Y-%m-%d %H:%M:%S}",
            format_duration(left) if left > 0 else "expired",
            str(row.instance.server_id),
            row.instance.name,
            row.instance.human_request_id,
            row.requester or "",
        )
    out.print(table)
    return EXIT_OK


def add_parsers(add_parser: AddParser) -> None:
    """Add `extend` and `expiring` to `vfbot`'s sub-commands."""
    extend = add_parser("extend", help="push a server's expiry further (or a request's)")
    extend.add_argument("target", metavar="SERVER|VF-n", help="server name or id, or VF-n")
    extend.add_argument("duration", type=_duration, metavar="DURATION", help="e.g. 4h, 3d")
    extend.set_defaults(run=cmd_extend)
    expiring = add_parser("expiring", help="servers that expire, soonest first")
    expiring.set_defaults(run=cmd_expiring)
