"""The ticker: a database error is one line per cause (no traceback) and its recovery one more,
ticking goes on; and it stops in order: running jobs finish, or are cut short quietly at the
deadline."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.scheduler import Ticker, finish_or_cut

LOCKED = DatabaseUnavailableError(DatabaseProblem.LOCKED, "The SQLite file x is locked.")


async def test_database_errors_are_one_line_per_cause(caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[Exception | None] = [LOCKED, LOCKED, LOCKED, None, None]
    done = asyncio.Event()

    async def job() -> None:
        outcome = outcomes.pop(0)
        if not outcomes:
            done.set()
        if outcome is not None:
            raise outcome

    ticker = Ticker()
    ticker.add("engine", job, 0.001)
    caplog.set_level(logging.WARNING, logger="bot.scheduler")
    ticker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        await ticker.stop()
    lines = [
        (r.levelname, r.getMessage(), r.exc_info)
        for r in caplog.records
        if r.name == "bot.scheduler"
    ]
    assert lines == [
        ("ERROR", "job engine: The SQLite file x is locked.", None),
        ("WARNING", "job engine: the database answers again", None),
    ]


async def test_a_run_due_while_the_job_runs_is_one_more_round_not_a_skip(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started: list[int] = []
    release = asyncio.Event()
    second = asyncio.Event()

    async def job() -> None:
        started.append(len(started))
        if len(started) == 1:
            await release.wait()  # the first run outlasts several intervals
        else:
            second.set()

    ticker = Ticker()
    ticker.add("engine", job, 0.05)
    caplog.set_level(logging.WARNING)
    ticker.start()
    try:
        await asyncio.sleep(0.3)  # several intervals pass while the first run holds on
        assert started == [0]  # never doubled
        ticker.kick("engine")
        release.set()
        await asyncio.wait_for(second.wait(), timeout=10)
    finally:
        await ticker.stop()
    assert not [r for r in caplog.records if "skipped" in r.getMessage()]


async def test_stop_lets_a_running_job_finish(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def job() -> None:
        started.set()
        await release.wait()
        finished.set()

    ticker = Ticker()
    ticker.add("engine", job, 3600)
    ticker.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    stopping = asyncio.ensure_future(ticker.stop(timeout_s=30))
    await asyncio.sleep(0)
    assert not stopping.done()  # waits for the job instead of cancelling it
    release.set()
    await asyncio.wait_for(stopping, timeout=5)
    assert finished.is_set()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_job_past_the_deadline_is_cut_short_without_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    started = asyncio.Event()
    cleaned_up: list[str] = []

    async def job() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append("job")

    ticker = Ticker()
    ticker.add("engine", job, 3600)
    ticker.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await ticker.stop(timeout_s=0.01)
    assert cleaned_up == ["job"]
    levels = {(r.name, r.levelname) for r in caplog.records if r.levelno >= logging.WARNING}
    assert levels == {("bot.scheduler", "WARNING")}  # no ERROR, no traceback from APScheduler
    assert not any(r.exc_info for r in caplog.records)


def test_the_skipped_warning_of_a_still_running_job_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Ticker()  # installs the filter
    scheduler_logger = logging.getLogger("apscheduler.scheduler")
    scheduler_logger.warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        "slack",
        1,
    )
    scheduler_logger.warning("something else worth seeing")
    assert [r.getMessage() for r in caplog.records] == ["something else worth seeing"]


async def test_finish_or_cut_says_whether_everything_finished() -> None:
    quick = asyncio.ensure_future(asyncio.sleep(0))
    assert await finish_or_cut({quick: "quick"}, timeout_s=5)
    stuck = asyncio.ensure_future(asyncio.Event().wait())
    assert not await finish_or_cut({stuck: "stuck"}, timeout_s=0.01, grace_s=1)
    assert stuck.cancelled()
    assert await finish_or_cut({}, timeout_s=0)


async def test_a_daily_job_is_scheduled_at_its_time_in_its_zone() -> None:
    """The daily report's cron trigger: the next run is the next `at` o'clock in the zone; a
    kick runs it now, through the same one-run-at-a-time trampoline."""
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    zone = ZoneInfo("Asia/Tokyo")
    ticker = Ticker()
    ticker.add_daily("report", job, time(9, 30), zone)
    ticker.start()
    try:
        now = datetime.now(zone)
        nxt = ticker.next_run("report")
        assert nxt is not None and now < nxt <= now + timedelta(days=1)
        assert (nxt.astimezone(zone).hour, nxt.astimezone(zone).minute) == (9, 30)
        ticker.kick("report")
        await asyncio.wait_for(ran.wait(), timeout=10)
    finally:
        await ticker.stop()
    assert ticker.next_run("missing") is None
