"""Injectable clocks for the sandbox panel; owns time only, never sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["DEFAULT_START", "FakeClock", "utc_now"]

DEFAULT_START = datetime(2025, 1, 6, 9, 0, 0, tzinfo=UTC)


def utc_now() -> datetime:
    """Return the real current time, timezone-aware UTC."""
    return datetime.now(UTC)


class FakeClock:
    """A manual clock: calling it returns `now`; `advance()` moves it forward."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by `seconds` (must be >= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += timedelta(seconds=seconds)
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"
