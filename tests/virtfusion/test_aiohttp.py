"""`AiohttpVirtFusionClient`: headers, query encoding, exception translation, no leaked secrets.

Answers come from a tiny loopback `aiohttp.web` app on 127.0.0.1 (an ephemeral port). Library
exceptions that a loopback server cannot produce on demand are injected with `aioresponses`
(whose canned *responses* do not work with aiohttp 3.14, but its exceptions do).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses
from pydantic import SecretStr
from yarl import URL

from bot.virtfusion import (
    AiohttpVirtFusionClient,
    AmbiguousResultError,
    AuthError,
    ConnectError,
    PanelTimeoutError,
    RetryPolicy,
    TransportError,
    VirtFusionError,
)
from tests.virtfusion._support import (
    BUILD_BODY,
    CREATE_BODY,
    NOW,
    ROOT_PASSWORD,
    TOKEN,
    sample,
)

MOCK_API = "https://panel.test/api/v1"  # only ever used under aioresponses
NO_RETRY = RetryPolicy(max_attempts=1)


async def _no_sleep(seconds: float) -> None:
    """Retries in these tests must not sleep for real."""


def _client(api_url: str, **options: Any) -> AiohttpVirtFusionClient:
    options.setdefault("retry", NO_RETRY)
    return AiohttpVirtFusionClient(
        api_url,
        SecretStr(TOKEN),
        timeout_s=options.pop("timeout_s", 5.0),
        rate_limit_per_s=1000.0,
        clock=lambda: NOW,
        sleep=_no_sleep,
        rng=random.Random(3),
        **options,
    )


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    content_type: str
    body: bytes


@dataclass
class LoopbackPanel:
    """Answers `(METHOD, path_qs)` from `routes` and records every request it sees."""

    api_url: str = ""
    routes: dict[tuple[str, str], tuple[int, object]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path_qs: str, status: int, payload: object = None) -> None:
        self.routes[(method, "/api/v1" + path_qs)] = (status, payload)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(
            Seen(request.method, request.path_qs, dict(request.headers), request.content_type, body)
        )
        status, payload = self.routes.get((request.method, request.path_qs), (599, None))
        if payload is None:
            return web.Response(status=status)
        if isinstance(payload, bytes):
            return web.Response(status=status, body=payload, content_type="text/html")
        return web.Response(
            status=status, body=json.dumps(payload), content_type="application/json"
        )


@pytest.fixture
async def panel() -> AsyncIterator[LoopbackPanel]:
    fake = LoopbackPanel()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with TestServer(app, host="127.0.0.1") as server:  # port 0: ephemeral
        fake.api_url = str(server.make_url("/api/v1"))
        yield fake


@pytest.fixture
async def client(panel: LoopbackPanel) -> AsyncIterator[AiohttpVirtFusionClient]:
    async with _client(panel.api_url) as c:
        yield c


# -- headers and encoding -------------------------------------------------------------------------


async def test_headers_on_a_get(client: AiohttpVirtFusionClient, panel: LoopbackPanel) -> None:
    panel.on("GET", "/connect", 200, {"data": {}})
    await client.connect()
    (seen,) = panel.seen
    assert (seen.method, seen.path_qs) == ("GET", "/api/v1/connect")
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["User-Agent"].startswith("vfbot/")
    assert seen.body == b""


async def test_json_bodies_carry_json_content_type(
    client: AiohttpVirtFusionClient, panel: LoopbackPanel
) -> None:
    panel.on("POST", "/servers", 201, sample("create_server_201"))
    panel.on("POST", "/servers/70/build", 200, sample("build_server_200"))
    created = await client.create_server(CREATE_BODY)
    await client.build_server(created.id, BUILD_BODY)
    create, build = panel.seen
    for seen in panel.seen:
        assert seen.method == "POST"
        assert seen.content_type == "application/json"
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["Accept"] == "application/json"
    assert json.loads(create.body) == {"packageId": 1, "userId": 1, "hypervisorId": 1, "ipv4": 1}
    assert json.loads(build.body) == {
        "operatingSystemId": 11,
        "name": "server 1",
        "hostname": "server1.domain.com",
        "sshKeys": [1, 2],
    }


async def test_query_encoding(client: AiohttpVirtFusionClient, panel: LoopbackPanel) -> None:
    panel.on("GET", "/servers/70?remoteState=true", 200, sample("create_server_201"))
    panel.on("DELETE", "/servers/70?delay=5", 204)
    panel.on("POST", "/servers?dryRun=true", 200, {"data": {}})
    panel.on("PUT", "/servers/70/modify/cpuThrottle?sync=false", 201, {})
    panel.on("GET", "/compute/hypervisors/groups?results=200&page=1", 200, sample("groups_page1"))
    assert (await client.server(70, remote_state=True)).id == 70
    assert await client.delete_server(70, delay_min=5) is True
    await client.validate_server(CREATE_BODY)
    await client.set_cpu_throttle(70, 20)
    assert [g.id async for g in client.groups()] == [1, 2]
    assert [s.path_qs for s in panel.seen] == [
        "/api/v1/servers/70?remoteState=true",
        "/api/v1/servers/70?delay=5",
        "/api/v1/servers?dryRun=true",
        "/api/v1/servers/70/modify/cpuThrottle?sync=false",
        "/api/v1/compute/hypervisors/groups?results=200&page=1",
    ]
    assert json.loads(panel.seen[3].body) == {"percent": 20}


async def test_api_url_trailing_slash_is_ignored(panel: LoopbackPanel) -> None:
    panel.on("GET", "/packages/1", 200, {"data": {"id": 1, "name": "Small", "memory": 1024}})
    async with _client(panel.api_url + "/") as c:
        package = await c.package(1)
    assert (package.name, package.memory_mb) == ("Small", 1024)
    assert panel.seen[0].path_qs == "/api/v1/packages/1"


async def test_error_status_over_the_wire(
    client: AiohttpVirtFusionClient, panel: LoopbackPanel
) -> None:
    panel.on("POST", "/servers/70/suspend", 423, {"msg": "server is locked"})
    panel.on("GET", "/servers/70", 502, b"<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(VirtFusionError, match="HTTP 423: server is locked"):
        await client.suspend_server(70)
    with pytest.raises(VirtFusionError, match=r"GET /servers/70 failed with HTTP 502$"):
        await client.server(70)


async def test_injected_session_is_not_closed_by_the_client(panel: LoopbackPanel) -> None:
    panel.on("GET", "/connect", 200, {})
    async with aiohttp.ClientSession() as session:
        async with _client(panel.api_url, session=session) as c:
            await c.connect()
        assert not session.closed


async def test_owned_session_is_closed_and_reopened(panel: LoopbackPanel) -> None:
    panel.on("GET", "/connect", 200, {})
    c = _client(panel.api_url)
    await c.connect()
    await c.close()
    await c.close()  # idempotent
    await c.connect()  # a new session is created lazily
    await c.close()
    assert len(panel.seen) == 2


# -- exception translation ------------------------------------------------------------------------


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


def _sends(m: aioresponses, method: str, url: str) -> int:
    return len(m.requests.get((method, URL(url)), []))


def _connector_error() -> aiohttp.ClientConnectorError:
    key = ConnectionKey("panel.test", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))


async def test_connector_error_is_connect_error(mocked: aioresponses) -> None:
    mocked.get(f"{MOCK_API}/servers/70", exception=_connector_error())
    async with _client(MOCK_API) as c:
        with pytest.raises(ConnectError, match="GET /servers/70: cannot connect") as caught:
            await c.server(70)
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


async def test_connector_error_on_create_is_retried(mocked: aioresponses) -> None:
    mocked.post(f"{MOCK_API}/servers", exception=_connector_error(), repeat=True)
    async with _client(MOCK_API, retry=RetryPolicy(max_attempts=3)) as c:
        with pytest.raises(ConnectError):
            await c.create_server(CREATE_BODY)
    assert _sends(mocked, "POST", f"{MOCK_API}/servers") == 3  # never reached: safe to repeat


async def test_timeout_is_panel_timeout_error(mocked: aioresponses) -> None:
    mocked.get(f"{MOCK_API}/servers/70", exception=TimeoutError())
    async with _client(MOCK_API) as c:
        with pytest.raises(PanelTimeoutError, match="no answer from the panel within 5 s"):
            await c.server(70)


async def test_timeout_on_get_is_retried_but_not_on_create(mocked: aioresponses) -> None:
    mocked.get(f"{MOCK_API}/servers/70", exception=TimeoutError(), repeat=True)
    mocked.post(f"{MOCK_API}/servers", exception=TimeoutError(), repeat=True)
    async with _client(MOCK_API, retry=RetryPolicy(max_attempts=3)) as c:
        with pytest.raises(PanelTimeoutError):
            await c.server(70)
        with pytest.raises(AmbiguousResultError) as caught:
            await c.create_server(CREATE_BODY)
    assert isinstance(caught.value.cause, PanelTimeoutError)
    assert _sends(mocked, "GET", f"{MOCK_API}/servers/70") == 3
    assert _sends(mocked, "POST", f"{MOCK_API}/servers") == 1


async def test_server_disconnected_is_transport_error(mocked: aioresponses) -> None:
    mocked.get(f"{MOCK_API}/servers/70", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    async with _client(MOCK_API, retry=RetryPolicy(max_attempts=2)) as c:
        with pytest.raises(TransportError, match="failed mid-request") as caught:
            await c.server(70)
    assert type(caught.value) is TransportError
    assert _sends(mocked, "GET", f"{MOCK_API}/servers/70") == 2


async def test_server_disconnected_on_create_and_build_is_ambiguous(mocked: aioresponses) -> None:
    disconnect = aiohttp.ServerDisconnectedError()
    mocked.post(f"{MOCK_API}/servers", exception=disconnect, repeat=True)
    mocked.post(f"{MOCK_API}/servers/70/build", exception=disconnect, repeat=True)
    async with _client(MOCK_API, retry=RetryPolicy()) as c:  # full policy: still one send each
        with pytest.raises(AmbiguousResultError) as created:
            await c.create_server(CREATE_BODY)
        with pytest.raises(AmbiguousResultError):
            await c.build_server(70, BUILD_BODY)
    assert type(created.value.cause) is TransportError
    assert _sends(mocked, "POST", f"{MOCK_API}/servers") == 1
    assert _sends(mocked, "POST", f"{MOCK_API}/servers/70/build") == 1


# -- secrets --------------------------------------------------------------------------------------


def _everything_said(
    caplog: pytest.LogCaptureFixture, objects: list[object], errors: list[BaseException]
) -> list[str]:
    texts: list[str] = [caplog.text]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), repr(record.__dict__)]
    for error in errors:
        chain: BaseException | None = error
        while chain is not None:
            texts += [str(chain), repr(chain), repr(vars(chain))]
            chain = chain.__cause__ or chain.__context__
    texts += [repr(o) for o in objects] + [str(o) for o in objects]
    return texts


async def test_no_token_or_root_password_anywhere(
    caplog: pytest.LogCaptureFixture, panel: LoopbackPanel
) -> None:
    caplog.set_level(logging.DEBUG)
    complete = sample("build_server_200")
    complete["data"].update(commissionStatus=3, state="complete", built="2025-01-09 13:31:00")
    panel.on("POST", "/servers", 201, sample("create_server_201"))
    panel.on("POST", "/servers/70/build", 200, sample("build_server_200"))
    panel.on("GET", "/servers/70", 200, complete)
    panel.on("GET", "/servers/71", 401)

    errors: list[BaseException] = []
    objects: list[object] = []
    async with _client(panel.api_url) as c:
        objects.append(c)
        created = await c.create_server(CREATE_BODY)
        building = await c.build_server(created.id, BUILD_BODY)
        done = await c.server(created.id)
        objects += [created, building, done, building.model_dump(), done.model_dump_json()]
        with pytest.raises(AuthError) as auth:
            await c.server(71)
        errors.append(auth.value)
    with aioresponses() as mocked:
        mocked.get(f"{MOCK_API}/servers/72", exception=aiohttp.ServerDisconnectedError())
        mocked.post(f"{MOCK_API}/servers", exception=TimeoutError())
        async with _client(MOCK_API) as c:
            for failing in (c.server(72), c.create_server(CREATE_BODY)):
                with pytest.raises(VirtFusionError) as caught:
                    await failing
                errors.append(caught.value)
    assert [type(e) for e in errors] == [AuthError, TransportError, AmbiguousResultError]
    assert "GET /servers/71 failed with HTTP 401" in str(errors[0])
    assert done.phase == "complete"
    assert panel.seen[1].headers["Authorization"] == f"Bearer {TOKEN}"  # it was really sent
    messages = [r.getMessage() for r in caplog.records]
    assert any("virtfusion POST /servers/70/build -> 200" in m for m in messages)
    assert any("virtfusion GET /servers/71 -> 401" in m for m in messages)

    for text in _everything_said(caplog, objects, errors):
        assert TOKEN not in text
        assert ROOT_PASSWORD not in text
