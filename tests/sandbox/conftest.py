"""Fixtures: a sandbox panel on an ephemeral loopback port, driven by a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.sandbox import FakeClock, PanelState, SandboxServer, running_sandbox

TOKEN = "test-token"


@dataclass
class Reply:
    status: int
    body: Any  # decoded JSON, untyped by nature
    headers: dict[str, str]
    raw: str

    def data(self) -> dict[str, Any]:
        assert isinstance(self.body, dict)
        data = self.body["data"]
        assert isinstance(data, dict)
        return data


@dataclass
class Api:
    """A thin test client: one call per request, JSON decoded when there is a body."""

    session: aiohttp.ClientSession
    url: str
    token: str | None = TOKEN

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
        token: str | None = "default",
        timeout_s: float | None = None,
    ) -> Reply:
        headers = {"Accept": "application/json"}
        use = self.token if token == "default" else token
        if use is not None:
            headers["Authorization"] = f"Bearer {use}"
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else None
        async with self.session.request(
            method, self.url + path, json=json, params=params, headers=headers, timeout=timeout
        ) as resp:
            raw = await resp.text()
            body: object = None
            if raw and resp.content_type == "application/json":
                body = await resp.json()
            return Reply(resp.status, body, dict(resp.headers), raw)

    async def get(
        self, path: str, params: dict[str, str] | list[tuple[str, str]] | None = None
    ) -> Reply:
        return await self.call("GET", path, params=params)

    async def post(
        self, path: str, json: object = None, params: dict[str, str] | None = None
    ) -> Reply:
        return await self.call("POST", path, json=json, params=params)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> PanelState:
    return PanelState(token=TOKEN, clock=clock)


@pytest.fixture
async def sandbox(state: PanelState) -> AsyncIterator[SandboxServer]:
    async with running_sandbox(state) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(sandbox: SandboxServer, session: aiohttp.ClientSession) -> Api:
    return Api(session, sandbox.api_url)


@pytest.fixture
def admin(sandbox: SandboxServer, session: aiohttp.ClientSession) -> Api:
    return Api(session, sandbox.url, token=None)


SMALL_IN_PRAGUE = {"packageId": 1, "userId": 1, "hypervisorId": 1}


async def create(api: Api, **overrides: object) -> dict[str, Any]:
    reply = await api.post("/servers", {**SMALL_IN_PRAGUE, **overrides})
    assert reply.status == 201, reply.raw
    return reply.data()
