"""`/vf cancel VF-n [delete]`: the rules of `vfbot cancel`, who may, and the confirmation before
servers are deleted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.provisioning.model import InstanceState, RequestState
from bot.slack import ids
from bot.slack.policy import ApprovalRule
from tests.slack.conftest import APPROVER, REQUESTER, SlackHarness, form
from tests.slack.test_e2e_day2 import STRANGER, _confirm_last_modal, _last_reply, _with_servers


async def _state(h: SlackHarness) -> RequestState:
    (record,) = await h.runtime.core.requests.recent()
    return record.state


async def test_cancel_a_pending_request(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.submit(form())
    await h.command("cancel VF-1", user=STRANGER)
    assert "Only <@U0REQUESTER>, the approvers or an admin can cancel VF-1" in _last_reply(h)
    assert await _state(h) is RequestState.PENDING_APPROVAL
    await h.command("cancel vf-1")
    assert "VF-1: cancelled; nothing new will be created" in _last_reply(h)
    assert await _state(h) is RequestState.CANCELLED
    await h.runtime.tick()  # the request's message and thread hear of it
    await h.command("cancel VF-1")
    assert _last_reply(h) == "VF-1 is cancelled; there is nothing to cancel."
    async with h.runtime.db.uow() as uow:
        audit = await uow.audit.list_recent(limit=20)
    assert [(a.actor, a.action, a.result) for a in audit if a.action == "request.cancel"] == [
        (REQUESTER, "request.cancel", "ok"),
        (STRANGER, "request.cancel", "refused"),
    ]


async def test_a_finished_request_cannot_be_cancelled(slack_env: Any) -> None:
    h = await _with_servers(slack_env)  # VF-1 is completed: two servers exist
    await h.command("cancel VF-1 delete")
    assert _last_reply(h) == "VF-1 is completed; there is nothing to cancel."
    assert h.sandbox.state.count("DELETE", r"^/servers/") == 0


async def test_cancel_with_delete_confirms_then_deletes_the_servers(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web", count="2"))
    await h.runtime.tick()  # the engine starts creating
    assert await _state(h) is RequestState.RUNNING
    await h.command("cancel VF-1 delete")
    opened = h.slack.calls_to("views.open")[-1].params["view"]
    assert opened["callback_id"] == ids.CONFIRM_VIEW
    assert "Cancel VF-1 and delete its" in str(opened)
    assert await _state(h) is RequestState.RUNNING  # nothing yet: only a dialog
    await _confirm_last_modal(h, user=REQUESTER)
    assert "Servers that exist are being deleted" in _last_reply(h)
    await h.run_engine(ticks=10)
    _, instances = await h.runtime.core.requests.get(1)
    assert all(i.state in (InstanceState.DELETED, InstanceState.CANCELLED) for i in instances)
    assert not [s for s in h.sandbox.state.servers.values() if s.name.startswith("web-")]


async def test_a_requester_cannot_delete_servers_by_cancelling_when_deletes_need_approval(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web", count="2"))
    await h.runtime.tick()
    deps = h.runtime.deps
    deps.policy = replace(deps.policy, approval=ApprovalRule.parse("always"))
    await h.command("cancel VF-1 delete")
    assert "Deleting the servers of VF-1 needs an approval" in _last_reply(h)
    assert h.slack.calls_to("views.open") == []
    await h.command("cancel VF-1 delete", user=APPROVER)  # an approver may
    await _confirm_last_modal(h, user=APPROVER)
    assert "being deleted" in _last_reply(h)


async def test_the_cancel_confirmation_asks_the_policy_again(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="web", count="2"))
    await h.runtime.tick()
    await h.command("cancel VF-1 delete")
    deps = h.runtime.deps
    deps.policy = replace(deps.policy, approval=ApprovalRule.parse("always"))
    await _confirm_last_modal(h, user=REQUESTER)
    assert "needs an approval" in _last_reply(h)
    assert await _state(h) is RequestState.RUNNING


async def test_cancel_usage(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    for text in ("cancel", "cancel web-1", "cancel VF-1 now", "cancel VF-²"):
        await h.command(text)
        assert "Name the request: `/vf cancel VF-12`" in _last_reply(h)
    await h.command("cancel VF-99")
    assert "VF-99" in _last_reply(h)
