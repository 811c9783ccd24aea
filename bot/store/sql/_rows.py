"""Rows to domain records, and the statement helpers every repository shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.provisioning import model
from bot.store._values import json_copy, utc
from bot.store.sql.tables import AuditRow, Base, EventRow, InstanceRow, OperationRow, RequestRow

__all__ = [
    "READ_OPTS",
    "WRITE_OPTS",
    "SqlRepo",
    "audit_record",
    "compare_and_set",
    "event_record",
    "insert",
    "instance_record",
    "operation_record",
    "request_record",
    "row_values",
]

# ORM-enabled UPDATE/INSERT: don't evaluate the WHERE against loaded objects, and refresh any
# object already in the identity map from RETURNING so a UoW never reads its own stale copy.
WRITE_OPTS = {"synchronize_session": False, "populate_existing": True}
READ_OPTS = {"populate_existing": True}

_StateRow = TypeVar("_StateRow", RequestRow, OperationRow)


class SqlRepo:
    """Base of the SQL repositories: the unit's session and the dialect's name."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._dialect = dialect


def insert(dialect: str, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's ON CONFLICT support."""
    if dialect == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


async def compare_and_set(
    session: AsyncSession,
    table: type[_StateRow],
    row_id: int,
    expected: Collection[StrEnum],
    values: dict[str, object],
    now: datetime,
) -> _StateRow | None:
    """``UPDATE table SET values WHERE id = row_id AND state IN expected``; the row, or None."""
    stmt = (
        update(table)
        .where(table.id == row_id, table.state.in_([s.value for s in expected]))
        .values(**values, updated_at=now)
        .returning(table)
        .execution_options(**WRITE_OPTS)
    )
    row: _StateRow | None = (await session.scalars(stmt)).one_or_none()
    return row


def row_values(new: object, **extra: object) -> dict[str, Any]:
    """Column values for inserting a `New…` value object (plus `extra`): enums as their
    values, datetimes in UTC, JSON fields as plain JSON copies."""
    given = {f.name: getattr(new, f.name) for f in dataclasses.fields(new)}  # type: ignore[arg-type]  # New… are dataclasses
    values: dict[str, Any] = {}
    for name, value in {**given, **extra}.items():
        if isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, datetime):
            value = utc(value)
        elif isinstance(value, dict | list):
            value = json_copy(value)
        values[name] = value
    return values


def _same_names(record_type: type[Any], row: Base, **converted: object) -> dict[str, Any]:
    """The record's fields read from the row's attributes of the same names, then ``converted``.

    Rows and records name their fields alike; the contract tests read every field back.
    """
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(record_type)}
    values.update(converted)
    return values


def request_record(row: RequestRow) -> model.RequestRecord:
    """The domain record of a ``requests`` row."""
    return model.RequestRecord(
        **_same_names(model.RequestRecord, row, state=model.RequestState(row.state))
    )


def instance_record(row: InstanceRow) -> model.InstanceRecord:
    """The domain record of an ``instances`` row."""
    state = model.InstanceState(row.state)
    return model.InstanceRecord(
        **_same_names(model.InstanceRecord, row, state=state, ipv4=list(row.ipv4))
    )


def event_record(row: EventRow) -> model.EventRecord:
    """The domain record of an ``events`` row."""
    return model.EventRecord(**_same_names(model.EventRecord, row))


def operation_record(row: OperationRow) -> model.Operation:
    """The domain record of an ``operations`` row."""
    kind, state = model.OperationKind(row.kind), model.OperationState(row.state)
    return model.Operation(
        **_same_names(model.Operation, row, kind=kind, state=state, params=dict(row.params))
    )


def audit_record(row: AuditRow) -> model.AuditRecord:
    """The domain record of an ``audit_log`` row."""
    return model.AuditRecord(**_same_names(model.AuditRecord, row))
