"""The Slack adapter's bookkeeping in memory behind `SlackStore`; each call stands alone."""

from __future__ import annotations

from datetime import datetime

from bot.slack.threads import SlackMessage, Thread
from bot.store._values import utc
from bot.store.memory._tables import Tables

__all__ = ["MemorySlackStore"]


class MemorySlackStore:
    """`bot.slack.threads.SlackStore` in memory; like SQL's, each call commits at once."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def remember_event(self, event_id: str, now: datetime) -> bool:
        seen_at = utc(now)
        if event_id in self._t.slack_events:
            return False
        self._t.slack_events[event_id] = seen_at
        return True

    async def forget_events(self, before: datetime) -> int:
        cutoff = utc(before)
        old = [key for key, seen_at in self._t.slack_events.items() if seen_at < cutoff]
        for key in old:
            del self._t.slack_events[key]
        return len(old)

    async def message(self, thread: Thread, ref_id: int) -> SlackMessage | None:
        return self._t.slack_messages.get((thread, ref_id))

    async def save_message(
        self, thread: Thread, ref_id: int, message: SlackMessage, now: datetime
    ) -> None:
        utc(now)  # not kept, but refused naive as SQL does
        self._t.slack_messages[(thread, ref_id)] = message
