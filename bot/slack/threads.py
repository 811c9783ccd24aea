"""Slack's own bookkeeping: where each request's and operation's messages live, and which Slack
deliveries were already handled. The domain never sees either.

`SlackStore` is the port; ``bot.store`` implements it (SQL for the app, memory for unit tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = ["SlackMessage", "SlackStore", "Thread"]


class Thread(StrEnum):
    """What a Slack message belongs to."""

    REQUEST = "request"
    OPERATION = "operation"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A posted root message (``ts``) and, once posted, its completion notice (``notice_ts``)."""

    channel: str
    ts: str
    notice_ts: str | None = None


class SlackStore(Protocol):
    """Slack coordinates and delivery de-duplication, shared by every replica."""

    async def remember_event(self, event_id: str, now: datetime) -> bool:
        """Record a Slack event id; True the first time, False for a redelivery."""
        ...

    async def forget_events(self, before: datetime) -> int:
        """Forget event ids seen before ``before``; return how many were forgotten."""
        ...

    async def message(self, thread: Thread, ref_id: int) -> SlackMessage | None:
        """Where the request's or operation's root message lives, if it was posted."""
        ...

    async def save_message(
        self, thread: Thread, ref_id: int, message: SlackMessage, now: datetime
    ) -> None:
        """Remember (or move) the root message of a request or operation."""
        ...
