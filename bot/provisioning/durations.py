"""Durations as people type them in requests and commands: `"30s"`, `"20m"`, `"4h"`, `"3d"`,
`"2w"`; pure, no I/O."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

__all__ = ["DURATION_EXAMPLE", "duration_problem", "format_duration", "parse_lifetime"]

_LIFETIME: Final = re.compile(r"([0-9]{1,6})\s*(s|m|h|d|w)", re.IGNORECASE)
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_EXAMPLE: Final = '"30m", "4h" or "3d"'
_MAX_S: Final = 10 * 365 * 86400  # ten years: anything longer is a typo


def _seconds(text: object) -> int | str:
    """The seconds in `text`, or what is wrong with it."""
    match = _LIFETIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return (
            f"must be a duration: a whole number with a unit s, m, h, d or w, e.g. "
            f"{DURATION_EXAMPLE}"
        )
    seconds = int(match.group(1)) * _UNIT_S[match.group(2).lower()]
    if seconds < 1:
        return f"must be longer than zero, e.g. {DURATION_EXAMPLE}"
    if seconds > _MAX_S:
        return "must be at most ten years (3650d)"
    return seconds


def duration_problem(text: object) -> str | None:
    """What is wrong with `text` as a lifetime, or None when `parse_lifetime` reads it."""
    seconds = _seconds(text)
    return seconds if isinstance(seconds, str) else None


def parse_lifetime(text: str) -> timedelta:
    """The duration in `"30s"`, `"20m"`, `"4h"`, `"3d"` or `"2w"`; ValueError otherwise."""
    seconds = _seconds(text)
    if isinstance(seconds, str):
        raise ValueError(seconds)
    return timedelta(seconds=seconds)


def format_duration(seconds: float) -> str:
    """`"3d 4h"`, `"45m"`, `"30s"`: at most two adjacent units, rounded down."""
    total = max(int(seconds), 0)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
        elif parts:
            break
        if len(parts) == 2:
            break
    return " ".join(parts) or "0s"
