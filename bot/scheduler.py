"""Periodic jobs on APScheduler 3 (AsyncIOScheduler): it only ticks; the database holds the work.

Job stores are in memory and never shared: every replica ticks on its own and claims work in the
database, so nothing runs twice however many replicas there are. `Supervisor` is the error edge
of every loop that must outlive the panel or the database going away (`vfbot serve`'s jobs,
`vfbot worker`, `vfbot create --wait`): a failure is logged once, waited out, and its end said.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import ConfigError
from bot.virtfusion import AuthError, ForbiddenError, VirtFusionError

__all__ = ["FATAL", "Supervisor", "Ticker", "failure_text"]

logger = logging.getLogger("bot.scheduler")

T = TypeVar("T")

FATAL: tuple[type[Exception], ...] = (ConfigError, AuthError, ForbiddenError)
"""Errors no retry can fix: the configuration (or the panel token) must change."""


def failure_text(error: BaseException) -> str:
    """What went wrong, in one line: the panel's error, or the database driver's own words
    (a SQLAlchemy error keeps them in `orig`, without the SQL statement)."""
    if isinstance(error, VirtFusionError):
        return f"the panel: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    cause = getattr(error, "orig", None)
    if isinstance(cause, BaseException):
        text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        return f"the database: {text}"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Supervisor:
    """Runs a loop's job, surviving every failure but a configuration error.

    The first failure (and each new kind) is logged once with a reference; repeats are debug
    lines. Then it waits (`sleep`, growing from `base_s` to `max_s`; 0 for a caller that waits
    on its own) and the job returns None. `on_change(text)` hears the failure's one-line cause
    when it starts or changes, and `on_change(None)` when a run succeeds again.
    """

    def __init__(
        self,
        name: str,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        base_s: float = 1.0,
        max_s: float = 60.0,
        on_change: Callable[[str | None], None] | None = None,
    ) -> None:
        self.name = name
        self.failures = 0
        self._sleep, self._base_s, self._max_s = sleep, base_s, max_s
        self._on_change = on_change
        self._cause: str | None = None

    async def run(self, job: Callable[[], Awaitable[T]]) -> T | None:
        """The job's result, or None after a failure was logged and waited out."""
        try:
            result = await job()
        except FATAL:
            raise
        except Exception as error:  # noqa: BLE001  # the loop's error edge: logged in _failed
            self._failed(error)
            if self._base_s > 0:
                await self._sleep(min(self._max_s, self._base_s * 2 ** (self.failures - 1)))
            return None
        if self.failures:
            logger.warning("%s works again after %d failed attempt(s)", self.name, self.failures)
            self.failures, self._cause = 0, None
            if self._on_change is not None:
                self._on_change(None)
        return result

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        cause = failure_text(error)
        if cause == self._cause:
            logger.debug("%s still failing (%d): %s", self.name, self.failures, cause)
            return
        self._cause = cause
        reference = uuid.uuid4().hex[:8]
        logger.warning(
            "%s failed (reference %s): %s; retrying until it works",
            self.name,
            reference,
            cause,
            exc_info=None if isinstance(error, VirtFusionError) else error,
        )
        if self._on_change is not None:
            self._on_change(cause)


class Ticker:
    """Runs named coroutines every `interval_s`; `kick(name)` runs one as soon as possible."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._started = False
        self._running: set[asyncio.Task[object]] = set()

    def add(self, name: str, job: Callable[[], Awaitable[object]], interval_s: float) -> None:
        """Register `job` under `name`; a tick that is still running is never doubled."""

        supervisor = Supervisor(f"job {name}", base_s=0)  # the interval is the wait

        async def trampoline() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await supervisor.run(job)
            except FATAL:  # the scheduler's error edge: log, keep ticking
                reference = uuid.uuid4().hex[:8]
                logger.exception("job %s failed (reference %s)", name, reference)
            finally:
                if task is not None:
                    self._running.discard(task)

        self._scheduler.add_job(
            trampoline,
            "interval",
            seconds=interval_s,
            id=name,
            name=name,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def kick(self, name: str) -> None:
        """Ask for job `name` to run now instead of waiting for its next interval."""
        if self._started and self._scheduler.get_job(name) is not None:
            self._scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    def start(self) -> None:
        if not self._started:
            self._scheduler.start()
            self._started = True

    async def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop ticking, then wait (up to `timeout_s`) for the jobs still running to finish, so
        nothing they use is closed under them."""
        if self._started:
            self._scheduler.shutdown(wait=False)
            self._started = False
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=timeout_s)
            if pending:
                logger.warning("stopping with %d job(s) still running", len(pending))
