"""Marks: small named values the fleet jobs keep in the database, changed by compare-and-set.

A mark says what vfbot last told the alert channel about one thing: `capacity:7:memory` is
`low` or `ok`, `traffic:42` names the traffic period already alerted, `daily-report` the last
report's slot. Whoever moves a mark from the value it read writes the notification in the same
transaction; a replica that read the same value finds it moved and says nothing, so each alert
and each report goes out once however many replicas tick.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

__all__ = ["MarkRepo"]


class MarkRepo(Protocol):
    """Named marks (keys up to 200 characters, values up to 200)."""

    async def get_many(self, keys: Collection[str]) -> dict[str, str]:
        """Return the value of each of ``keys`` that is set, by key."""
        ...

    async def put_if(self, key: str, *, expected: str | None, value: str, now: datetime) -> bool:
        """Set ``key`` to ``value`` only if it holds ``expected`` (None: only if it is not set
        yet); True when it was set. Concurrent callers expecting the same value: one wins."""
        ...

    async def prune(self, prefix: str, *, before: datetime) -> int:
        """Delete the marks whose key starts with ``prefix`` last set before ``before``;
        return how many."""
        ...
