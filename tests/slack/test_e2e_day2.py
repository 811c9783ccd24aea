"""Day-2 commands end to end: every subcommand's success path and its refusals, the delete
confirmation and approval, VNC credentials only to the caller, and the App Home tab."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.provisioning.model import InstanceState, OperationState
from bot.sandbox import ScriptedFault
from bot.slack import ids
from bot.slack.policy import ApprovalRule
from bot.slack.threads import Thread
from tests.slack import signing
from tests.slack.conftest import (
    ADMIN,
    APPROVER,
    CHANNEL,
    REQUESTER,
    SlackHarness,
    form,
)
from tests.slack.test_e2e_create import _buttons, _text_of

STRANGER = "U0STRANGER"


async def _with_servers(slack_env: Any, **settings: str) -> SlackHarness:
    """A harness where REQUESTER's request VF-1 built web-1 and web-2."""
    h: SlackHarness = await slack_env(**{"VF_REQUIRE_APPROVAL": "never", **settings})
    await h.submit(form(name="web", count="2"))
    await h.run_engine(ticks=10)
    h.slack.reset()
    return h


def _last_reply(h: SlackHarness) -> str:
    """The newest thing said only to one user, with its blocks' text."""
    replies: list[dict[str, Any]] = list(h.slack.responses)
    replies += [c.params for c in h.slack.calls_to("chat.postEphemeral")]
    assert replies, "nobody was answered"
    return _text_of(replies[-1])


async def _confirm_last_modal(h: SlackHarness, *, user: str, delay: str | None = None) -> None:
    opened = h.slack.calls_to("views.open")[-1].params["view"]
    assert opened["callback_id"] == ids.CONFIRM_VIEW
    values: dict[str, Any] = {}
    if delay is not None:
        values[ids.B_DELAY] = {ids.B_DELAY: signing.number_input(delay)}
    await h.submit(
        values, user=user, callback_id=ids.CONFIRM_VIEW, metadata=opened["private_metadata"]
    )


async def _root(h: SlackHarness) -> dict[str, Any]:
    posted = await h.runtime.deps.store.message(Thread.REQUEST, 1)
    message = h.slack.message(CHANNEL, posted.ts if posted else "")
    assert message is not None
    return message


def _server(h: SlackHarness, name: str) -> Any:
    return next(s for s in h.sandbox.state.servers.values() if s.name == name)


# -- looking ------------------------------------------------------------------------------------


