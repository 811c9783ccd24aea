"""`vfbot serve`: the Slack app, the engine and the notifier in one process, until a signal."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from rich.console import Console

from bot.cli.common import EXIT_CONFIG, EXIT_OK, AddParser, settings_of
from bot.config import ConfigError

__all__ = ["add_parsers", "cmd_serve"]

_SETUP_DOC = "docs/slack-setup.md"


async def cmd_serve(args: argparse.Namespace, out: Console) -> int:
    """The Slack app, the engine and the notifier, until SIGTERM or Ctrl+C."""
    # Imported here, so that no other command loads the Slack adapter.
    from bot.app import Runtime, SlackSetupError
    from bot.slack.setup import slack_problems

    settings = settings_of(args)
    problems = slack_problems(settings)
    if problems:
        print(
            ConfigError(problems),
            f"\nSlack app setup, step by step: {_SETUP_DOC} (README, 'Slack app').",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    runtime = Runtime(settings)
    try:
        await runtime.start()
    except SlackSetupError as error:
        print(f"{error}\nSlack app setup, step by step: {_SETUP_DOC}.", file=sys.stderr)
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


def add_parsers(add_parser: AddParser) -> None:
    """Add `serve` to `vfbot`'s sub-commands."""
    add_parser("serve", help="run the Slack app with the engine").set_defaults(run=cmd_serve)
