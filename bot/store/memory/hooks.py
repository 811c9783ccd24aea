"""Handled webhook deliveries in memory behind `bot.webhook.HookStore`."""

from __future__ import annotations

from datetime import datetime

from bot.store.memory._tables import Tables, forget_seen, remember_seen

__all__ = ["MemoryHookStore"]


class MemoryHookStore:
    """`bot.webhook.HookStore` in memory; like SQL's, each call commits at once."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def remember_hook(self, hook_event_id: str, now: datetime) -> bool:
        return remember_seen(self._t.webhook_events, hook_event_id, now)

    async def forget_hooks(self, before: datetime) -> int:
        return forget_seen(self._t.webhook_events, before)
