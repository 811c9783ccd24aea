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
