"""The ``marks`` table behind `MarkRepo`: compare-and-set on one row per key."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, update

from bot.store._values import utc
from bot.store.sql._rows import SqlRepo, insert
from bot.store.sql.tables import MarkRow

__all__ = ["SqlMarkRepo"]


class SqlMarkRepo(SqlRepo):
    """Marks access; see `bot.provisioning.marks.MarkRepo`."""

    async def get_many(self, keys: Collection[str]) -> dict[str, str]:
        if not keys:
            return {}
        rows = await self._session.execute(
            select(MarkRow.key, MarkRow.value).where(MarkRow.key.in_(list(keys)))
        )
        return {key: value for key, value in rows}

    async def put_if(self, key: str, *, expected: str | None, value: str, now: datetime) -> bool:
        now = utc(now)
        if expected is None:
            # A concurrent insert of the same key waits on the primary key, then does nothing.
            added = (
                insert(self._dialect, MarkRow)
                .values(key=key, value=value, updated_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(MarkRow.key)
            )
            return (await self._session.execute(added)).scalar_one_or_none() is not None
        # PostgreSQL re-checks the WHERE against a row another transaction just committed.
        moved = (
            update(MarkRow)
            .where(MarkRow.key == key, MarkRow.value == expected)
            .values(value=value, updated_at=now)
            .returning(MarkRow.key)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(moved)).scalar_one_or_none() is not None

    async def prune(self, prefix: str, *, before: datetime) -> int:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = (
            delete(MarkRow)
            .where(MarkRow.key.like(escaped + "%", escape="\\"), MarkRow.updated_at < utc(before))
            .returning(MarkRow.key)
            .execution_options(synchronize_session=False)
        )
        return len((await self._session.scalars(stmt)).all())
