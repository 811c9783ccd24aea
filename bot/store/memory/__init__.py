"""An in-memory store for fast unit tests; passes the same contract tests as the SQL store.

Each repository method runs without yielding to the event loop, so a compare-and-set or a claim
is atomic as it is in SQL. Records go in and come out as SQL stores them: datetimes in UTC (a
naive one is refused), JSON fields as fresh JSON copies. A unit of work keeps an undo log:
leaving it without ``commit()`` undoes its writes. Other units see writes before they are
committed (read-uncommitted), which unit tests never rely on; isolation is the SQL store's
business.
"""

from __future__ import annotations

from typing import Self

from bot.store.memory._tables import Tables, Undo
from bot.store.memory.events import MemoryAuditRepo, MemoryEventRepo
from bot.store.memory.hooks import MemoryHookStore
from bot.store.memory.instances import MemoryInstanceRepo
from bot.store.memory.marks import MemoryMarkRepo
from bot.store.memory.operations import MemoryOperationRepo
from bot.store.memory.requests import MemoryRequestRepo
from bot.store.memory.slack import MemorySlackStore

__all__ = ["MemoryStore", "MemoryUnitOfWork"]


class MemoryUnitOfWork:
    """One unit of work over the shared tables; leaving it without ``commit`` rolls back."""

    def __init__(self, tables: Tables) -> None:
        self._undo = Undo()
        self.requests = MemoryRequestRepo(tables, self._undo)
        self.instances = MemoryInstanceRepo(tables, self._undo)
        self.events = MemoryEventRepo(tables, self._undo)
        self.audit = MemoryAuditRepo(tables, self._undo)
        self.operations = MemoryOperationRepo(tables, self._undo)
        self.marks = MemoryMarkRepo(tables, self._undo)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._undo.rollback()

    async def commit(self) -> None:
        """Keep the work so far; the unit stays usable."""
        self._undo.commit()

    async def rollback(self) -> None:
        """Discard the work since the last commit."""
        self._undo.rollback()


class MemoryStore:
    """Everything the app stores, in memory: ``uow()`` for the domain, ``slack_store()`` for
    the Slack adapter (the same surface as ``bot.store.sql.Database``)."""

    def __init__(self) -> None:
        self._tables = Tables()

    def uow(self) -> MemoryUnitOfWork:
        """A new unit of work over the shared tables."""
        return MemoryUnitOfWork(self._tables)

    def slack_store(self) -> MemorySlackStore:
        """The Slack adapter's store over the same tables."""
        return MemorySlackStore(self._tables)

    def hook_store(self) -> MemoryHookStore:
        """The webhook receiver's record of handled deliveries, over the same tables."""
        return MemoryHookStore(self._tables)
