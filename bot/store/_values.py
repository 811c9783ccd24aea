"""How both adapters store values: datetimes as aware UTC, JSON objects as plain JSON copies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TypeVar, overload

__all__ = ["json_copy", "utc"]

_J = TypeVar("_J")


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC (None stays None); raises ``ValueError`` for a naive datetime (the store
    never guesses a timezone)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime given to the store; pass a timezone-aware UTC value")
    return value.astimezone(UTC)


def json_copy(value: _J) -> _J:
    """A fresh copy of ``value`` as a JSON column gives it back (tuples become lists, keys
    strings); raises ``TypeError`` for what JSON cannot hold."""
    loaded: _J = json.loads(json.dumps(value))
    return loaded
