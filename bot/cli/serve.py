"""`vfbot serve`: the Slack app, the engine and the notifier in one process, until a signal."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial

from rich.console import Console

from bot.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    AddParser,
    settings_of,
    stop_signals,
    until_stopped,
)
from bot.config import ConfigError, load_settings
from bot.logfields import set_process_fields

__all__ = ["add_parsers", "cmd_serve"]

logger = logging.getLogger("bot.cli.serve")

_SETUP_DOC = "docs/slack-setup.md"


async def cmd_serve(args: argparse.Namespace, out: Console) -> int:
    """The Slack app, the engine and the notifier, until SIGTERM or Ctrl+C.

    A signal during start-up (while Slack is still being waited for) stops at once; after it,
    the runtime finishes its work in flight within VF_SHUTDOWN_TIMEOUT and the exit code is 0.
    """
    # Imported here, so that no other command loads the Slack adapter.
    from bot.app import Runtime, SlackSetupError, SlackUnreachableError
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
    stop = stop_signals()
    runtime = Runtime(settings)
    set_process_fields(worker_id=runtime.core.engine.worker_id)
    try:
        started, _ = await until_stopped(runtime.start(), stop)
    except SlackSetupError as error:
        print(f"{error}\nSlack app setup, step by step: {_SETUP_DOC}.", file=sys.stderr)
        return EXIT_CONFIG
    except SlackUnreachableError as error:
        print(error, file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:  # the listening socket: address in use, or not this host's
        await runtime.stop()
        print(
            f"Cannot listen on {settings.vf_bind}:{settings.port} ({error.strerror or error}). "
            "Set PORT to a free port, or VF_BIND to an address of this host.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if not started:
        logger.info("vfbot serve: stopped while starting")
        await runtime.stop()
        return EXIT_OK
    where = f"{settings.vf_bind}:{runtime.bound_port}"
    socket_mode = settings.slack_app_token is not None
    mode = "Socket Mode" if socket_mode else "HTTP mode (POST /slack/events)"
    routes = "/healthz, /readyz, /metrics"
    if runtime.hooks.enabled:
        routes += ", POST /virtfusion/webhook"
    logger.info(
        "vfbot serve: %s; listening on %s (%s); worker %s; SIGTERM or Ctrl+C stops it",
        mode,
        where,
        routes,
        runtime.core.engine.worker_id,
    )
    await stop.wait()
    logger.info(
        "vfbot serve: stopping (finishing work in flight, at most %g s)",
        settings.vf_shutdown_timeout,
    )
    await runtime.stop()
    logger.info("vfbot serve: stopped")
    return EXIT_OK


def add_parsers(add_parser: AddParser) -> None:
    """Add `serve` to `vfbot`'s sub-commands."""
    serve = add_parser("serve", help="run the Slack app with the engine")
    serve.set_defaults(run=cmd_serve, load_settings=partial(load_settings, require_slack=True))
