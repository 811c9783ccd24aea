"""The metric families: what each edge reports, and the counts read from the store at scrape."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import TracebackType
from typing import Any

import pytest
from pydantic import SecretStr

from bot import __version__
from bot.metrics import Metrics, StoreSource, endpoint_template
from bot.provisioning.engine import TickReport
from bot.provisioning.model import RequestState
from bot.provisioning.ports import NewEvent, UnitOfWork
from bot.sandbox import PanelState, running_sandbox
from bot.slack.timing import ack_label
from bot.store.memory import MemoryStore
from bot.virtfusion import AiohttpVirtFusionClient, NotFoundError
from tests.promtext import samples
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_instances, add_request


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/connect", "/connect"),
        ("/servers/123", "/servers/{id}"),
        ("/servers/123/build", "/servers/{id}/build"),
        ("/servers/user/7", "/servers/user/{id}"),
        ("/compute/hypervisors/groups/2/resources", "/compute/hypervisors/groups/{id}/resources"),
        ("/packages/4/templates", "/packages/{id}/templates"),
    ],
)
def test_endpoint_templates_hide_ids(path: str, template: str) -> None:
    assert endpoint_template(path) == template


async def test_panel_calls_are_counted_by_endpoint_and_status() -> None:
    metrics = Metrics()
    panel = PanelState()
    async with running_sandbox(panel) as sandbox:
        client = AiohttpVirtFusionClient(sandbox.api_url, SecretStr(panel.token))
        client.observe(metrics.observe_panel)
        async with client:
            await client.group(1)
            await client.connect()
            with pytest.raises(NotFoundError):
                await client.group(999_999)
    found = samples((await metrics.render()).decode())
    group = ("endpoint", "/compute/hypervisors/groups/{id}")
    count = "vfbot_panel_requests_total"
    assert found[(count, (group, ("method", "GET"), ("status", "200")))] == 1
    assert found[(count, (group, ("method", "GET"), ("status", "404")))] == 1
    assert found[(count, (("endpoint", "/connect"), ("method", "GET"), ("status", "200")))] == 1
    latency = "vfbot_panel_request_duration_seconds_count"
    assert found[(latency, (group, ("method", "GET")))] == 2


async def test_a_tick_is_timed_and_its_outcomes_counted() -> None:
    metrics = Metrics()
    metrics.observe_tick(TickReport(created=2, built=1, build_seconds=[95.0]), 0.25)
    metrics.observe_tick(TickReport(), 0.01)
    metrics.observe_tick(TickReport(warned=3, expired=1), 0.01)
    found = samples((await metrics.render()).decode())
    assert found[("vfbot_engine_tick_duration_seconds_count", ())] == 3
    assert found[("vfbot_engine_outcomes_total", (("outcome", "created"),))] == 2
    assert found[("vfbot_engine_outcomes_total", (("outcome", "built"),))] == 1
    assert found[("vfbot_engine_outcomes_total", (("outcome", "failed"),))] == 0
    assert found[("vfbot_engine_outcomes_total", (("outcome", "expiry_warned"),))] == 3
    assert found[("vfbot_engine_outcomes_total", (("outcome", "expired"),))] == 1
    assert found[("vfbot_build_duration_seconds_count", ())] == 1
    assert found[("vfbot_build_duration_seconds_sum", ())] == 95.0
    assert found[("vfbot_build_duration_seconds_bucket", (("le", "120.0"),))] == 1
    assert found[("vfbot_build_duration_seconds_bucket", (("le", "60.0"),))] == 0


async def test_the_scrape_reads_the_store_counts() -> None:
    store = MemoryStore()
    under_test = StoreUnderTest("memory", store.uow, store.slack_store())
    request = await add_request(under_test, "k", state=RequestState.RUNNING)
    await add_instances(under_test, request.id, 3)
    async with store.uow() as uow:
        await uow.events.add(NewEvent("request.started", {}, request_id=request.id), now=NOW)
        await uow.commit()
    clock = [NOW + timedelta(seconds=90)]
    metrics = Metrics(StoreSource(store.uow, lambda: clock[0], ("slack",), "w1"))
    found = samples((await metrics.render()).decode())
    assert found[("vfbot_store_up", ())] == 1
    assert found[("vfbot_servers", (("state", "planned"),))] == 3
    assert found[("vfbot_servers", (("state", "built"),))] == 0
    assert found[("vfbot_requests", (("state", "running"),))] == 1
    assert found[("vfbot_requests", (("state", "completed"),))] == 0
    assert found[("vfbot_outbox_backlog_events", (("subscriber", "slack"),))] == 1
    age = "vfbot_outbox_oldest_undelivered_age_seconds"
    assert found[(age, (("subscriber", "slack"),))] == 90
    assert found[("vfbot_leases_held", ())] == 0
    assert found[("vfbot_info", (("version", __version__),))] == 1
    assert ("process_resident_memory_bytes", ()) in found


class _HangingUnit:
    """A unit of work whose database never answers."""

    async def __aenter__(self) -> UnitOfWork:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


async def test_a_database_that_does_not_answer_never_holds_up_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = StoreSource(_HangingUnit, lambda: NOW, ("slack",), "w1", timeout_s=0.05)  # type: ignore[arg-type]
    metrics = Metrics(source)
    for _ in range(2):
        found = samples((await metrics.render()).decode())
        assert found[("vfbot_store_up", ())] == 0
    warnings = [r for r in caplog.records if r.name == "bot.metrics"]
    assert len(warnings) == 1 and "timed out" in warnings[0].getMessage()  # once, not per scrape


@pytest.mark.parametrize(
    ("body", "label"),
    [
        ({"command": "/vf", "text": "create"}, ("command", "create")),
        ({"command": "/vf", "text": ""}, ("command", "help")),
        ({"command": "/vf", "text": "frobnicate 12"}, ("command", "other")),
        (
            {"type": "block_actions", "actions": [{"action_id": "vf_approve"}]},
            ("action", "vf_approve"),
        ),
        ({"type": "block_actions", "actions": [{"action_id": "x-1234"}]}, ("action", "other")),
        ({"type": "view_submission", "view": {"callback_id": "vf_create"}}, ("view", "vf_create")),
        ({"type": "event_callback", "event": {"type": "app_home_opened"}}, None),
    ],
)
def test_ack_labels_stay_bounded(body: dict[str, Any], label: tuple[str, str] | None) -> None:
    assert ack_label(body) == label
