"""What every `vfbot` command shares: exit codes, settings, the actor, the confirm prompt, and the
CLI's wording of expected errors (the domain says what happened; this adds the `vfbot` next step).

Exit codes: 0 success, 1 the panel or the operation failed, 2 configuration or usage problem,
3 partial failure (some servers of a request failed), 4 internal error (logged with a reference).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console

import bot.virtfusion as vf
from bot.config import ConfigError, Settings
from bot.provisioning import errors as err
from bot.provisioning.ports import DatabaseUnavailableError
from bot.provisioning.servers.checks import CheckStep, Outcome

if TYPE_CHECKING:
    from bot.app import Core

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "AddParser",
    "Command",
    "actor",
    "check_step_text",
    "confirm",
    "error_text",
    "make_client",
    "open_core",
    "panel_error_text",
    "run_command",
    "settings_of",
    "stop_signals",
    "until_stopped",
]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_PARTIAL, EXIT_INTERNAL = 0, 1, 2, 3, 4

AddParser = Callable[..., argparse.ArgumentParser]
"""The `add_parser` of `vfbot`'s sub-commands; each command module adds its own through it."""

Command = Callable[[argparse.Namespace, Console], Coroutine[None, None, int]]
"""A sub-command: parsed arguments and the output console in, exit code out."""


T = TypeVar("T")


# The composition root (`bot.app`: the store, Slack, metrics, the scheduler) and the parts the
# settings describe (`bot.factories`: SQLAlchemy, the aiohttp client) are most of a second of
# imports that `vfbot --help` or a mistyped command should not wait for. Commands reach them
# through these two, which import them when a command first runs.


def open_core(settings: Settings, *, upgrade: bool = False) -> AbstractAsyncContextManager[Core]:
    """`bot.app.open_core`: the database and the panel client, closed on exit."""
    from bot.app import open_core

    return open_core(settings, upgrade=upgrade)


def make_client(settings: Settings) -> vf.VirtFusionClient:
    """`bot.factories.make_client`: the panel client the settings describe."""
    from bot.factories import make_client

    return make_client(settings)


def stop_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT (Ctrl+C), for an orderly stop; after it a
    second Ctrl+C interrupts at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl+C is Python's own again

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, on_signal)
        except (RuntimeError, NotImplementedError):
            # Not the main thread (tests run `main` in one), or no signals on this platform:
            # the signals keep Python's own behaviour.
            break
    return stop


async def until_stopped(work: Awaitable[T], stop: asyncio.Event) -> tuple[bool, T | None]:
    """Run `work` until it ends or `stop` is set, whichever comes first: (True, its result),
    or (False, None) after cancelling it. Its exceptions propagate."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False, None


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings `main` loaded for this command; ConfigError if it loaded none."""
    settings = args.settings
    if not isinstance(settings, Settings):
        raise ConfigError(["this command needs the VIRTFUSION_* settings"])
    return settings


def actor() -> str:
    """Who acts, as audit entries and requests name a CLI user: ``cli:<login>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


async def confirm(
    out: Console, question: str, *, yes: bool, refused: str, no_terminal: str | None = None
) -> bool:
    """True with `yes` (``--yes``) or a "y" typed at ``question [y/N]``; else print why not.

    Without a terminal nobody can answer, so that is a refusal too (`no_terminal` says so;
    `refused` unless given).
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        out.print(refused if no_terminal is None else no_terminal, markup=False)
        return False
    answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        return True
    out.print(refused, markup=False)
    return False


async def run_command(command: Command, args: argparse.Namespace, out: Console) -> int:
    """Run one command; an expected error becomes one line on `out` and its exit code."""
    try:
        return await command(args, out)
    except err.InvalidValueError as error:
        out.print(error_text(error), markup=False)
        return EXIT_CONFIG
    except err.ProvisioningError as error:
        out.print(error_text(error), markup=False)
        return EXIT_FAILED
    except vf.VirtFusionError as error:
        out.print(panel_error_text(error), markup=False, style="red")
        return EXIT_FAILED
    except DatabaseUnavailableError as error:
        # The adapter's sentence names the cause and what to do; a setup problem (no database,
        # an older schema, a refused login) is a configuration error.
        out.print(str(error), markup=False, style="red")
        return EXIT_CONFIG if error.problem.setup else EXIT_FAILED


def error_text(error: err.ProvisioningError) -> str:
    """The domain's sentence plus what to do next in the shell."""
    text = str(error)
    if isinstance(error, err.UnknownRequestError):
        return f"{text} Check the number: `vfbot requests` lists recent ones."
    if isinstance(error, err.ServerBuildingError):
        return (
            f"{text.removesuffix('.')}; cancel the request instead "
            f"(`vfbot cancel VF-{error.request_id}`)."
        )
    if isinstance(error, err.BuildInProgressError):
        return f"{text} `vfbot servers` shows when it is complete."
    if isinstance(error, err.UnknownServerError):
        if error.reason is err.NotOursReason.UNKNOWN_NAME:
            return f"{text} Use its VirtFusion id, or list the servers with `vfbot servers`."
        if error.reason is err.NotOursReason.NOT_ON_PANEL:
            return f"{text} `vfbot servers` shows the servers there are."
    return text


def panel_error_text(error: vf.VirtFusionError) -> str:
    """One sentence for a person at the shell: what went wrong with the panel, what to set."""
    if isinstance(error, vf.AuthError):
        return (
            "The panel rejected VIRTFUSION_API_TOKEN (HTTP 401): it is missing, wrong or expired. "
            "Create a token under Configuration → API in VirtFusion and set VIRTFUSION_API_TOKEN."
        )
    if isinstance(error, vf.ForbiddenError):
        return (
            f"The API token lacks a permission for {error.method} {error.path} (HTTP 403). "
            'Allow it every call listed under "API token permissions" in '
            "docs/virtfusion-api.md (Configuration → API in VirtFusion)."
        )
    if isinstance(error, vf.ConnectError):
        return (
            f"Cannot connect to the panel at VIRTFUSION_HOST ({error}). "
            "Check the URL, DNS, firewall and that the panel is up."
        )
    if isinstance(error, vf.PanelTimeoutError):
        return (
            f"The panel did not answer in time ({error}). "
            "Try again, or raise VIRTFUSION_TIMEOUT if the panel is slow."
        )
    return err.describe_panel_error(error)


def check_step_text(step: CheckStep) -> str:
    """Why a `vfbot check` step failed, or its note; empty for a plain pass."""
    if step.outcome is Outcome.NOT_FOUND:
        # With a detail the panel has none of something (no hypervisor groups at all).
        if step.detail:
            return f"{step.detail}; create one"
        return "not found on the panel; fix the id in .env"
    if step.outcome is Outcome.REFUSED:
        return (
            f"the panel says: {step.detail}. Check VIRTFUSION_USER_ID, VIRTFUSION_PACKAGE_ID, "
            "VIRTFUSION_HYPERVISOR_GROUP_ID and VIRTFUSION_NETWORK_PROFILE_ID."
        )
    if step.outcome is Outcome.PANEL_ERROR and step.error is not None:
        return panel_error_text(step.error)
    return step.detail
