"""Periodic jobs on APScheduler 3 (AsyncIOScheduler): it only ticks; the database holds the work.

Job stores are in memory and never shared: every replica ticks on its own and claims work in the
database, so nothing runs twice however many replicas there are. `Supervisor` is the error edge
of every loop that must outlive the panel or the database going away (`vfbot worker`,
`vfbot create --wait`): a failure is logged once, waited out, and its end said.

A job that is still running when its next tick comes is not started twice; APScheduler then logs
"skipped: maximum number of running instances reached" at WARNING on every tick, which is the
design working, not a problem, so that one message is dropped (`_SkippedFilter`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, time, tzinfo
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.config import ConfigError
from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.virtfusion import AuthError, ForbiddenError, VirtFusionError

__all__ = ["Supervisor", "Ticker", "failure_text", "fatal", "finish_or_cut"]

logger = logging.getLogger("bot.scheduler")


T = TypeVar("T")


def fatal(error: BaseException) -> bool:
    """Whether no retry can fix `error`: the configuration or the panel token must change, or
    the database is not the one to use (missing, outdated, refused, or its file vanished).

    A read-only, full, locked or unreachable database may come back by itself: retried.
    """
    if isinstance(error, ConfigError | AuthError | ForbiddenError):
        return True
    if isinstance(error, DatabaseUnavailableError):
        return error.problem.setup or error.problem is DatabaseProblem.VANISHED
    return False


def failure_text(error: BaseException) -> str:
    """What went wrong, in one sentence: the panel's error, the store's own sentence, or the
    database driver's words (a SQLAlchemy error keeps them in `orig`, without the SQL)."""
    if isinstance(error, DatabaseUnavailableError):
        return str(error)
    if isinstance(error, VirtFusionError):
        text = f"The panel failed: {_first_line(error)}"
    elif isinstance(cause := getattr(error, "orig", None), BaseException):
        text = f"The database failed: {_first_line(cause)}"
    else:
        text = f"{type(error).__name__}: {_first_line(error)}"
    return text if text.endswith(".") else text + "."


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines and lines[0] else type(error).__name__


def _subject(error: BaseException) -> str:
    if isinstance(error, DatabaseUnavailableError) or hasattr(error, "orig"):
        return "database"
    return "panel" if isinstance(error, VirtFusionError) else "work"


class Supervisor:
    """Runs a loop's job, surviving every failure no retry can fix (`fatal`).

    The first failure, and each new kind, is one warning (with a reference; a traceback only
    for an unexpected error); repeats are debug lines. Then it waits (`sleep`, growing from
    `base_s` to `max_s`) and the job returns None. When a run succeeds again that is one more
    line. `on_change(text)` hears the failure's one-line cause when it starts or changes, and
    `on_change(None)` when it is over.
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
        self._subject = "work"

    async def run(self, job: Callable[[], Awaitable[T]]) -> T | None:
        """The job's result, or None after a failure was logged and waited out."""
        try:
            result = await job()
        except Exception as error:  # the loop's error edge: logged in _failed
            if fatal(error):
                raise
            self._failed(error)
            await self._sleep(min(self._max_s, self._base_s * 2 ** (self.failures - 1)))
            return None
        if self.failures:
            logger.warning(
                "The %s answers again; %s carries on (%d failed attempt(s)).",
                self._subject,
                self.name,
                self.failures,
            )
            self.failures, self._cause = 0, None
            if self._on_change is not None:
                self._on_change(None)
        return result

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        cause = failure_text(error)
        if cause == self._cause:
            logger.debug("%s: still failing (%d): %s", self.name, self.failures, cause)
            return
        self._cause, self._subject = cause, _subject(error)
        reference = uuid.uuid4().hex[:8]
        expected = isinstance(error, VirtFusionError | DatabaseUnavailableError)
        logger.warning(
            "%s Retrying until it answers (%s, reference %s).",
            cause,
            self.name,
            reference,
            exc_info=None if expected else error,
        )
        if self._on_change is not None:
            self._on_change(cause)


