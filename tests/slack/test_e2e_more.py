"""More of the Slack app end to end: reject, retry/clean up, channels, inline JSON, health."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.provisioning.model import InstanceState, RequestState
from bot.sandbox import BuildTiming
from bot.slack import ids
from tests import promtext
from tests.promtext import samples
from tests.slack import signing
from tests.slack.conftest import APPROVER, CHANNEL, REQUESTER, SlackHarness, form
from tests.slack.test_e2e_create import _buttons, _request, _root, _text_of


async def test_reject_asks_a_reason_and_says_who_rejected(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.submit(form())
    await h.runtime.tick()
    record = await _request(h)

    await h.click(ids.REJECT, record, user=APPROVER)
    opened = h.slack.calls_to("views.open")
    assert len(opened) == 1 and opened[0].params["view"]["callback_id"] == ids.REJECT_VIEW
    metadata = opened[0].params["view"]["private_metadata"]
    reason = {ids.B_REASON: {ids.B_REASON: signing.plain_text_input("use the <!channel> budget")}}
    await h.submit(reason, user=APPROVER, callback_id=ids.REJECT_VIEW, metadata=metadata)
    await h.runtime.tick()

    record = await _request(h)
    assert record.state is RequestState.REJECTED
    assert record.decision_note == "use the <!channel> budget"
    root = _root(h)
    assert _buttons(root) == []
    thread = "\n".join(_text_of(m) for m in h.slack.thread(CHANNEL, root["ts"]))
    assert f"<@{APPROVER}>" in thread
    assert "&lt;!channel&gt;" in thread and "<!channel>" not in thread  # pings nobody
    real_creates = [
        c for c in h.sandbox.state.calls("POST", r"^/servers$") if c.query.get("dryRun") != "true"
    ]
    assert real_creates == []


async def test_retry_failed_and_clean_up_are_authorized_and_idempotent(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    h.sandbox.state.timing = BuildTiming(queued_s=2, build_s=6, fail_next=1)
    await h.submit(form(count="2"))
    await h.run_engine(ticks=10)
    record = await _request(h)
    assert record.state is RequestState.PARTIALLY_FAILED
    notice = next(m for m in h.slack.thread(CHANNEL, _root(h)["ts"]) if m.get("reply_broadcast"))
    assert set(_buttons(notice)) == {ids.RETRY_FAILED, ids.CLEANUP}

    await h.click(ids.RETRY_FAILED, record, user="U0STRANGER")
    assert (await _request(h)).state is RequestState.PARTIALLY_FAILED
    assert any("Only" in t for t in h.ephemeral_texts())

    await h.click(ids.RETRY_FAILED, record, user=REQUESTER)
    await h.click(ids.RETRY_FAILED, record, user=REQUESTER)  # a second click changes nothing
    await h.run_engine(ticks=10)
    record = await _request(h)
    assert record.state is RequestState.COMPLETED
    _, instances = await h.runtime.core.requests.get(record.id)
    assert all(i.state is InstanceState.BUILT for i in instances)
    # The failed server was deleted before its replacement was created: two servers remain.
    assert len([s for s in h.sandbox.state.servers.values() if s.owner_id == 1]) == 2
    assert any("already being retried" in t or "completed" in t or "running" in t
               for t in h.ephemeral_texts())  # fmt: skip

    await h.click(ids.CLEANUP, record, user=REQUESTER)
    assert any("Nothing left to clean up" in t for t in h.ephemeral_texts())


async def test_cleanup_deletes_what_failed_builds_left(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    h.sandbox.state.timing = BuildTiming(queued_s=2, build_s=6, fail_next=1)
    await h.submit(form())
    await h.run_engine(ticks=8)
    record = await _request(h)
    assert record.state is RequestState.FAILED
    await h.click(ids.CLEANUP, record, user=APPROVER)
    await h.click(ids.CLEANUP, record, user=APPROVER)
    _, (instance,) = await h.runtime.core.requests.get(record.id)
    assert instance.state is InstanceState.DELETED
    assert not [s for s in h.sandbox.state.servers.values() if s.owner_id == 1]
    assert h.sandbox.state.count("DELETE", r"^/servers/\d+$") == 1


async def test_a_channel_without_the_bot_loses_nothing(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    h.slack.bot_channels = set()  # the bot was never invited
    await h.submit(form())
    await h.runtime.tick()
    await h.runtime.tick()
    assert len(await h.runtime.core.requests.recent()) == 1  # the request is saved
    dms = h.slack.messages(h.slack.dm_channel(REQUESTER))
    assert len(dms) == 1 and "/invite @vfbot" in dms[0]["text"]

    h.slack.bot_channels = {CHANNEL}  # invited: the pending post goes out on a later pass
    h.clock.advance(60)
    await h.runtime.tick()
    assert _buttons(_root(h)) == [ids.APPROVE, ids.REJECT]
    assert len(h.slack.messages(h.slack.dm_channel(REQUESTER))) == 1  # told once


async def test_the_notice_goes_to_the_notify_channel(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never", VF_NOTIFY_CHANNEL="C0NOTICES")
    await h.submit(form())
    await h.run_engine(ticks=8)
    notices = h.slack.messages("C0NOTICES")
    assert len(notices) == 1 and f"<@{REQUESTER}>" in _text_of(notices[0])
    assert not [m for m in h.slack.messages(CHANNEL) if m.get("reply_broadcast")]


async def test_create_with_inline_json(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="servers>5")
    request = {
        "project_name": "inline",
        "instances": [{"name": "cache", "template": "debian-12", "hypervisor_group": "Prague"}],
    }
    await h.command("create ```" + json.dumps(request).replace('"', "\u201c", 2) + "```")
    assert h.slack.calls_to("views.open") == []
    record = await _request(h)
    assert record.project_name == "inline"
    assert record.state is RequestState.RUNNING  # one server: below the approval threshold
    await h.command('create {"project_name": "x", "instances": []}')
    assert any("not valid" in t for t in h.ephemeral_texts())
    assert len(await h.runtime.core.requests.recent()) == 1


async def test_help_and_did_you_mean(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    body, headers = signing.slash_command(signing.TEST_SIGNING_SECRET, text="crate")
    status, text = await h.post(body, headers)
    assert status == 200 and "/vf create" in text
    body, headers = signing.slash_command(signing.TEST_SIGNING_SECRET, text="help")
    status, text = await h.post(body, headers)
    assert status == 200 and "/vf create" in text
    assert h.slack.calls_to("views.open") == []


async def test_health_and_readiness(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    base = f"http://127.0.0.1:{h.runtime.bound_port}"
    async with h.http.get(f"{base}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
    async with h.http.get(f"{base}/readyz") as response:
        body = await response.json()
        assert response.status == 200, body
        assert set(body["checks"]) == {"database", "slack", "panel"}
        assert body["checks"]["panel"]["required"] is False

    # The panel goes down: reported in the body and the metrics, still ready (Slack must
    # still reach vfbot to hear "cannot reach the panel").
    h.sandbox.state.faults.server_error_ratio = 1.0
    h.runtime.panel.last_success_at = None
    await h.runtime.ops.readiness.refresh(force=True)
    async with h.http.get(f"{base}/readyz") as response:
        body = await response.json()
        assert response.status == 200, body
        assert body["checks"]["panel"]["ok"] is False
    async with h.http.get(f"{base}/metrics") as response:
        assert 'vfbot_dependency_up{dependency="panel"} 0.0' in await response.text()

    # The database goes: /readyz says so once the background check has run.
    await h.runtime.db.stop()
    await h.runtime.ops.readiness.refresh(force=True)
    async with h.http.get(f"{base}/readyz") as response:
        assert response.status == 503
        assert (await response.json())["checks"]["database"]["ok"] is False


async def test_a_modal_submission_is_answered_before_planning_finishes(
    slack_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h: SlackHarness = await slack_env()
    planning, release = asyncio.Event(), asyncio.Event()
    plan = h.runtime.core.intake.plan

    async def held_plan(request: Any, **kwargs: Any) -> Any:
        planning.set()
        await release.wait()  # the panel takes as long as the test says
        return await plan(request, **kwargs)

    monkeypatch.setattr(h.runtime.core.intake, "plan", held_plan)
    payload = signing.view_submission(
        callback_id=ids.CREATE_VIEW,
        values=form(),
        view_id="V0SLOW",
        user_id=REQUESTER,
        private_metadata=json.dumps({"c": CHANNEL}),
    )
    body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
    async with h.http.post(h.url, data=body, headers=headers) as response:
        assert response.status == 200
        answer = await response.json()
    # Answered while the plan has not even been asked for, or is still waiting on the panel.
    assert answer["response_action"] == "push"
    assert "Checking" in json.dumps(answer["view"])
    h.slack.apply_view_answer("V0SLOW", answer)
    await asyncio.wait_for(planning.wait(), timeout=10)
    assert h.slack.calls_to("views.update") == []
    assert await h.runtime.core.requests.recent() == []

    release.set()
    await h.runtime.settle()
    # The pushed view now says where the request went, by its external id.
    (update,) = h.slack.calls_to("views.update")
    assert update.params["external_id"] == answer["view"]["external_id"]
    assert f"posted in <#{CHANNEL}>" in h.pushed_result()
    assert len(await h.runtime.core.requests.recent()) == 1

    response = await h.submit(form(profile="3"), view_id="V0SLOW2")  # refused by the panel
    assert response["response_action"] == "push"
    refused = h.pushed_result()
    assert "not in use" in refused and "nothing was created" in refused
    assert len(await h.runtime.core.requests.recent()) == 1


async def test_metrics_show_live_values_after_a_request(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.command("create")
    await h.submit(form(name="metered", count="2"))
    await h.runtime.tick()
    record = await _request(h)
    await h.click(ids.APPROVE, record, user=APPROVER)
    await h.run_engine(ticks=20, step_s=2.0)
    final, _ = await h.runtime.core.requests.get(record.id)
    assert final.state is RequestState.COMPLETED
    async with h.http.get(f"http://127.0.0.1:{h.runtime.bound_port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        found = samples(await response.text())

    def value(name: str, **labels: str) -> float:
        return promtext.value(found, name, **labels)

    assert value("vfbot_slack_ack_duration_seconds_count", kind="command", listener="create") == 1
    assert (
        value("vfbot_slack_ack_duration_seconds_count", kind="view", listener=ids.CREATE_VIEW) == 1
    )
    assert value("vfbot_slack_ack_duration_seconds_count", kind="action", listener=ids.APPROVE) == 1
    created = value("vfbot_panel_requests_total", method="POST", endpoint="/servers", status="201")
    assert created == 2
    assert value("vfbot_panel_request_duration_seconds_count", method="POST", endpoint="/servers")
    assert value("vfbot_engine_tick_duration_seconds_count") >= 20
    assert value("vfbot_engine_outcomes_total", outcome="built") == 2
    assert value("vfbot_build_duration_seconds_count") == 2
    assert value("vfbot_servers", state="built") == 2
    assert value("vfbot_requests", state="completed") == 1
    assert value("vfbot_outbox_backlog_events", subscriber="slack") == 0
    assert value("vfbot_outbox_oldest_undelivered_age_seconds", subscriber="slack") == 0
    assert value("vfbot_leases_held") == 0
    assert value("vfbot_store_up") == 1
    assert value("vfbot_dependency_up", dependency="database") == 1
