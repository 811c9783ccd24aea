"""Slack's posting pace: about one message per second per channel, urgent messages first.

Slack allows bursts but throttles a channel that gets more than one message a second. The
notifier waits its turn here, per channel; an approval request or a completion notice that is
waiting goes ahead of waiting progress replies.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["ChannelPace"]


class ChannelPace:
    """One turn per `interval_s` for one channel; urgent waiters are served first, then in the
    order they came."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._next_at = 0.0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    async def turn(self, *, urgent: bool = False) -> None:
        """Wait for this channel's next turn."""
        loop = asyncio.get_running_loop()
        if not self._waiting and loop.time() >= self._next_at:
            self._next_at = loop.time() + self._interval_s
            return
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), waiter))
        self._arm(loop)
        await waiter

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None and self._waiting:
            self._timer = loop.call_at(max(self._next_at, loop.time()), self._release, loop)

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        while self._waiting:
            _, _, waiter = heapq.heappop(self._waiting)
            if not waiter.done():  # a cancelled waiter gives its turn to the next
                waiter.set_result(None)
                self._next_at = loop.time() + self._interval_s
                break
        self._arm(loop)
