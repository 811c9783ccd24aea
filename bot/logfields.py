"""The fields a log record carries besides its message (request id, server id, worker id…),
set where they are known and written by the JSON log format; stdlib only, so any layer may set
them without knowing how logs are written (`bot.redact` writes them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["FIELDS", "FieldsFilter", "current", "log_fields", "set_process_fields"]

FIELDS = ("request_id", "server_id", "instance", "operation_id", "worker_id")
"""Every field name a record may carry, in the order the JSON format writes them."""

_task_fields: ContextVar[Mapping[str, str] | None] = ContextVar("vfbot_log_fields", default=None)
_process_fields: dict[str, str] = {}


def set_process_fields(**fields: object) -> None:
    """Fields true for the whole process (the engine's worker id), unless a task says otherwise;
    None removes one."""
    for name, value in fields.items():
        if value is None:
            _process_fields.pop(name, None)
        else:
            _process_fields[name] = str(value)


@contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Add `fields` (None values are left out) to every record logged inside the block, by this
    task and the tasks it starts."""
    added = {k: str(v) for k, v in fields.items() if v is not None}
    token = _task_fields.set({**(_task_fields.get() or {}), **added})
    try:
        yield
    finally:
        _task_fields.reset(token)


def current() -> dict[str, str]:
    """The fields in effect here: the process's, then this task's."""
    return {**_process_fields, **(_task_fields.get() or {})}


class FieldsFilter(logging.Filter):
    """Copies the fields in effect onto each record (a record's own `extra=` values win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
