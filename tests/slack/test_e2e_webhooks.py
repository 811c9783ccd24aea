"""VirtFusion webhooks end to end: the sandbox panel POSTs its webhooks to the real
`/virtfusion/webhook` of a running `Runtime`, which reads the panel and posts to the fake Slack.

The engine is never ticked once a build has started (`VF_POLL_INTERVAL=60s`, a fake clock):
whatever reaches Slack afterwards came through the webhook.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.provisioning.model import InstanceState, RequestState
from bot.slack import ids
from bot.webhook import WEBHOOK_PATH
from tests.databases import PG_URL, postgres_reachable
from tests.slack.conftest import APPROVER, CHANNEL, SlackHarness, form

TOKEN = "wh-0123456789abcdef-token"


def _url(h: SlackHarness) -> str:
    return f"http://127.0.0.1:{h.runtime.bound_port}{WEBHOOK_PATH}"


def _bearer(token: str) -> str:
    return "Bearer " + base64.b64encode(token.encode()).decode()


async def _building(h: SlackHarness) -> tuple[Any, int]:
    """Submit, approve and tick until the one server is building; (request, server id)."""
    await h.submit(form(count="1"))
    await h.runtime.tick()
    (record,) = await h.runtime.core.requests.recent(limit=5)
    await h.click(ids.APPROVE, record, user=APPROVER)
    for _ in range(6):
        await h.runtime.tick()
        _, (instance,) = await h.runtime.core.requests.get(record.id)
        if instance.state is InstanceState.BUILDING and instance.error is None:
            break
        h.clock.advance(1)  # queued → building on the panel (the "installing" milestone)
    assert instance.state is InstanceState.BUILDING and instance.server_id is not None
    await h.runtime.deliver()
    return record, instance.server_id


def _aim(h: SlackHarness, token: str = TOKEN) -> None:
    h.sandbox.hooks.configure({"url": _url(h), "token": token, "every_s": None})


def _root_ts(h: SlackHarness) -> str:
    (root,) = [m for m in h.slack.messages(CHANNEL) if not m.get("thread_ts")]
    return str(root["ts"])


def _notices(h: SlackHarness) -> list[dict[str, Any]]:
    return [m for m in h.slack.thread(CHANNEL, _root_ts(h)) if m.get("reply_broadcast")]


def _metric(h: SlackHarness, outcome: str, event: str) -> float:
    value = h.runtime.ops.metrics.registry.get_sample_value(
        "vfbot_webhooks_total", {"outcome": outcome, "event": event}
    )
    return value or 0.0


async def test_a_finished_build_reaches_the_thread_through_the_webhook(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VIRTFUSION_WEBHOOK_TOKEN=TOKEN, VF_POLL_INTERVAL="60s")
    record, server_id = await _building(h)
    _aim(h)
    assert _notices(h) == []

    h.clock.advance(30)  # the panel finishes the build
    (delivery,) = await h.sandbox.hooks.flush()
    assert (delivery.event, delivery.server_id, delivery.answered) == (
        "server.build",
        server_id,
        202,
    )
    await h.runtime.hooks.idle()
    await h.runtime.deliver()

    assert (await h.runtime.core.requests.get(record.id))[0].state is RequestState.COMPLETED
    assert len(_notices(h)) == 1
    assert h.sandbox.state.count("GET", rf"^/servers/{server_id}$") == 1  # read, not believed
    assert _metric(h, "accepted", "server.build") == 1

    # The panel repeats the delivery: nothing is read, nothing is posted.
    again = await h.sandbox.hooks.send(
        "server.build", "success", server_id, None, hook_event_id=delivery.hook_event_id
    )
    assert again.answered == 202
    await h.runtime.hooks.idle()
    await h.runtime.deliver()
    assert h.sandbox.state.count("GET", rf"^/servers/{server_id}$") == 1
    assert len(_notices(h)) == 1
    assert _metric(h, "duplicate", "server.build") == 1


async def test_a_payload_that_lies_changes_nothing(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VIRTFUSION_WEBHOOK_TOKEN=TOKEN, VF_POLL_INTERVAL="60s")
    record, server_id = await _building(h)
    _aim(h)
    replies = len(h.slack.thread(CHANNEL, _root_ts(h)))
    # The server object says built and complete; the panel says building.
    lie = {"id": server_id, "commissionStatus": 3, "state": "complete", "buildFailed": False}
    lie["built"] = "2025-01-06 09:00:00"
    delivery = await h.sandbox.hooks.send("server.build", "success", server_id, lie)
    assert delivery.answered == 202
    await h.runtime.hooks.idle()
    await h.runtime.deliver()

    assert h.sandbox.state.count("GET", rf"^/servers/{server_id}$") == 1  # it asked the panel
    stored, (instance,) = await h.runtime.core.requests.get(record.id)
    assert stored.state is RequestState.RUNNING and instance.state is InstanceState.BUILDING
    assert len(h.slack.thread(CHANNEL, _root_ts(h))) == replies


async def test_an_event_naming_no_tracked_server_tracks_every_build(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VIRTFUSION_WEBHOOK_TOKEN=TOKEN, VF_POLL_INTERVAL="60s")
    record, _ = await _building(h)
    _aim(h)
    h.clock.advance(30)
    # An event vfbot does not know, about a server it does not track: one listing, at once.
    delivery = await h.sandbox.hooks.send("server.reboot", "success", 9999, {"id": 9999})
    assert delivery.answered == 202
    await h.runtime.hooks.idle()
    await h.runtime.deliver()
    assert (await h.runtime.core.requests.get(record.id))[0].state is RequestState.COMPLETED
    assert len(_notices(h)) == 1
    assert _metric(h, "accepted", "unknown") == 1
    assert any(r.levelname == "DEBUG" and "unknown event" in r.getMessage() for r in h.logs), (
        "unknown events are logged at DEBUG"
    )


async def test_the_token_is_checked_and_never_logged(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VIRTFUSION_WEBHOOK_TOKEN=TOKEN)
    body = json.dumps({"event": "server.build", "hookEventId": 1, "data": {"errors": []}})
    refusals = [
        {},  # no Authorization
        {"Authorization": f"Bearer {TOKEN}"},  # not base64-encoded, as the panel sends it
        {"Authorization": _bearer(TOKEN + "x")},
        {"Authorization": _bearer(TOKEN)[:-2]},
        {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()},
    ]
    for headers in refusals:
        async with h.http.post(_url(h), data=body, headers=headers) as response:
            assert response.status == 401
            assert await response.read() == b""
    lines = [r.getMessage() for r in h.logs if r.name == "bot.webhook"]
    assert len(lines) == len(refusals)
    assert all("missing or wrong bearer token" in line for line in lines)
    encoded = base64.b64encode(TOKEN.encode()).decode()
    assert not [r for r in h.logs if TOKEN in r.getMessage() or encoded in r.getMessage()]
    assert _metric(h, "unauthorized", "") == len(refusals)

    headers = {"Authorization": _bearer(TOKEN)}
    async with h.http.post(_url(h), data=body, headers=headers) as response:
        assert response.status == 202
    big = b"x" * (64 * 1024 + 1)
    async with h.http.post(_url(h), data=big, headers=headers) as response:
        assert response.status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(80):
            yield b"y" * 1024

    async with h.http.post(_url(h), data=chunks(), headers=headers) as response:
        assert response.status == 413
    await h.runtime.hooks.idle()


async def test_without_a_token_the_endpoint_is_off(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    async with h.http.post(_url(h), data=b"{}", headers={"Authorization": _bearer("")}) as r:
        assert r.status == 404


async def test_the_answer_does_not_wait_for_the_panel(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VIRTFUSION_WEBHOOK_TOKEN=TOKEN, VF_POLL_INTERVAL="60s")
    _, server_id = await _building(h)
    _aim(h)
    h.sandbox.state.faults.latency_s = 0.5  # every panel answer takes half a second
    delivery = await h.sandbox.hooks.send("server.build", "success", server_id, None)
    assert delivery.answered == 202
    assert h.runtime.hooks.in_flight == 1  # answered while the panel is still being read
    await h.runtime.hooks.idle()
    assert h.runtime.hooks.in_flight == 0


# -- two replicas on one PostgreSQL --------------------------------------------------------------


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (the replicas create the schema at start)."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable (CI starts it)")
    name = f"vfbot_wh_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_two_replicas_receiving_one_event_post_one_milestone(
    slack_env: Any, pg_database: str
) -> None:
    settings = {
        "VIRTFUSION_WEBHOOK_TOKEN": TOKEN,
        "VF_POLL_INTERVAL": "60s",
        "DATABASE_URL": pg_database,
    }
    first: SlackHarness = await slack_env(VF_WORKER_ID="replica-1", **settings)
    second: SlackHarness = await slack_env(VF_WORKER_ID="replica-2", **settings)
    record, server_id = await _building(first)
    _aim(first)
    first.clock.advance(30)  # the panel finishes the build
    hooks = first.sandbox.hooks
    first.sandbox.state.faults.latency_s = 0.3  # the reads overlap
    (delivery,) = hooks.due()
    event, status, _, server = delivery
    # At once: the delivery reaches both replicas (a retry, or two routes), and a second
    # webhook configured on the panel sends the same change under its own id to both.
    sent = await asyncio.gather(
        hooks.send(event, status, server_id, server, hook_event_id=1, url=_url(first)),
        hooks.send(event, status, server_id, server, hook_event_id=1, url=_url(second)),
        hooks.send(event, status, server_id, server, hook_event_id=2, url=_url(second)),
        hooks.send(event, status, server_id, server, hook_event_id=3, url=_url(first)),
    )
    assert [d.answered for d in sent] == [202] * 4
    await asyncio.gather(first.runtime.hooks.idle(), second.runtime.hooks.idle())
    await asyncio.gather(first.runtime.deliver(), second.runtime.deliver())
    duplicates = _metric(first, "duplicate", "server.build") + _metric(
        second, "duplicate", "server.build"
    )
    assert duplicates == 1
    # The deliveries were followed at the same time: both replicas read the server while it
    # was still recorded as building (a follow after the first win reads nothing), and only
    # one compare-and-set won.
    assert first.sandbox.state.count("GET", rf"^/servers/{server_id}$") >= 2

    assert (await first.runtime.core.requests.get(record.id))[0].state is RequestState.COMPLETED
    thread = first.slack.thread(CHANNEL, _root_ts(first))
    built = [m for m in thread if "built" in json.dumps(m).lower() and not m.get("reply_broadcast")]
    assert len(_notices(first)) == 1
    assert len(built) == 1, built
    async with first.runtime.db.uow() as uow:
        events = await uow.events.list_for_request(record.id)
    assert [e.kind for e in events].count("instance.built") == 1


async def test_socket_mode_serves_the_webhook_on_its_http_port(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(socket_mode=True, VIRTFUSION_WEBHOOK_TOKEN=TOKEN)
    body = json.dumps({"event": "catch.all", "hookEventId": "check-1"})
    async with h.http.post(_url(h), data=body, headers={"Authorization": _bearer(TOKEN)}) as r:
        assert r.status == 202
    await h.runtime.hooks.idle()
    assert _metric(h, "accepted", "catch.all") == 1


async def test_a_panel_outage_during_a_hint_is_one_warning(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VIRTFUSION_WEBHOOK_TOKEN=TOKEN, VF_POLL_INTERVAL="60s")
    record, _ = await _building(h)
    _aim(h)
    h.sandbox.state.faults.server_error_ratio = 1.0  # every panel call answers 500
    delivery = await h.sandbox.hooks.send("catch.all", "success", None, None)
    assert delivery.answered == 202
    await h.runtime.hooks.idle()
    warnings = [r.getMessage() for r in h.logs if r.name == "bot.webhook"]
    assert any("not followed now" in w for w in warnings), warnings
    assert not [r for r in h.logs if r.name == "bot.webhook" and r.exc_info]
    assert (await h.runtime.core.requests.get(record.id))[0].state is RequestState.RUNNING
