"""`AiohttpVirtFusionClient` against the sandbox panel over real loopback HTTP (127.0.0.1:0)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from bot.sandbox import BuildTiming, FakeClock, PanelState, ScriptedFault, running_sandbox
from bot.virtfusion import (
    AiohttpVirtFusionClient,
    AmbiguousResultError,
    AuthError,
    BuildPhase,
    BuildServerBody,
    CreateServerBody,
    InvalidRequestError,
    LockedError,
    NotFoundError,
    PanelError,
    PanelTimeoutError,
    RateLimitedError,
    RetryPolicy,
    TransportError,
)

TOKEN = "sandbox-TEST-token-4b1d"
PRAGUE = 1  # seeded hypervisor group
SMALL = 1  # seeded package
OWNER = 1  # seeded service user, SSH keys 1 and 2
CREATE = CreateServerBody(package_id=SMALL, user_id=OWNER, hypervisor_group_id=PRAGUE, ipv4=1)


@dataclass
class Rig:
    state: PanelState
    clock: FakeClock
    client: AiohttpVirtFusionClient
    api_url: str
    waits: list[float]


def _make_client(api_url: str, waits: list[float], **options: Any) -> AiohttpVirtFusionClient:
    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    options.setdefault("timeout_s", 5.0)
    return AiohttpVirtFusionClient(
        api_url,
        SecretStr(options.pop("token", TOKEN)),
        rate_limit_per_s=1000.0,
        sleep=record_sleep,
        rng=random.Random(5),
        **options,
    )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock()
    state = PanelState(token=TOKEN, clock=clock, timing=BuildTiming(queued_s=2, build_s=8))
    state.faults.hang_s = 5.0  # a hang outlives the tiny client timeout, then is cancelled
    async with running_sandbox(state) as sandbox:
        assert sandbox.api_url.startswith("http://127.0.0.1:")
        waits: list[float] = []
        async with _make_client(sandbox.api_url, waits, clock=clock) as client:
            yield Rig(state, clock, client, sandbox.api_url, waits)


async def test_catalogue(rig: Rig) -> None:
    client = rig.client
    await client.connect()
    await client.probe_compute_scope()
    groups = [g async for g in client.groups()]
    assert [(g.id, g.name) for g in groups][:2] == [(1, "Prague"), (2, "Amsterdam")]
    assert (await client.group(PRAGUE)).name == "Prague"
    hypervisors = [h async for h in client.hypervisors()]
    assert {h.group_id for h in hypervisors} >= {1, 2}
    assert (await client.hypervisor(hypervisors[0].id)).id == hypervisors[0].id
    capacity = await client.group_capacity(PRAGUE)
    assert capacity.hypervisors == 2
    assert capacity.ipv4_free == 100
    assert (await client.package(SMALL)).memory_mb == 1024
    templates = await client.package_templates(SMALL)
    assert any(t.label.startswith("Ubuntu 22.04") for t in templates)
    keys = await client.ssh_keys(OWNER)
    assert [(k.id, k.name) for k in keys] == [(1, "default"), (2, "ops-team")]


async def test_dry_run_validates_without_creating(rig: Rig) -> None:
    await rig.client.validate_server(CREATE)
    assert rig.state.servers == {}
    with pytest.raises(InvalidRequestError) as caught:
        await rig.client.validate_server(CREATE.model_copy(update={"network_profile": 4}))
    assert caught.value.messages
    assert rig.state.servers == {}
    assert all(e.query.get("dryRun") == "true" for e in rig.state.calls("POST", "^/servers$"))


async def test_create_build_poll_delete(rig: Rig) -> None:
    client = rig.client
    (key, _) = await client.ssh_keys(OWNER)
    created = await client.create_server(CREATE)
    assert created.phase is BuildPhase.ALLOCATED
    assert created.primary_ipv4 is not None
    assert created.id in rig.state.servers

    body = BuildServerBody(
        operating_system_id=1, name="web-1", hostname="web-1.example.com", ssh_key_ids=[key.id]
    )
    building = await client.build_server(created.id, body)
    assert building.phase is BuildPhase.QUEUED
    (build_call,) = rig.state.calls("POST", rf"^/servers/{created.id}/build$")
    assert build_call.body == {
        "operatingSystemId": 1,
        "name": "web-1",
        "hostname": "web-1.example.com",
        "sshKeys": [key.id],
    }

    phases = []
    for _ in range(8):
        server = await client.server(created.id)
        phases.append(server.phase)
        if server.phase is BuildPhase.COMPLETE:
            break
        rig.clock.advance(2)
    assert phases[0] is BuildPhase.QUEUED
    assert BuildPhase.BUILDING in phases
    assert phases[-1] is BuildPhase.COMPLETE
    assert server.name == "web-1"
    assert server.primary_ipv4 == created.primary_ipv4
    assert any(s.id == created.id for s in await client.user_servers(OWNER))
    assert created.id in [s.id async for s in client.servers()]

    assert await client.delete_server(created.id) is True
    assert await client.delete_server(created.id) is False
    with pytest.raises(NotFoundError, match="server not found"):
        await client.server(created.id)


async def test_failed_build_is_reported_as_failed(rig: Rig) -> None:
    rig.state.timing.fail_next = 1
    created = await rig.client.create_server(CREATE)
    await rig.client.build_server(created.id, BuildServerBody(operating_system_id=1))
    rig.clock.advance(60)
    assert (await rig.client.server(created.id)).phase is BuildPhase.FAILED


async def test_suspend_while_building_is_locked_and_retried(rig: Rig) -> None:
    created = await rig.client.create_server(CREATE)
    await rig.client.build_server(created.id, BuildServerBody(operating_system_id=1))
    with pytest.raises(LockedError):
        await rig.client.suspend_server(created.id)
    assert len(rig.state.calls("POST", "/suspend$")) == RetryPolicy().locked_attempts
    rig.clock.advance(60)
    await rig.client.suspend_server(created.id)
    assert (await rig.client.server(created.id)).suspended is True


async def test_power_and_queue(rig: Rig) -> None:
    created = await rig.client.create_server(CREATE)
    queue_id = await rig.client.power(created.id, "boot")
    rig.clock.advance(60)
    task = await rig.client.queue_task(queue_id)
    assert task.done


# -- faults ---------------------------------------------------------------------------------------


async def test_429_is_retried_after_retry_after(rig: Rig) -> None:
    rig.state.faults.script = [ScriptedFault("GET", "^/servers$", "429", retry_after_s=3)]
    assert [s async for s in rig.client.servers()] == []
    assert len(rig.state.calls("GET", "^/servers$")) == 2
    assert 3.0 <= rig.waits[0] <= 3.25


async def test_429_on_create_is_retried(rig: Rig) -> None:
    rig.state.faults.script = [ScriptedFault("POST", "^/servers$", "429", retry_after_s=1)]
    created = await rig.client.create_server(CREATE)
    assert list(rig.state.servers) == [created.id]
    assert len(rig.state.calls("POST", "^/servers$")) == 2


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
async def test_5xx_on_get_is_retried(rig: Rig, kind: Any) -> None:
    rig.state.faults.script = [ScriptedFault("GET", "^/packages/1$", kind, times=2)]
    assert (await rig.client.package(SMALL)).id == SMALL
    assert [e.status for e in rig.state.calls("GET", "^/packages/1$")] == [int(kind)] * 2 + [200]


async def test_5xx_on_create_is_not_retried(rig: Rig) -> None:
    rig.state.faults.script = [ScriptedFault("POST", "^/servers$", "503")]
    with pytest.raises(AmbiguousResultError) as caught:
        await rig.client.create_server(CREATE)
    assert isinstance(caught.value.cause, PanelError)
    assert len(rig.state.calls("POST", "^/servers$")) == 1


async def test_commit_then_500_on_create_is_ambiguous_and_the_server_exists(rig: Rig) -> None:
    rig.state.faults.commit_then_fail = "500"
    rig.state.faults.commit_then_fail_count = 1
    with pytest.raises(AmbiguousResultError) as caught:
        await rig.client.create_server(CREATE)
    assert isinstance(caught.value.cause, PanelError)
    assert len(rig.state.calls("POST", "^/servers$")) == 1
    (orphan,) = await rig.client.user_servers(OWNER)  # reconcile by reading the panel
    assert orphan.phase is BuildPhase.ALLOCATED
    assert orphan.name == ""


async def test_commit_then_drop_on_create_is_ambiguous(rig: Rig) -> None:
    rig.state.faults.script = [ScriptedFault("POST", "^/servers$", "commit_then_drop")]
    with pytest.raises(AmbiguousResultError) as caught:
        await rig.client.create_server(CREATE)
    assert isinstance(caught.value.cause, TransportError)
    assert len(rig.state.servers) == 1


async def test_hang_times_out(rig: Rig) -> None:
    rig.state.faults.script = [
        ScriptedFault("GET", "^/packages/1$", "hang"),
        ScriptedFault("POST", "^/servers$", "commit_then_hang"),
    ]
    waits: list[float] = []
    async with _make_client(
        rig.api_url, waits, timeout_s=0.2, retry=RetryPolicy(max_attempts=1)
    ) as c:
        with pytest.raises(PanelTimeoutError):
            await c.package(SMALL)
        with pytest.raises(AmbiguousResultError) as caught:
            await c.create_server(CREATE)
    assert isinstance(caught.value.cause, PanelTimeoutError)
    assert len(rig.state.servers) == 1  # committed before the hang


async def test_hang_on_get_is_retried(rig: Rig) -> None:
    rig.state.faults.script = [ScriptedFault("GET", "^/packages/1$", "hang")]
    waits: list[float] = []
    async with _make_client(rig.api_url, waits, timeout_s=0.2) as c:
        assert (await c.package(SMALL)).id == SMALL
    assert len(rig.state.calls("GET", "^/packages/1$")) == 2


async def test_drop(rig: Rig) -> None:
    rig.state.faults.script = [
        ScriptedFault("GET", "^/packages/1$", "drop"),
        ScriptedFault("POST", "^/servers$", "drop"),
    ]
    assert (await rig.client.package(SMALL)).id == SMALL  # retried
    with pytest.raises(AmbiguousResultError) as caught:
        await rig.client.create_server(CREATE)
    assert type(caught.value.cause) is TransportError
    assert (
        rig.state.servers == {}
    )  # dropped before the handler: nothing happened, but we can't know


async def test_rate_limit_exhausted(rig: Rig) -> None:
    rig.state.faults.script = [
        ScriptedFault("GET", "^/packages/1$", "429", times=99, retry_after_s=1)
    ]
    with pytest.raises(RateLimitedError):
        await rig.client.package(SMALL)
    assert len(rig.state.calls("GET", "^/packages/1$")) == RetryPolicy().max_attempts


async def test_wrong_token_is_auth_error(rig: Rig) -> None:
    waits: list[float] = []
    async with _make_client(rig.api_url, waits, token="wrong-token") as c:
        with pytest.raises(AuthError) as caught:
            await c.connect()
    assert "HTTP 401" in str(caught.value)
    assert "wrong-token" not in str(caught.value)
    assert len(rig.state.calls("GET", "^/connect$")) == 1  # never retried
