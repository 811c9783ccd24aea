"""Slack's posting pace per channel: one turn per interval, urgent waiters first."""

from __future__ import annotations

import asyncio

from bot.slack.pace import ChannelPace


async def test_urgent_waiters_go_first_then_in_order() -> None:
    pace = ChannelPace(0.01)
    served: list[str] = []

    async def wait(name: str, *, urgent: bool = False) -> None:
        await pace.turn(urgent=urgent)
        served.append(name)

    await wait("first")  # a free channel: no wait
    waiting = [
        asyncio.ensure_future(wait("progress-1")),
        asyncio.ensure_future(wait("progress-2")),
        asyncio.ensure_future(wait("notice", urgent=True)),
    ]
    await asyncio.sleep(0)  # all three are queued before the next turn comes
    await asyncio.gather(*waiting)
    assert served == ["first", "notice", "progress-1", "progress-2"]


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    pace = ChannelPace(0.01)
    await pace.turn()
    gone = asyncio.ensure_future(pace.turn(urgent=True))
    kept = asyncio.ensure_future(pace.turn())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.wait_for(kept, timeout=5)
    assert gone.cancelled()
