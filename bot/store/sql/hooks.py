"""The ``webhook_events`` table behind `bot.webhook.HookStore`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.sql._seen import SeenIds
from bot.store.sql.tables import WebhookEventRow

__all__ = ["SqlHookStore"]


class SqlHookStore:
    """`bot.webhook.HookStore` over the database; each call is its own transaction, and the
    primary key decides between replicas that receive the same delivery at once."""

    def __init__(self, sessions: Callable[[], AsyncSession], dialect: str) -> None:
        self._seen = SeenIds(sessions, dialect, WebhookEventRow, "hook_event_id")

    async def remember_hook(self, hook_event_id: str, now: datetime) -> bool:
        return await self._seen.remember(hook_event_id, now)

    async def forget_hooks(self, before: datetime) -> int:
        return await self._seen.forget(before)
