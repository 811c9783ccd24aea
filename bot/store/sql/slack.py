"""The Slack adapter's tables (``slack_events``, ``slack_messages``) behind `SlackStore`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.slack.threads import SlackMessage, Thread
from bot.store.sql._rows import insert
from bot.store.sql._seen import SeenIds
from bot.store.sql.tables import SlackEventRow, SlackMessageRow

__all__ = ["SqlSlackStore"]


class SqlSlackStore:
    """`bot.slack.threads.SlackStore` over the database; each call is its own transaction."""

    def __init__(self, sessions: Callable[[], AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect
        self._events = SeenIds(sessions, dialect, SlackEventRow, "event_id")

    async def remember_event(self, event_id: str, now: datetime) -> bool:
        return await self._events.remember(event_id, now)

    async def forget_events(self, before: datetime) -> int:
        return await self._events.forget(before)

    async def message(self, thread: Thread, ref_id: int) -> SlackMessage | None:
        stmt = select(SlackMessageRow).where(
            SlackMessageRow.kind == thread.value, SlackMessageRow.ref_id == ref_id
        )
        async with self._sessions() as session:
            row = (await session.scalars(stmt)).one_or_none()
            if row is None:
                return None
            return SlackMessage(channel=row.channel, ts=row.ts, notice_ts=row.notice_ts)

    async def save_message(
        self, thread: Thread, ref_id: int, message: SlackMessage, now: datetime
    ) -> None:
        values = {
            "channel": message.channel,
            "ts": message.ts,
            "notice_ts": message.notice_ts,
            "updated_at": now,
        }
        stmt = insert(self._dialect, SlackMessageRow).values(
            kind=thread.value, ref_id=ref_id, **values
        )
        stmt = stmt.on_conflict_do_update(index_elements=["kind", "ref_id"], set_=values)
        async with self._sessions() as session, session.begin():
            await session.execute(stmt)