class _SkippedFilter(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances" warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


_SKIPPED = _SkippedFilter()


async def finish_or_cut(
    tasks: Mapping[asyncio.Task[Any], str], *, timeout_s: float, grace_s: float = 2.0
) -> bool:
    """Wait up to `timeout_s` for `tasks` (task → name) to finish; cancel the ones still running
    (saying so, at WARNING) and give them `grace_s` to clean up. True if none had to be cut."""
    if not tasks:
        return True
    _, pending = await asyncio.wait(set(tasks), timeout=max(timeout_s, 0))
    if not pending:
        return True
    names = ", ".join(sorted(tasks.get(task, "?") for task in pending))
    logger.warning("stopping: %s still running after %.0f s; cutting it short", names, timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.wait(pending, timeout=grace_s)
    return False


class Ticker:
    """Runs named coroutines every `interval_s` (or daily at a time); `kick(name)` runs one as
    soon as possible."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._started = False
        self._running: dict[asyncio.Task[object], str] = {}
        self._down: dict[str, tuple[str, str]] = {}  # job -> (what, the error it last met)
        self._active: set[str] = set()  # jobs running now
        self._again: set[str] = set()  # jobs that came due while running
        scheduler_logger = logging.getLogger("apscheduler.scheduler")
        if _SKIPPED not in scheduler_logger.filters:
            scheduler_logger.addFilter(_SKIPPED)

    def add(self, name: str, job: Callable[[], Awaitable[object]], interval_s: float) -> None:
        """Register `job` under `name`; a run that is still going is never doubled.

        A run that comes due (or is kicked) while the job is still running is not dropped: the
        running one goes round once more when it ends (the engine ticks on while busy, so it
        can run longer than its interval).
        """
        self._scheduler.add_job(
            self._trampoline(name, job),
            "interval",
            seconds=interval_s,
            id=name,
            name=name,
            replace_existing=True,
            max_instances=3,  # the others only ask the running one to go round again
            coalesce=True,
            misfire_grace_time=None,  # a late tick still runs (once), without a warning
            next_run_time=datetime.now(UTC),
        )

    def add_daily(
        self, name: str, job: Callable[[], Awaitable[object]], at: time, zone: tzinfo
    ) -> None:
        """Run `job` every day at `at` in `zone` (a cron trigger: every replica fires it; the
        job decides in the database who acts). A run up to an hour late still happens once."""
        self._scheduler.add_job(
            self._trampoline(name, job),
            CronTrigger(hour=at.hour, minute=at.minute, timezone=zone),
            id=name,
            name=name,
            replace_existing=True,
            max_instances=3,
            coalesce=True,
            misfire_grace_time=3600,
        )

    def _trampoline(
        self, name: str, job: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
        """`job` as APScheduler runs it: one run at a time, a run due meanwhile goes round
        again, a cancellation at shutdown said in one line."""

        async def trampoline() -> None:
            if name in self._active:
                self._again.add(name)  # the running one goes round again
                return
            task = asyncio.current_task()
            if task is not None:
                self._running[task] = name
            self._active.add(name)
            try:
                while True:
                    self._again.discard(name)
                    await self._run(name, job)
                    if name not in self._again:
                        break
            except asyncio.CancelledError:
                # Only `stop()` cancels a job, once its time to finish is up; ending here keeps
                # APScheduler from logging the cancellation as a job error with a traceback.
                logger.warning("job %s was cut short by the shutdown", name)
            finally:
                self._active.discard(name)
                if task is not None:
                    self._running.pop(task, None)

        return trampoline

    async def _run(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        try:
            await job()
            if (down := self._down.pop(name, None)) is not None:
                logger.warning("job %s: the %s answers again", name, down[0])
        except DatabaseUnavailableError as error:
            # One line naming the cause (no traceback), once per cause: ticks keep retrying.
            self._once(name, "database", str(error), logging.ERROR)
        except VirtFusionError as error:
            self._once(name, "panel", failure_text(error), logging.WARNING)
        except Exception:  # the scheduler's error edge: log, keep ticking
            reference = uuid.uuid4().hex[:8]
            logger.exception("job %s failed (reference %s)", name, reference)

    def _once(self, name: str, what: str, text: str, level: int) -> None:
        if self._down.get(name) != (what, text):
            logger.log(level, "job %s: %s", name, text)
        self._down[name] = (what, text)

    def next_run(self, name: str) -> datetime | None:
        """When job `name` runs next (once started); None when it is not scheduled."""
        job = self._scheduler.get_job(name)
        return getattr(job, "next_run_time", None) if job is not None else None

    def kick(self, name: str) -> None:
        """Ask for job `name` to run now instead of waiting for its next interval."""
        if self._started and self._scheduler.get_job(name) is not None:
            self._scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    def start(self) -> None:
        if not self._started:
            self._scheduler.start()
            self._started = True

    async def stop(self, *, timeout_s: float = 10.0, grace_s: float = 2.0) -> None:
        """Stop ticking, wait up to `timeout_s` for the jobs still running to finish (so nothing
        they use is closed under them), then cut short the ones left and give them `grace_s` to
        clean up (a cancelled engine tick hands its rows back)."""
        if self._started:
            self._scheduler.pause()  # no new runs; the running ones go on
        await finish_or_cut(self._running, timeout_s=timeout_s, grace_s=grace_s)
        if self._started:
            self._scheduler.shutdown(wait=False)
            self._started = False
