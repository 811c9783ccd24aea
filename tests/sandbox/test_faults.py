"""Fault injection, scripted faults, admin endpoints and the request log of the sandbox."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from bot.sandbox import Faults, PanelState, ScriptedFault, running_sandbox
from tests.sandbox.conftest import SMALL_IN_PRAGUE, Api


async def test_rate_limit_answers_429_with_retry_after(api: Api, state: PanelState) -> None:
    state.faults.rate_limit_ratio = 1.0
    state.faults.retry_after_s = 7
    reply = await api.get("/connect")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "7"
    assert state.log[-1].status == 429 and state.log[-1].fault == "429"


async def test_server_errors_are_500_502_503_with_bodies(api: Api, state: PanelState) -> None:
    state.faults.server_error_ratio = 1.0
    statuses = set()
    for _ in range(30):
        reply = await api.get("/packages")
        assert reply.raw  # every 5xx has a body, JSON or nginx HTML
        statuses.add(reply.status)
    assert statuses == {500, 502, 503}


async def test_ratios_are_deterministic_for_a_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        state = PanelState(seed=seed, faults=Faults(rate_limit_ratio=0.5))
        async with running_sandbox(state) as srv, aiohttp.ClientSession() as session:
            api = Api(session, srv.api_url, token="sandbox-token")
            return [(await api.get("/connect")).status for _ in range(20)]

    first = await statuses(3)
    assert first == await statuses(3)
    assert set(first) == {200, 429}


async def test_faults_do_not_touch_admin_endpoints(admin: Api, state: PanelState) -> None:
    state.faults.server_error_ratio = 1.0
    assert (await admin.get("/_sandbox/log")).status == 200


async def test_hang_is_cancelled_when_the_client_gives_up(api: Api, state: PanelState) -> None:
    state.faults.hang_ratio = 1.0
    state.faults.hang_s = 30.0
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await api.call("GET", "/connect", timeout_s=0.2)
    assert time.monotonic() - started < 5
    assert state.log[-1].status is None and state.log[-1].fault == "hang"


async def test_short_hang_then_answers(api: Api, state: PanelState) -> None:
    state.faults.hang_ratio = 1.0
    state.faults.hang_s = 0.05
    assert (await api.get("/connect")).status == 200


async def test_drop_closes_the_connection(api: Api, state: PanelState) -> None:
    state.faults.drop_ratio = 1.0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.get("/connect")
    # aiohttp itself retries an idempotent request once after a disconnect.
    assert [(e.status, e.fault) for e in state.calls("GET", "/connect")] == [(None, "drop")] * 2
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.post("/servers", SMALL_IN_PRAGUE)
    assert state.count("POST", "/servers") == 1  # never retried, and nothing was created
    assert state.servers == {}
    state.faults.drop_ratio = 0.0
    assert (await api.get("/connect")).status == 200


async def test_latency_is_added(api: Api, state: PanelState) -> None:
    state.faults.latency_s = 0.05
    started = time.monotonic()
    await api.get("/connect")
    assert time.monotonic() - started >= 0.05


async def test_commit_then_500_creates_the_server(api: Api, state: PanelState) -> None:
    state.faults.commit_then_fail = "500"
    state.faults.commit_then_fail_count = 1
    reply = await api.post("/servers", SMALL_IN_PRAGUE)
    assert reply.status == 500
    assert len(state.servers) == 1  # the duplicate-creation trap: it exists anyway
    listed = (await api.get("/servers/user/1")).body
    assert isinstance(listed, dict) and len(listed["data"]) == 1
    # Count used up: the next create answers normally.
    assert (await api.post("/servers", SMALL_IN_PRAGUE)).status == 201
    assert state.faults.commit_then_fail_count == 0


async def test_commit_then_fail_skips_dry_run(api: Api, state: PanelState) -> None:
    state.faults.commit_then_fail = "500"
    reply = await api.post("/servers", SMALL_IN_PRAGUE, params={"dryRun": "true"})
    assert reply.status == 200
    assert state.faults.commit_then_fail_count == -1


async def test_commit_then_drop_and_hang(api: Api, state: PanelState) -> None:
    state.faults.commit_then_fail = "drop"
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.post("/servers", SMALL_IN_PRAGUE)
    assert len(state.servers) == 1
    state.faults.commit_then_fail = "hang"
    state.faults.hang_s = 30.0
    with pytest.raises(asyncio.TimeoutError):
        await api.call("POST", "/servers", json=SMALL_IN_PRAGUE, timeout_s=0.2)
    assert len(state.servers) == 2
    assert [e.fault for e in state.calls("POST", r"^/servers$")] == [
        "commit_then_drop",
        "commit_then_hang",
    ]


async def test_scripted_faults_are_consumed_in_order(api: Api, state: PanelState) -> None:
    state.faults.script = [
        ScriptedFault("GET", r"^/servers/\d+$", "503", times=2),
        ScriptedFault("*", r"^/servers/\d+$", "429", retry_after_s=3),
        ScriptedFault("POST", r"/build$", "423"),
    ]
    sid = (await api.post("/servers", SMALL_IN_PRAGUE)).data()["id"]
    got = [await api.get(f"/servers/{sid}") for _ in range(4)]
    assert [r.status for r in got] == [503, 503, 429, 200]
    assert got[2].headers["Retry-After"] == "3"
    build = await api.post(f"/servers/{sid}/build", {"operatingSystemId": 1})
    assert (build.status, build.body) == (423, {"msg": build.body["msg"]})
    assert state.faults.script == []
    assert (await api.post(f"/servers/{sid}/build", {"operatingSystemId": 1})).status == 200


async def test_scripted_commit_then_500_on_build(api: Api, state: PanelState) -> None:
    sid = (await api.post("/servers", SMALL_IN_PRAGUE)).data()["id"]
    state.faults.script = [ScriptedFault("POST", r"/build$", "commit_then_500")]
    reply = await api.post(f"/servers/{sid}/build", {"operatingSystemId": 1})
    assert reply.status == 500
    assert (await api.get(f"/servers/{sid}")).data()["commissionStatus"] == 1


async def test_scripted_drop_and_hang(api: Api, state: PanelState) -> None:
    state.faults.hang_s = 30.0
    state.faults.script = [
        ScriptedFault("GET", "/connect", "drop", times=2),  # aiohttp retries a GET once
        ScriptedFault("GET", "/connect", "hang"),
        ScriptedFault("GET", "/connect", "401"),
    ]
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.get("/connect")
    with pytest.raises(asyncio.TimeoutError):
        await api.call("GET", "/connect", timeout_s=0.2)
    reply = await api.get("/connect")
    assert (reply.status, reply.raw) == (401, "")


async def test_admin_faults_endpoint_sets_knobs(admin: Api, api: Api, state: PanelState) -> None:
    reply = await admin.post(
        "/_sandbox/faults",
        {
            "rate_limit_ratio": 1,
            "retry_after_s": 2,
            "script": [{"method": "GET", "path_regex": "^/packages$", "kind": "502"}],
        },
    )
    assert reply.status == 200
    assert isinstance(reply.body, dict) and reply.body["retry_after_s"] == 2
    assert state.faults.rate_limit_ratio == 1.0
    assert (await api.get("/packages")).status == 502
    assert (await api.get("/packages")).status == 429
    current = (await admin.get("/_sandbox/faults")).body
    assert isinstance(current, dict) and current["script"] == []
    for bad in ({"bogus": 1}, {"drop_ratio": 2}, {"commit_then_fail": "maybe"}, [1]):
        assert (await admin.post("/_sandbox/faults", bad)).status == 400
    assert state.faults.drop_ratio == 0.0


async def test_admin_timing_endpoint(admin: Api, state: PanelState) -> None:
    reply = await admin.post("/_sandbox/timing", {"fail_next": 2, "build_s": 1.5})
    assert reply.status == 200
    assert state.timing.fail_next == 2 and state.timing.build_s == 1.5
    assert (await admin.post("/_sandbox/timing", {"build_s": "1"})).status == 400


async def test_request_log_and_admin_log(admin: Api, api: Api, state: PanelState) -> None:
    await api.get("/servers", params={"results": "5"})
    await api.post("/servers", SMALL_IN_PRAGUE)
    await api.call("GET", "/connect", token=None)
    entry = state.calls("POST", r"^/servers$")[0]
    assert entry.path == "/api/v1/servers" and entry.api_path == "/servers"
    assert entry.body == SMALL_IN_PRAGUE and entry.status == 201
    assert state.calls("GET", "^/servers$")[0].query == {"results": "5"}
    assert state.count("*", ".") == 3
    assert state.calls("GET", "/connect")[0].status == 401
    log = (await admin.get("/_sandbox/log")).body
    assert isinstance(log, list) and [e["status"] for e in log] == [200, 201, 401]
    assert (await admin.post("/_sandbox/reset-log")).status == 204
    assert state.log == []
