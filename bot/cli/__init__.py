"""The `vfbot` command line: the parser, settings and logging set-up, and the CLI's error edge.

One module per command group: ``panel`` (check, hypervisors, servers, server, sandbox),
``requests`` (create, requests, status, cancel, worker), ``servers`` (day-2 commands), ``db``
(upgrade, current, backup) and ``serve``; what they share (exit codes, settings, actor, confirm,
error wording) is in ``common``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console

from bot import __version__
from bot.cli import common, db, lifetimes, panel, requests, serve, servers
from bot.cli.common import Command, run_command
from bot.config import ConfigError, load_settings
from bot.provisioning.transitions import milestones
from bot.redact import configure_logging

__all__ = ["build_parser", "main"]

logger = logging.getLogger("bot.cli")


def build_parser() -> argparse.ArgumentParser:
    """`vfbot`'s parser; each sub-command stores its coroutine as `run`."""
    parser = argparse.ArgumentParser(
        prog="vfbot", description="Create and run VirtFusion servers from Slack and the shell."
    )
    parser.add_argument("--version", action="version", version=f"vfbot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    panel.add_parsers(sub.add_parser)
    requests.add_parsers(sub.add_parser)
    servers.add_parsers(sub.add_parser)
    lifetimes.add_parsers(sub.add_parser)
    serve.add_parsers(sub.add_parser)
    db.add_parsers(sub.add_parser)
    panel.add_sandbox_parser(sub.add_parser)
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Entry point of the `vfbot` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    from bot.factories import secrets_of  # the store's URL parsing: only once a command runs

    out = Console(file=stdout or sys.stdout, highlight=False, soft_wrap=True)
    level = "DEBUG" if args.verbose else "WARNING"
    secrets: list[str] = []
    try:
        # A parser may set `load_settings`: `vfbot db` reads the database settings alone,
        # `vfbot serve` also needs the Slack tokens.
        load = getattr(args, "load_settings", load_settings)
        settings = load() if args.command != "sandbox" else None
        if settings is not None:
            secrets.extend(secrets_of(settings))
            level = "DEBUG" if args.verbose else settings.log_level
    except ConfigError as error:
        print(error, file=sys.stderr)
        return common.EXIT_CONFIG
    args.settings = settings
    log_format = settings.log_format if settings is not None else "text"
    configure_logging(level, secrets, log_format)
    if not (args.command == "serve" or (args.command == "worker" and log_format == "json")):
        # The shell prints milestones itself (`create --wait`, `worker`): no second copy in
        # the log. `serve`, and `worker` with JSON logs, log one line per milestone instead.
        milestones.setLevel(logging.WARNING)
    command: Command = args.run
    try:
        return asyncio.run(run_command(command, args, out))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return common.EXIT_CONFIG
    except KeyboardInterrupt:
        return common.EXIT_FAILED
    except Exception:  # the CLI's error edge: log with a reference the user can quote
        reference = uuid.uuid4().hex[:8]
        logger.exception("vfbot %s failed (reference %s)", args.command, reference)
        print(f"vfbot {args.command} failed unexpectedly (reference {reference}).", file=sys.stderr)
        return common.EXIT_INTERNAL
