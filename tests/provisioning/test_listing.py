"""The owner's shared panel listing: one call for many readers, kept a few seconds, dropped when
vfbot changes a server; against the sandbox panel on loopback."""

from __future__ import annotations

import asyncio

import pytest

from bot.provisioning.listing import LISTING_MAX_AGE_S, ServerListing
from bot.sandbox import ScriptedFault
from bot.virtfusion import VirtFusionError
from tests.provisioning.conftest import Harness

_LISTING = r"^/servers/user/1$"


def _listing(harness: Harness) -> ServerListing:
    return ServerListing(harness.client, 1, harness.clock)


def _calls(harness: Harness) -> int:
    return harness.panel.count("GET", _LISTING)


async def test_concurrent_readers_share_one_panel_call(harness: Harness) -> None:
    listing = _listing(harness)
    harness.panel.faults.latency_s = 0.02  # the call is still under way when all have asked
    answers = await asyncio.gather(*(listing.recent() for _ in range(20)))
    assert _calls(harness) == 1
    assert all(answer == answers[0] for answer in answers)


async def test_a_listing_is_kept_until_it_is_old(harness: Harness) -> None:
    listing = _listing(harness)
    await listing.fetch()  # as the engine's tracking does every poll
    for _ in range(3):
        await listing.recent()
    assert _calls(harness) == 1
    harness.clock.advance(LISTING_MAX_AGE_S)
    await listing.recent()
    assert _calls(harness) == 1  # exactly the age allowed
    harness.clock.advance(1)
    await listing.recent()
    assert _calls(harness) == 2
    await listing.fetch()  # fetch always asks
    assert _calls(harness) == 3


async def test_forget_makes_the_next_reader_ask(harness: Harness) -> None:
    listing = _listing(harness)
    await listing.recent()
    listing.forget()
    await listing.recent()
    assert _calls(harness) == 2


async def test_a_failed_call_reaches_every_waiter_and_the_next_reader_asks_again(
    harness: Harness,
) -> None:
    listing = _listing(harness)
    harness.panel.faults.script.append(
        ScriptedFault("GET", _LISTING, "403", times=10)  # refused: not retried
    )
    results = await asyncio.gather(*(listing.recent() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, VirtFusionError) for r in results)
    harness.panel.faults.script.clear()
    assert isinstance(await listing.recent(), list)


async def test_services_of_one_context_share_its_listing(harness: Harness) -> None:
    record = await harness.submit_file("create.json")
    await harness.run_until_done(record.id)  # tracking read the listing
    before = _calls(harness)
    inventory = harness.servers.inventory
    await inventory.list_owner_servers(limit=5)
    rows, _ = await inventory.list_managed(limit=5)
    await inventory.enrich(rows)
    assert _calls(harness) == before  # both lists used what tracking read


@pytest.mark.parametrize("action", ["suspend", "unsuspend"])
async def test_a_change_made_through_vfbot_is_listed_at_once(harness: Harness, action: str) -> None:
    record = await harness.submit_file("create.json")
    await harness.run_until_done(record.id)
    inventory, actions = harness.servers.inventory, harness.servers.actions
    rows, _ = await inventory.list_managed(limit=5)
    (resolved,) = [await harness.servers.resolver.resolve(str(rows[0].server_id))]
    if action == "unsuspend":
        await actions.suspend(resolved, actor="U_ADMIN")
    await getattr(actions, action)(resolved, actor="U_ADMIN")
    (row,) = await inventory.enrich(rows[:1])
    assert row.suspended is (action == "suspend")
