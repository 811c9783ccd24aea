"""The scheduler's error edge: a database error is one line per cause (no traceback), and its
recovery one more; ticking goes on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.scheduler import Ticker

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
