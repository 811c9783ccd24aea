"""The sandbox sends the panel's webhooks (headers and body fields as the docs list them) for
servers created, built (or failed) and deleted, once each, to the URL the admin endpoint sets."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.sandbox import FakeClock, SandboxServer
from tests.sandbox.conftest import Api, create

_DOC_FIELDS = {
    "event",
    "created",
    "hookId",
    "hookEventId",
    "eventStatus",
    "controlDomain",
    "controlName",
    "controlSupportLink",
    "data",
}


@pytest.fixture
async def received() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], Any]]]]:
    """A receiver on loopback: (its URL, what it got)."""
    got: list[tuple[dict[str, str], Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.json()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


async def test_created_built_and_deleted_servers_are_sent_once(
    sandbox: SandboxServer,
    admin: Api,
    api: Api,
    clock: FakeClock,
    received: tuple[str, list[tuple[dict[str, str], Any]]],
) -> None:
    url, got = received
    reply = await admin.post("/_sandbox/webhook", {"url": url, "token": "tk", "every_s": None})
    assert reply.status == 200 and reply.body == {"url": url, "token": True, "every_s": None}
    server = await create(api)
    await api.post(f"/servers/{server['id']}/build", {"operatingSystemId": 1})
    await sandbox.hooks.flush()
    clock.advance(3600)
    await sandbox.hooks.flush()
    await sandbox.hooks.flush()  # nothing new: nothing sent
    await api.call("DELETE", f"/servers/{server['id']}")
    await sandbox.hooks.flush()

    events = [(body["event"], body["eventStatus"]) for _, body in got]
    assert events == [
        ("server.create", "success"),
        ("server.build", "success"),
        ("server.destroy", "success"),
    ]
    headers, body = got[1]
    assert set(body) == _DOC_FIELDS
    assert body["data"]["server"]["id"] == server["id"] and body["data"]["errors"] == []
    assert body["data"]["server"]["commissionStatus"] == 3  # as GET /servers/{id} says
    assert got[2][1]["data"]["server"] is False
    assert headers["Authorization"] == "Bearer " + base64.b64encode(b"tk").decode()
    assert headers["X-VirtFusion-Hook-Event"] == str(body["hookEventId"])
    assert headers["X-VirtFusion-Event"] == "server.build"
    assert headers["X-VirtFusion-Event-Status"] == "success"
    assert headers["X-VirtFusion-Hook"] == "1"
    assert headers["X-VirtFusion-Created"].endswith("Z")
    assert headers["User-Agent"].startswith("VirtFusion-Hookshot/")
    assert headers["Content-Type"] == "application/json"
    assert len({b["hookEventId"] for _, b in got}) == 3
    assert [d.answered for d in sandbox.hooks.sent] == [204, 204, 204]


async def test_a_failed_build_is_sent_as_a_failure(
    sandbox: SandboxServer,
    admin: Api,
    api: Api,
    clock: FakeClock,
    received: tuple[str, list[tuple[dict[str, str], Any]]],
) -> None:
    url, got = received
    server = await create(api)  # before the URL is set: not sent
    await admin.post("/_sandbox/webhook", {"url": url, "every_s": None})
    sandbox.state.timing.fail_next = 1
    await api.post(f"/servers/{server['id']}/build", {"operatingSystemId": 1})
    clock.advance(3600)
    await sandbox.hooks.flush()
    ((headers, body),) = got
    assert (body["event"], body["eventStatus"]) == ("server.build", "fail")
    assert "Authorization" not in headers  # no token configured


async def test_bad_webhook_settings_are_refused(admin: Api, sandbox: SandboxServer) -> None:
    for bad in ({"url": 5}, {"every_s": 0}, {"colour": "red"}, [1]):
        reply = await admin.post("/_sandbox/webhook", bad)
        assert reply.status == 400, bad
    assert (await admin.get("/_sandbox/webhook")).body == {
        "url": None,
        "token": False,
        "every_s": 0.05,
    }
