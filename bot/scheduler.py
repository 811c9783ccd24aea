"""Periodic jobs on APScheduler 3 (AsyncIOScheduler): it only ticks; the database holds the work.

Job stores are in memory and never shared: every replica ticks on its own and claims work in the
database, so nothing runs twice however many replicas there are.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.provisioning.ports import DatabaseUnavailableError

__all__ = ["Ticker"]

logger = logging.getLogger("bot.scheduler")


class Ticker:
    """Runs named coroutines every `interval_s`; `kick(name)` runs one as soon as possible."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._started = False
        self._running: set[asyncio.Task[object]] = set()
        self._database_down: dict[str, str] = {}  # job -> the database error it last met

    def add(self, name: str, job: Callable[[], Awaitable[object]], interval_s: float) -> None:
        """Register `job` under `name`; a tick that is still running is never doubled."""

        async def trampoline() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
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
