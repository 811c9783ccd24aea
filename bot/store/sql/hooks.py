"""The ``webhook_events`` table behind `bot.webhook.HookStore`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.sql._rows import insert
from bot.store.sql.tables import WebhookEventRow

__all__ = ["SqlHookStore"]


class SqlHookStore:
    """`bot.webhook.HookStore` over the database; each call is its own transaction, and the
    primary key decides between replicas that receive the same delivery at once."""

    def __init__(self, sessions: Callable[[], AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect

    async def remember_hook(self, hook_event_id: str, now: datetime) -> bool:
        stmt = (
            insert(self._dialect, WebhookEventRow)
            .values(hook_event_id=hook_event_id, seen_at=now)
            .on_conflict_do_nothing(index_elements=["hook_event_id"])
            .returning(WebhookEventRow.hook_event_id)
        )
        async with self._sessions() as session, session.begin():
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def forget_hooks(self, before: datetime) -> int:
        stmt = (
            delete(WebhookEventRow)
            .where(WebhookEventRow.seen_at < before)
            .returning(WebhookEventRow.hook_event_id)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            return len((await session.scalars(stmt)).all())
