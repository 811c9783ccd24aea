"""Tables of ids already handled (Slack event ids, webhook delivery ids): the first to remember
an id wins, across processes (the primary key decides); old ids are forgotten."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.store.sql._rows import insert
from bot.store.sql.tables import Base

__all__ = ["SeenIds"]

_SEEN_AT = "seen_at"  # when an id was seen, in each such table


class SeenIds:
    """One such table: `key` names its primary-key column; `seen_at` says when."""

    def __init__(
        self, sessions: Callable[[], AsyncSession], dialect: str, table: type[Base], key: str
    ) -> None:
        self._sessions = sessions
        self._dialect = dialect
        self._table = table
        self._key_name = key
        self._key: InstrumentedAttribute[str] = getattr(table, key)
        self._at: InstrumentedAttribute[datetime] = getattr(table, _SEEN_AT)

    async def remember(self, value: str, now: datetime) -> bool:
        """Record `value`; True the first time, False when it was recorded already."""
        stmt = (
            insert(self._dialect, self._table)
            .values({self._key_name: value, _SEEN_AT: now})
            .on_conflict_do_nothing(index_elements=[self._key_name])
            .returning(self._key)
        )
        async with self._sessions() as session, session.begin():
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def forget(self, before: datetime) -> int:
        """Forget the ids seen before `before`; returns how many."""
        stmt = (
            delete(self._table)
            .where(self._at < before)
            .returning(self._key)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            return len((await session.scalars(stmt)).all())
