"""The memory store's tables, its undo log, and how records go in and out (as SQL stores them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from bot.provisioning.model import (
    AuditRecord,
    EventRecord,
    InstanceRecord,
    Operation,
    RequestRecord,
)
from bot.slack.threads import SlackMessage, Thread
from bot.store._values import json_copy, utc

__all__ = [
    "Delivery",
    "Mark",
    "Repo",
    "Tables",
    "Undo",
    "copied",
    "forget_seen",
    "remember_seen",
    "stored",
]

_MISSING = object()

# The fields SQL keeps in JSON columns: stored and read back as JSON copies, never shared.
_JSON_FIELDS: dict[type, tuple[str, ...]] = {
    RequestRecord: ("payload", "plan"),
    InstanceRecord: ("spec", "ipv4"),
    EventRecord: ("payload",),
    AuditRecord: ("detail",),
    Operation: ("params",),
}

_R = TypeVar("_R", RequestRecord, InstanceRecord, EventRecord, AuditRecord, Operation)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One subscriber's lease on an event, and when it was delivered."""

    worker: str
    lease_until: datetime | None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """One mark's value and when it was set."""

    value: str
    at: datetime


@dataclass
class Tables:
    """Every table of the store, shared by its units of work and its Slack store."""

    requests: dict[int, RequestRecord] = dataclasses.field(default_factory=dict)
    instances: dict[int, InstanceRecord] = dataclasses.field(default_factory=dict)
    events: dict[int, EventRecord] = dataclasses.field(default_factory=dict)
    deliveries: dict[tuple[int, str], Delivery] = dataclasses.field(default_factory=dict)
    audit: dict[int, AuditRecord] = dataclasses.field(default_factory=dict)
    operations: dict[int, Operation] = dataclasses.field(default_factory=dict)
    marks: dict[str, Mark] = dataclasses.field(default_factory=dict)
    slack_events: dict[str, datetime] = dataclasses.field(default_factory=dict)
    webhook_events: dict[str, datetime] = dataclasses.field(default_factory=dict)
    slack_messages: dict[tuple[Thread, int], SlackMessage] = dataclasses.field(default_factory=dict)
    next_id: dict[str, int] = dataclasses.field(default_factory=dict)

    def new_id(self, table: str) -> int:
        """The next id of ``table`` (like a sequence, never given back on rollback)."""
        self.next_id[table] = self.next_id.get(table, 0) + 1
        return self.next_id[table]


class Undo:
    """The writes of one unit of work, undone in reverse unless committed."""

    def __init__(self) -> None:
        self._log: list[tuple[dict[Any, Any], object, object, object]] = []

    def put(self, table: dict[Any, Any], key: object, value: object) -> None:
        """Write ``table[key] = value`` and remember how to undo it."""
        self._log.append((table, key, table.get(key, _MISSING), value))
        table[key] = value

    def delete(self, table: dict[Any, Any], key: object) -> None:
        """Delete ``table[key]`` and remember how to undo it."""
        self._log.append((table, key, table[key], _MISSING))
        del table[key]

    def commit(self) -> None:
        """Keep every write so far."""
        self._log.clear()

    def rollback(self) -> None:
        """Undo every write since the last commit.

        A row another unit has written since is left as that unit wrote it: undoing ours would
        silently discard theirs (SQL would have made the other unit wait instead).
        """
        for table, key, old, new in reversed(self._log):
            if table.get(key, _MISSING) is not new:
                continue
            if old is _MISSING:
                del table[key]
            else:
                table[key] = old
        self._log.clear()


def stored(record: _R, changes: Mapping[str, object] | None = None) -> _R:
    """``record``, with ``changes`` applied, as SQL would store it: datetimes in UTC, JSON
    fields as fresh JSON copies.

    ``changes`` come from typed changes (`changed_fields`), so mypy checked their names and
    types there. Raises ``ValueError`` for a naive datetime and ``TypeError`` for a value JSON
    cannot hold.
    """
    values: dict[str, Any] = dict(changes or {})
    for f in dataclasses.fields(record):
        value = values.get(f.name, getattr(record, f.name))
        if isinstance(value, datetime):
            values[f.name] = utc(value)
    for name in _JSON_FIELDS.get(type(record), ()):
        values[name] = json_copy(values.get(name, getattr(record, name)))
    return dataclasses.replace(record, **values)


def remember_seen(seen: dict[str, datetime], key: str, now: datetime) -> bool:
    """Record an id handled at `now` (Slack events, webhook deliveries); True the first time."""
    seen_at = utc(now)
    if key in seen:
        return False
    seen[key] = seen_at
    return True


def forget_seen(seen: dict[str, datetime], before: datetime) -> int:
    """Forget the ids seen before `before`; returns how many."""
    cutoff = utc(before)
    old = [key for key, seen_at in seen.items() if seen_at < cutoff]
    for key in old:
        del seen[key]
    return len(old)


def copied(record: _R) -> _R:
    """A copy of a stored ``record`` whose JSON fields the caller may change freely."""
    names = _JSON_FIELDS.get(type(record), ())
    values: dict[str, Any] = {name: json_copy(getattr(record, name)) for name in names}
    return dataclasses.replace(record, **values)


class Repo:
    """Base of the memory repositories: the shared tables and this unit's undo log."""

    def __init__(self, tables: Tables, undo: Undo) -> None:
        self._t = tables
        self._undo = undo

    def _save(
        self, table: dict[int, _R], record: _R, changes: Mapping[str, object] | None = None
    ) -> _R:
        """Store ``record`` (with ``changes``) under its id in this unit; return a copy."""
        kept = stored(record, changes)
        self._undo.put(table, kept.id, kept)
        return copied(kept)
