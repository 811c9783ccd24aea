"""Periodic jobs on APScheduler 3 (AsyncIOScheduler): it only ticks; the database holds the work.

Job stores are in memory and never shared: every replica ticks on its own and claims work in the
database, so nothing runs twice however many replicas there are.

A job that is still running when its next tick comes is not started twice; APScheduler then logs
"skipped: maximum number of running instances reached" at WARNING on every tick, which is the
design working, not a problem, so that one message is dropped (`_SkippedFilter`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.provisioning.ports import DatabaseUnavailableError

__all__ = ["Ticker", "finish_or_cut"]

logger = logging.getLogger("bot.scheduler")


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
    """Runs named coroutines every `interval_s`; `kick(name)` runs one as soon as possible."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._started = False
        self._running: dict[asyncio.Task[object], str] = {}
        self._database_down: dict[str, str] = {}  # job -> the database error it last met
        scheduler_logger = logging.getLogger("apscheduler.scheduler")
        if _SKIPPED not in scheduler_logger.filters:
            scheduler_logger.addFilter(_SKIPPED)

    def add(self, name: str, job: Callable[[], Awaitable[object]], interval_s: float) -> None:
        """Register `job` under `name`; a tick that is still running is never doubled."""

        async def trampoline() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running[task] = name
            try:
                await job()
                if self._database_down.pop(name, None) is not None:
                    logger.warning("job %s: the database answers again", name)
            except DatabaseUnavailableError as error:
                # One line naming the cause (no traceback), once per cause: ticks keep retrying.
                if self._database_down.get(name) != str(error):
                    logger.error("job %s: %s", name, error)
                self._database_down[name] = str(error)
            except Exception:  # the scheduler's error edge: log, keep ticking
                reference = uuid.uuid4().hex[:8]
                logger.exception("job %s failed (reference %s)", name, reference)
            except asyncio.CancelledError:
                # Only `stop()` cancels a job, once its time to finish is up; ending here keeps
                # APScheduler from logging the cancellation as a job error with a traceback.
                logger.warning("job %s was cut short by the shutdown", name)
            finally:
                if task is not None:
                    self._running.pop(task, None)

        self._scheduler.add_job(
            trampoline,
            "interval",
            seconds=interval_s,
            id=name,
            name=name,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,  # a late tick still runs (once), without a warning
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
