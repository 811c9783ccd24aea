"""The Slack adapter's bookkeeping in memory behind `SlackStore`; each call stands alone."""

from __future__ import annotations

from datetime import datetime

from bot.slack.threads import SlackMessage, Thread
from bot.store._values import utc
from bot.store.memory._tables import Tables, forget_seen, remember_seen

__all__ = ["MemorySlackStore"]


class MemorySlackStore:
    """`bot.slack.threads.SlackStore` in memory; like SQL's, each call commits at once."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def remember_event(self, event_id: str, now: datetime) -> bool:
        return remember_seen(self._t.slack_events, event_id, now)

    async def forget_events(self, before: datetime) -> int:
        return forget_seen(self._t.slack_events, before)

    async def message(self, thread: Thread, ref_id: int) -> SlackMessage | None:
        return self._t.slack_messages.get((thread, ref_id))

    async def save_message(
        self, thread: Thread, ref_id: int, message: SlackMessage, now: datetime
    ) -> None:
        utc(now)  # not kept, but refused naive as SQL does
        self._t.slack_messages[(thread, ref_id)] = message
