"""Handled webhook deliveries in memory behind `bot.webhook.HookStore`."""

from __future__ import annotations

from datetime import datetime

from bot.store._values import utc
from bot.store.memory._tables import Tables

__all__ = ["MemoryHookStore"]


class MemoryHookStore:
    """`bot.webhook.HookStore` in memory; like SQL's, each call commits at once."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def remember_hook(self, hook_event_id: str, now: datetime) -> bool:
        seen_at = utc(now)
        if hook_event_id in self._t.webhook_events:
            return False
        self._t.webhook_events[hook_event_id] = seen_at
        return True

    async def forget_hooks(self, before: datetime) -> int:
        cutoff = utc(before)
        old = [key for key, seen_at in self._t.webhook_events.items() if seen_at < cutoff]
        for key in old:
            del self._t.webhook_events[key]
        return len(old)
