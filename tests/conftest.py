"""Shared fixtures: a clean environment for every test, an isolated CWD, a threaded sandbox, and
`vfbot` (the command line run in-process, with what it printed and logged)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest

import bot.cli
from bot.cli import main
from bot.redact import RedactingFilter, configure_logging
from bot.sandbox import BuildTiming, PanelState, running_sandbox

_ENV_PREFIXES = ("VIRTFUSION_", "VF_", "SLACK_")
_ENV_NAMES = ("DATABASE_URL", "PORT", "LOG_LEVEL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's environment: drop every variable vfbot would read."""
    for name in list(os.environ):
        if name.upper().startswith(_ENV_PREFIXES) or name.upper() in _ENV_NAMES:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in an empty `tmp_path`, so no developer `.env` (or `vfbot.db`) is picked up."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def restore_logging() -> Iterator[logging.Logger]:
    """Undo `configure_logging` (it replaces the root handlers) so later tests log normally."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("aiohttp.access", "apscheduler", "bot.milestones")
    noisy = {name: logging.getLogger(name).level for name in names}
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


@dataclass
class ThreadedSandbox:
    """A sandbox panel served by its own event loop in a background thread.

    `state` belongs to that loop: mutate it only between calls, never while a request is in
    flight (tests are sequential, so setting knobs before `main()` is safe).
    """

    url: str
    api_url: str
    state: PanelState
    port: int


@pytest.fixture
def sandbox_state() -> PanelState:
    """Demo panel data with builds that finish in a fraction of a second."""
    return PanelState(timing=BuildTiming(queued_s=0.0, build_s=0.05, power_s=0.05))


@pytest.fixture
def sandbox_thread(sandbox_state: PanelState) -> Iterator[ThreadedSandbox]:
    """The sandbox on 127.0.0.1 (ephemeral port) in another thread, for sync code that runs
    `asyncio.run` itself, such as `bot.cli.main`."""
    started: Future[ThreadedSandbox] = Future()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with running_sandbox(sandbox_state) as server:
            started.set_result(
                ThreadedSandbox(server.url, server.api_url, server.state, server.port)
            )
            await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as error:  # surface start-up failures to the waiting test
            if not started.done():
                started.set_exception(error)
            raise
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="sandbox", daemon=True)
    thread.start()
    try:
        yield started.result(timeout=10)
    finally:
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)


@dataclass
class Run:
    """One `vfbot` invocation: exit code, stdout, stderr and every log line it produced."""

    code: int
    out: str
    err: str
    logs: str

    @property
    def everything(self) -> str:
        return "\n".join((self.out, self.err, self.logs))


Vfbot = Callable[..., Run]


@pytest.fixture
def vfbot(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    restore_logging: logging.Logger,
) -> Vfbot:
    """Run `main(argv)` and collect its output.

    `configure_logging` replaces the root handlers; caplog's handler is put back *before* the
    redacting one, so `logs` holds what the code logged, unredacted: a leak shows up here.
    """

    def configure(level: str, secrets: list[str], log_format: str = "text") -> RedactingFilter:
        redactor = configure_logging(level, secrets, log_format)
        logging.getLogger().handlers.insert(0, caplog.handler)
        return redactor

    monkeypatch.setattr(bot.cli, "configure_logging", configure)

    def run(*argv: str) -> Run:
        out = io.StringIO()
        code = main(list(argv), stdout=out)
        captured = capsys.readouterr()
        return Run(code, out.getvalue(), captured.err, caplog.text)

    return run
