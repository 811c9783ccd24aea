"""Stopping the engine in order: claim nothing more, and hand back what a cut-short tick held."""

from __future__ import annotations

import asyncio
import time

from bot.provisioning.model import EventRecord, InstanceState, RequestState
from bot.provisioning.outbox import OutboxConsumer
from bot.provisioning.ports import NewEvent
from bot.sandbox import ScriptedFault
from bot.store.memory import MemoryStore
from tests.provisioning.conftest import MakeHarness, creates
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_request

REQUEST = {
    "project_name": "stop",
    "instances": [
        {
            "name": "node",
            "number_of_instances": 2,
            "template": "debian-12",
            "ssh_key_name": "default",
        }
    ],
}


async def test_a_stopping_engine_claims_nothing(make_harness: MakeHarness) -> None:
    harness = make_harness()
    record = await harness.submit_json(REQUEST)
    harness.panel.reset_log()
    harness.engine.stop_claiming()
    report = await harness.engine.run_once()
    assert not report.busy
    assert creates(harness.panel) == 0
    _, instances = await harness.requests.get(record.id)
    assert {i.state for i in instances} == {InstanceState.PLANNED}
    assert all(i.lease_owner is None for i in instances)
    assert await harness.engine.release_held() == 0


async def test_a_tick_cut_short_mid_create_hands_its_rows_to_another_worker_at_once(
    make_harness: MakeHarness,
) -> None:
    first = make_harness(lease_s=3600)  # a long lease: nobody could take the rows by waiting
    second = make_harness(lease_s=3600)
    record = await first.submit_json(REQUEST)
    first.panel.faults.hang_s = 60
    first.panel.faults.script.append(ScriptedFault("POST", r"^/servers$", "hang", times=2))

    tick = asyncio.ensure_future(first.engine.run_once())
    deadline = time.monotonic() + 10
    while creates(first.panel) < 2:  # both creates are on the wire, hanging
        assert time.monotonic() < deadline, "the creates never reached the panel"
        await asyncio.sleep(0.01)
    first.engine.stop_claiming()
    tick.cancel()  # the shutdown's deadline passed with the panel calls still in flight
    await asyncio.gather(tick, return_exceptions=True)

    # Each cut-short step handed its row back as it ended; release_held finds nothing left.
    _, held = await first.requests.get(record.id)
    assert {i.state for i in held} == {InstanceState.CREATING}
    assert all(i.lease_owner is None and i.lease_until is None for i in held)
    assert await first.engine.release_held() >= 2
    _, released = await first.requests.get(record.id)
    assert all(i.lease_owner is None and i.lease_until is None for i in released)

    # The other worker settles the creates that may have reached the panel (never creating
    # twice) and finishes the request, without the clock passing the hour-long lease.
    final = await second.run_until_done(record.id, step_s=5, max_ticks=60)
    assert final.state is RequestState.COMPLETED
    _, instances = await second.requests.get(record.id)
    assert len({i.server_id for i in instances}) == 2


async def test_a_stopped_outbox_finishes_the_event_in_hand_and_hands_out_no_more() -> None:
    store = MemoryStore()
    under_test = StoreUnderTest("memory", store.uow, store.slack_store())
    for n in range(3):
        request = await add_request(under_test, f"k{n}", state=RequestState.RUNNING)
        async with store.uow() as uow:
            await uow.events.add(NewEvent("request.started", {}, request_id=request.id), now=NOW)
            await uow.commit()
    seen: list[int] = []

    async def handler(event: EventRecord) -> None:
        seen.append(event.id)
        consumer.stop()  # SIGTERM arrives while the first event is being delivered

    consumer = OutboxConsumer(store.uow, subscriber="slack", handler=handler, clock=lambda: NOW)
    assert await consumer.drain() == 1
    assert len(seen) == 1
    assert await consumer.drain() == 0
    async with store.uow() as uow:
        assert (await uow.events.backlog("slack")).events == 2