async def test_list_mine_all_and_a_request(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("list")
    mine = _last_reply(h)
    assert "web-1" in mine and "web-2" in mine and "VF-1" in mine

    await h.command("list all", user=REQUESTER)
    assert "Only admins" in _last_reply(h)
    await h.command("list all", user=ADMIN)
    assert "web-1" in _last_reply(h)

    await h.command("list VF-1", user=APPROVER)
    assert "web-2" in _last_reply(h)
    await h.command("list VF-1", user=STRANGER)
    assert "Only" in _last_reply(h)

    # The "Next page" button re-checks who asks.
    payload = signing.block_actions(
        action_id=ids.LIST_PAGE,
        value=json.dumps({"s": "all", "o": 0}),
        user_id=STRANGER,
        message_ts="1700000000.000100",
        response_url=h.slack.response_url(),
    )
    body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
    await h.post(body, headers)
    assert "Only admins" in _last_reply(h)


async def test_status_of_a_server_and_a_request_and_refusals(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("status web-1 live")
    detail = _last_reply(h)
    assert "web-1" in detail and "192.0.2." in detail
    await h.command("status VF-1")
    assert "VF-1" in _last_reply(h)
    await h.command("status web-9")
    assert "web-1" in _last_reply(h) or "No server" in _last_reply(h)  # suggestions
    await h.command("status web-1", user=STRANGER)
    assert "Only" in _last_reply(h)


async def test_traffic_hypervisors_check(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("traffic web-1")
    assert "GiB" in _last_reply(h) or "MiB" in _last_reply(h) or "B" in _last_reply(h)
    await h.command("hypervisors")
    assert "Prague" in _last_reply(h) and "Amsterdam" in _last_reply(h)
    await h.command("check")
    assert "✓" in _last_reply(h) or ":white_check_mark:" in _last_reply(h)


async def test_audit_is_for_admins(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("audit 5", user=REQUESTER)
    assert "Only admins" in _last_reply(h)
    await h.command("audit 5", user=ADMIN)
    assert "request.submit" in _last_reply(h) or "audit" in _last_reply(h)


async def test_wrong_channel_is_refused(slack_env: Any) -> None:
    h = await _with_servers(slack_env, VF_ALLOWED_CHANNELS=CHANNEL)
    await h.command("list", channel="C0ELSEWHERE")
    assert CHANNEL in _last_reply(h)


# -- changing -----------------------------------------------------------------------------------


async def test_delete_asks_to_confirm_then_waits_for_approval(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    policy = h.runtime.deps.policy
    h.runtime.deps.policy = replace(policy, approval=ApprovalRule.parse("always"))
    web1 = _server(h, "web-1")
    await h.command("delete web-1")
    assert h.sandbox.state.count("DELETE", r"^/servers/") == 0  # only a dialog so far
    await _confirm_last_modal(h, user=REQUESTER, delay="0")
    await h.runtime.deliver()  # the notifier posts the approval message from the outbox

    posted = [m for m in h.slack.messages(CHANNEL) if "OP-1" in _text_of(m)]
    assert len(posted) == 1 and set(_buttons(posted[0])) == {ids.DELETE_APPROVE, ids.DELETE_REJECT}

    await h.click(ids.DELETE_APPROVE, 1, user=REQUESTER)  # the requester may not approve
    assert h.sandbox.state.count("DELETE", r"^/servers/") == 0
    await h.click(ids.DELETE_APPROVE, 1, user=APPROVER)
    await h.click(ids.DELETE_APPROVE, 1, user=ADMIN)  # too late: already decided
    await h.runtime.deliver()
    assert h.sandbox.state.count("DELETE", rf"^/servers/{web1.id}$") == 1
    operation = await h.runtime.core.servers.deletes.get(1)
    assert operation.state is OperationState.DONE
    assert _buttons(next(m for m in h.slack.messages(CHANNEL) if "OP-1" in _text_of(m))) == []

    await h.runtime.tick()  # the create request's thread hears about it
    thread = "\n".join(_text_of(m) for m in h.slack.thread(CHANNEL, (await _root(h))["ts"]))
    assert "deleted" in thread.lower()
    _, instances = await h.runtime.core.requests.get(1)
    assert [i.state for i in instances].count(InstanceState.DELETED) == 1

    await h.command("delete web-1")  # already deleted: no longer a server vfbot knows by name
    assert "web-1" in _last_reply(h)
    assert len(h.slack.calls_to("views.open")) == 1


async def test_delete_of_a_server_already_gone_counts_as_done(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    web2 = _server(h, "web-2")
    h.sandbox.state.servers.pop(web2.id)  # deleted in the panel meanwhile
    await h.command(f"delete {web2.id}", user=ADMIN)
    assert f"There is no server {web2.id} on the panel" in _last_reply(h)
    await h.command("delete web-2")
    await _confirm_last_modal(h, user=REQUESTER)
    operation = await h.runtime.core.servers.deletes.get(1)
    assert operation.state is OperationState.DONE
    assert "already" in (operation.result or "")


async def test_suspend_waits_out_a_locked_server_and_reports_honestly(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    h.sandbox.state.faults.script.append(ScriptedFault("POST", r"/suspend$", "423", times=2))
    await h.command("suspend web-1")
    await _confirm_last_modal(h, user=REQUESTER)
    assert _server(h, "web-1").suspended
    assert "suspend" in _last_reply(h).lower()

    await h.command("unsuspend web-1")
    assert not _server(h, "web-1").suspended

    h.sandbox.state.faults.script.append(ScriptedFault("POST", r"/suspend$", "423", times=500))
    await h.command("suspend web-2")
    await _confirm_last_modal(h, user=REQUESTER)
    assert not _server(h, "web-2").suspended
    assert "locked" in _last_reply(h).lower() or "busy" in _last_reply(h).lower()


@pytest.mark.parametrize("action", ["boot", "restart"])
async def test_power_is_followed_to_its_result(slack_env: Any, action: str) -> None:
    h = await _with_servers(slack_env)
    await h.command(f"power web-1 {action}")
    if action == "restart":
        await _confirm_last_modal(h, user=REQUESTER)
    assert h.sandbox.state.count("GET", r"^/queue/\d+$") >= 1
    assert action[:4] in _last_reply(h).lower()


async def test_vnc_credentials_reach_only_the_caller(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("vnc web-1 enable")
    password = h.sandbox.state.issued_secrets[-1]
    private = [r for r in h.slack.responses if password in json.dumps(r)]
    assert len(private) == 1  # said once, to the caller, through their response_url
    public = [c for c in h.slack.calls if password in json.dumps(c.params)]
    assert public == []  # no chat.postMessage, no update, no thread reply carries it
    assert not any(password in r.getMessage() for r in h.logs)
    async with h.runtime.db.uow() as uow:
        audit = await uow.audit.list_recent(limit=50)
    assert not any(password in json.dumps(a.detail) for a in audit)

    await h.command("vnc web-1 enable", user=STRANGER)
    assert "Only" in _last_reply(h)
    await h.command("vnc web-1 disable")
    assert password not in _last_reply(h)


async def test_backup_plan_owner_and_throttle(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("backup-plan web-1 2")
    assert _server(h, "web-1").backup_plan_id == 2
    await h.command("backup-plan web-1 none")
    assert _server(h, "web-1").backup_plan_id == 0

    await h.command("throttle web-1 50")
    assert _server(h, "web-1").cpu_throttle == 50
    await h.command("throttle web-1 100")
    assert "99" in _last_reply(h)

    await h.command("owner web-2 2", user=REQUESTER)
    assert "Only admins" in _last_reply(h)
    await h.command("owner web-2 2", user=ADMIN)
    assert _server(h, "web-2").owner_id == 2


# -- App Home -----------------------------------------------------------------------------------


async def test_app_home_is_published_and_its_buttons_work(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.submit(form(name="api"))
    await h.runtime.tick()

    event = signing.app_home_opened_event(user_id=APPROVER, event_id="Ev0001")
    body, headers = signing.event(signing.TEST_SIGNING_SECRET, event)
    status, _ = await h.post(body, headers)
    assert status == 200
    published = h.slack.calls_to("views.publish")
    assert len(published) == 1 and published[0].params["user_id"] == APPROVER
    home = published[0].params["view"]
    buttons = [
        e.get("action_id")
        for b in home["blocks"]
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]
    assert ids.APPROVE in buttons

    # Slack retries the same event: it is handled once.
    body, headers = signing.event(signing.TEST_SIGNING_SECRET, event, retry_num=1)
    status, _ = await h.post(body, headers)
    assert status == 200
    assert len(h.slack.calls_to("views.publish")) == 1

    # Approve from the Home tab: no channel, no response_url; the Home is published again.
    payload = signing.block_actions(
        action_id=ids.APPROVE,
        value="1",
        user_id=APPROVER,
        message_ts="",
        response_url=None,
    )
    payload.pop("channel", None)
    payload.pop("message", None)
    payload["container"] = {"type": "view", "view_id": "VHOME"}
    payload["view"] = {"id": "VHOME", "type": "home"}
    body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
    status, _ = await h.post(body, headers)
    assert status == 200
    record, _ = await h.runtime.core.requests.get(1)
    assert record.decided_by == APPROVER
    assert len(h.slack.calls_to("views.publish")) == 2

    event = signing.app_home_opened_event(user_id=REQUESTER, event_id="Ev0002")
    body, headers = signing.event(signing.TEST_SIGNING_SECRET, event)
    await h.post(body, headers)
    mine = h.slack.calls_to("views.publish")[-1].params["view"]
    assert "VF-1" in json.dumps(mine)
    h.check_limits()
