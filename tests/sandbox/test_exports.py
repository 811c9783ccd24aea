"""The sandbox's public surface is exactly `__all__`, and the helpers behave."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest

import bot.sandbox
from bot.sandbox import FakeClock, PanelState, serve


def test_all_exports_exist_and_are_public() -> None:
    exported = set(bot.sandbox.__all__)
    public = {name for name in vars(bot.sandbox) if not name.startswith("_")}
    # Submodules show up as attributes once imported; they are not part of the surface.
    public -= {"clock", "panel"}
    assert exported == public


def test_fake_clock() -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    assert clock() == datetime(2025, 1, 1, tzinfo=UTC)
    clock.advance(90)
    assert clock() == datetime(2025, 1, 1, 0, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        FakeClock(datetime(2025, 1, 1))  # naive on purpose


def test_state_without_demo_data_is_empty() -> None:
    state = PanelState(demo_data=False)
    assert state.users == {} and state.hypervisors == {} and state.packages == {}
    assert "token" not in repr(state)


async def test_serve_runs_until_cancelled(unused_tcp_port: int) -> None:
    state = PanelState()
    task = asyncio.create_task(serve("127.0.0.1", unused_tcp_port, state))
    url = f"http://127.0.0.1:{unused_tcp_port}/api/v1/connect"
    headers = {"Authorization": "Bearer sandbox-token"}
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url, headers=headers) as resp:
                    assert resp.status == 200
                    break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.01)
        else:
            pytest.fail("serve() never came up")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
