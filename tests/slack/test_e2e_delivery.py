"""Slack at scale, end to end (issue 11): a delivery round says every milestone in one reply,
endings and approvals go first, lists come from the shared panel listing, the first burst costs
one `auth.test`, and Web API calls share their connections. None of this is timed: the benches
in bench/ measure speed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from bot.app import OUTBOX_RETENTION
from bot.provisioning.listing import LISTING_MAX_AGE_S
from bot.provisioning.model import RequestState
from bot.slack import ids
from bot.slack.policy import ApprovalRule
from tests.slack import signing
from tests.slack.conftest import ADMIN, CHANNEL, REQUESTER, SlackHarness, form
from tests.slack.test_e2e_create import _root, _text_of

_LISTING = r"^/servers/user/1$"


async def _engine_without_delivery(h: SlackHarness, *, ticks: int = 12) -> None:
    """Run the engine to the end while Slack hears nothing (the outbox fills up)."""
    for _ in range(ticks):
        await h.runtime.core.engine.run_once()
        h.clock.advance(2)


async def test_a_round_says_every_milestone_in_one_reply_after_the_notice(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web", count="3"))
    await h.runtime.deliver()  # the root message
    root = _root(h)
    h.slack.reset()

    await _engine_without_delivery(h)
    (record,) = await h.runtime.core.requests.recent()
    assert record.state is RequestState.COMPLETED
    await h.runtime.deliver()

    posts = h.slack.calls_to("chat.postMessage")
    notice, reply = posts  # one round: the notice first, then one reply
    assert notice.params.get("reply_broadcast") in (True, "true", "1")
    assert reply.params["thread_ts"] == root["ts"]
    said = _text_of({"text": "", "blocks": reply.params["blocks"]})
    for name in ("web-1", "web-2", "web-3"):
        lines = [line for line in said.splitlines() if f"`{name}`" in line]
        assert len(lines) == 3, lines  # created, installing, ready: each once
    assert len(h.slack.calls_to("chat.update")) == 1  # the root, once for the round
    h.check_limits()

    await h.runtime.deliver()  # nothing left: nothing said, nothing rewritten
    assert len(h.slack.calls_to("chat.postMessage")) == 2
    assert len(h.slack.calls_to("chat.update")) == 1


async def test_approvals_and_endings_go_ahead_of_progress(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="busy", count="2"))
    await h.runtime.deliver()
    for _ in range(2):  # created and installing: progress only
        await h.runtime.core.engine.run_once()
        h.clock.advance(1)
    policy = h.runtime.deps.policy
    h.runtime.deps.policy = replace(policy, approval=ApprovalRule.parse("always"))
    await h.submit(form(name="new", project="other"))  # waits for approval
    h.slack.reset()

    await h.runtime.deliver()

    first, *rest = h.slack.calls_to("chat.postMessage")
    assert not first.params.get("thread_ts")  # the new request's root, with its buttons
    assert ids.APPROVE in str(first.params["blocks"])
    assert rest and all(call.params.get("thread_ts") for call in rest)


async def test_lists_come_from_the_listing_tracking_read(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web", count="2"))
    await h.run_engine(ticks=3, step_s=1)  # created; the builds take 8 s
    h.sandbox.state.reset_log()
    h.clock.advance(h.runtime.settings.vf_poll_interval)  # tracking is due: it reads the listing
    await h.runtime.tick()
    assert h.sandbox.state.count("GET", _LISTING) == 1

    for _ in range(3):
        await h.command("list")
    await h.command("list all", user=ADMIN)
    assert h.sandbox.state.count("GET", _LISTING) == 1  # what tracking read serves them all
    assert all("web-1" in str(answer) for answer in h.slack.responses[-4:])

    h.clock.advance(LISTING_MAX_AGE_S + 1)  # too old now: one call for a burst of lists
    h.sandbox.state.faults.latency_s = 0.05
    bodies = [
        signing.slash_command(
            signing.TEST_SIGNING_SECRET,
            text="list",
            user_id=REQUESTER,
            channel_id=CHANNEL,
            response_url=h.slack.response_url(),
        )
        for _ in range(10)
    ]
    answers = await asyncio.gather(*(h.post(*body) for body in bodies))
    assert all(status == 200 for status, _ in answers)
    assert h.sandbox.state.count("GET", _LISTING) == 2


async def test_the_first_burst_asks_no_auth_test(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    at_start = len(h.slack.calls_to("auth.test"))  # the start's check (and readiness probe)
    helps = [
        signing.slash_command(signing.TEST_SIGNING_SECRET, text="help", user_id=REQUESTER)
        for _ in range(20)
    ]
    answers = await asyncio.gather(*(h.post(*body) for body in helps))
    assert all(status == 200 for status, _ in answers)
    assert len(h.slack.calls_to("auth.test")) == at_start  # none for the burst itself


async def test_web_api_calls_and_answers_share_connections(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web", count="2"))
    await h.run_engine(ticks=10)
    for _ in range(5):
        await h.command("list")
    calls = [call for call in h.slack.calls if call.peer is not None]
    assert len(calls) >= 6
    assert len({call.peer for call in calls}) <= 2  # kept alive, not one per call
    assert len(h.slack.response_peers) == 5
    assert len(set(h.slack.response_peers)) == 1


async def test_serve_forgets_delivered_events_after_the_retention(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web"))
    await h.run_engine(ticks=10)
    (record,) = await h.runtime.core.requests.recent()

    async def events() -> int:
        async with h.runtime.db.uow() as uow:
            return len(await uow.events.list_for_request(record.id))

    kept = await events()
    await h.runtime._housekeeping()
    assert await events() == kept  # delivered, but recent
    h.clock.advance((OUTBOX_RETENTION + timedelta(minutes=1)).total_seconds())
    await h.runtime._housekeeping()
    assert kept > 0 and await events() == 0


async def test_a_round_cut_short_repeats_its_reply_at_most_never_its_notice(
    slack_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a crash between a round's posts and the outbox's mark can repeat: the round is
    handed out again, but the notice posted before is remembered and not posted twice."""
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web", count="2"))
    await h.runtime.deliver()
    await _engine_without_delivery(h)
    post = h.runtime.slack.chat_postMessage
    fail = {"reply": True}

    async def cut_short(**kwargs: Any) -> Any:
        reply = kwargs.get("thread_ts") and not kwargs.get("reply_broadcast")
        if reply and fail["reply"]:
            fail["reply"] = False  # the process "dies" here, after the notice went out
            raise SlackApiError("cut short", {"ok": False, "error": "fatal_error"})
        return await post(**kwargs)

    monkeypatch.setattr(h.runtime.slack, "chat_postMessage", cut_short)
    h.slack.reset()
    await h.runtime.deliver()  # the notice is posted, the reply is not; nothing is marked
    h.clock.advance(60)  # the round's leases run out
    await h.runtime.deliver()  # handed out again

    posts = h.slack.calls_to("chat.postMessage")
    notices = [c for c in posts if str(c.params.get("reply_broadcast")).lower() == "true"]
    replies = [c for c in posts if c not in notices]
    assert len(notices) == 1 and len(replies) == 1
    said = str(replies[0].params["blocks"])
    assert all(f"`web-{n}`" in said for n in (1, 2))
