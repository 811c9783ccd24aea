"""Rights at the moment of use: number arguments, the policy asked again on every click and
submission, replayed interactions, every refusal audited, and approvers on day-2 commands."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.provisioning.model import RequestState
from bot.provisioning.transitions import Moves
from bot.slack import ids
from bot.slack.blocks.servers import list_page_value
from bot.slack.deps import audit_refusal
from tests.databases import open_database
from tests.slack import signing
from tests.slack.conftest import ADMIN, APPROVER, CHANNEL, REQUESTER, SlackHarness, form
from tests.slack.test_e2e_day2 import STRANGER, _confirm_last_modal, _last_reply, _with_servers


async def _refusals(h: SlackHarness) -> list[tuple[str, str, str]]:
    async with h.runtime.db.uow() as uow:
        entries = await uow.audit.list_recent(limit=100)
    return [(e.actor, e.action, e.target) for e in entries if e.result == "refused"]


# -- 6. number arguments: ASCII digits only, a usage message otherwise ------------------------


@pytest.mark.parametrize(
    ("text", "user", "phrase"),
    [
        ("throttle web-1 ²", REQUESTER, "Give a percentage"),
        ("audit ²", ADMIN, "Give how many entries"),
        ("audit 0", ADMIN, "Give how many entries"),
        ("owner web-1 ²", ADMIN, "Use `/vf owner web-1 42`"),
        ("backup-plan web-1 ²", REQUESTER, "Give a backup plan id or none"),
        ("delete web-1 ²", REQUESTER, "The delay is a whole number of minutes"),
        ("delete web-1 99999", REQUESTER, "from 0 to 43800"),
        ("delete web-1 ٣", REQUESTER, "The delay is a whole number of minutes"),
    ],
)
async def test_number_arguments_take_ascii_digits_only(
    slack_env: Any, text: str, user: str, phrase: str
) -> None:
    h = await _with_servers(slack_env)
    before = len(h.sandbox.state.log)
    await h.command(text, user=user)
    assert phrase in _last_reply(h)
    assert h.slack.calls_to("views.open") == []  # no confirmation opened
    changes = [e for e in h.sandbox.state.log[before:] if e.method != "GET"]
    assert changes == []


async def test_a_delay_typed_in_the_confirmation_takes_ascii_digits_only(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("delete web-1")
    await _confirm_last_modal(h, user=REQUESTER, delay="²")
    assert "The delay must be a whole number of minutes" in _last_reply(h)
    assert h.sandbox.state.count("DELETE", r"^/servers/") == 0
    assert await h.runtime.core.servers.deletes.pending() == []


# -- 8. the policy is asked again on every click and submission ------------------------------


async def test_a_user_removed_from_the_requesters_cannot_use_an_open_confirmation(
    slack_env: Any,
) -> None:
    h = await _with_servers(slack_env)
    await h.command("power web-1 restart")  # the dialog opens while REQUESTER may
    deps = h.runtime.deps
    deps.policy = replace(deps.policy, requesters=("U0SOMEONEELSE",))
    await _confirm_last_modal(h, user=REQUESTER)
    assert h.sandbox.state.count("POST", r"/power/") == 0
    assert "not allowed to use vfbot" in _last_reply(h)
    assert (REQUESTER, "server.power", CHANNEL) in await _refusals(h)


async def test_a_channel_removed_from_the_allowed_ones_refuses_an_open_confirmation(
    slack_env: Any,
) -> None:
    h = await _with_servers(slack_env)
    await h.command("suspend web-1")
    deps = h.runtime.deps
    deps.policy = replace(deps.policy, allowed_channels=("C0ELSEWHERE",))
    await _confirm_last_modal(h, user=REQUESTER)
    assert h.sandbox.state.count("POST", r"/suspend") == 0
    assert "does not take requests in this channel" in _last_reply(h)


async def test_clean_up_and_retry_ask_the_requester_list_again(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    (record,) = await h.runtime.core.requests.recent()
    deps = h.runtime.deps
    deps.policy = replace(deps.policy, requesters=("U0SOMEONEELSE",))
    for action in (ids.CLEANUP, ids.RETRY_FAILED):
        await h.click(action, record, user=REQUESTER)
        assert "not allowed to use vfbot" in _last_reply(h)
    refused = await _refusals(h)
    assert (REQUESTER, "request.cleanup", CHANNEL) in refused
    assert (REQUESTER, "request.retry_failed", CHANNEL) in refused


async def test_approve_in_a_channel_no_longer_allowed_is_refused(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.submit(form())
    (record,) = await h.runtime.core.requests.recent()
    deps = h.runtime.deps
    deps.policy = replace(deps.policy, allowed_channels=("C0ELSEWHERE",))
    await h.click(ids.APPROVE, record, user=APPROVER)
    (record,) = await h.runtime.core.requests.recent()
    assert record.state is RequestState.PENDING_APPROVAL
    assert (APPROVER, "request.approve", CHANNEL) in await _refusals(h)


# -- 9. a replayed click or submission runs once ------------------------------------------


async def test_the_same_signed_confirmation_replayed_restarts_once(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("power web-1 restart")
    opened = h.slack.calls_to("views.open")[-1].params["view"]
    payload = signing.view_submission(
        callback_id=ids.CONFIRM_VIEW,
        values={},
        user_id=REQUESTER,
        private_metadata=opened["private_metadata"],
    )
    body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
    for _ in range(3):
        status, _ = await h.post(body, headers)
        assert status == 200
    assert h.sandbox.state.count("POST", r"/power/restart") == 1


async def test_the_same_signed_click_replayed_acts_once(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.command('create {"project_name": "p", "instances": [{"name": "web", "template": "1"}]}')
    (record,) = await h.runtime.core.requests.recent()
    h.slack.reset()
    payload = signing.block_actions(
        action_id=ids.CLEANUP,
        value=str(record.id),
        user_id=REQUESTER,
        message_ts="1700000000.000100",
        channel_id=CHANNEL,
        response_url=h.slack.response_url(),
    )
    body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
    for _ in range(3):
        await h.post(body, headers)
    assert len(h.slack.responses) == 1  # one answer: the replays never reached the listener


async def test_a_replayed_slash_command_runs_once(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    body, headers = signing.slash_command(
        signing.TEST_SIGNING_SECRET,
        text="power web-1 boot",
        user_id=REQUESTER,
        channel_id=CHANNEL,
        response_url=h.slack.response_url(),
    )
    for _ in range(3):
        await h.post(body, headers)
    assert h.sandbox.state.count("POST", r"/power/boot") == 1


# -- 10. every refusal is audited, whatever its length ------------------------------------


async def test_refusals_to_see_a_request_are_audited(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("list VF-1", user=STRANGER)
    await h.command("status VF-1", user=STRANGER)
    refused = await _refusals(h)
    assert (STRANGER, "server.list", "VF-1") in refused
    assert (STRANGER, "request.status", "VF-1") in refused


async def test_the_next_page_button_refusal_is_audited(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    value = list_page_value("VF-1", 25)  # what the Next page button of VF-1's list carries
    payload = signing.block_actions(
        action_id=ids.LIST_PAGE,
        value=value,
        user_id=STRANGER,
        message_ts="1700000000.000200",
        channel_id=CHANNEL,
        response_url=h.slack.response_url(),
    )
    body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
    await h.post(body, headers)
    assert "Only" in _last_reply(h)
    assert (STRANGER, "server.list", "VF-1") in await _refusals(h)


async def test_the_reject_reason_form_refusal_is_audited(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.submit(form())
    metadata = json.dumps({"r": "1", "c": CHANNEL})
    values = {ids.B_REASON: {ids.B_REASON: signing.plain_text_input("no")}}
    await h.submit(values, user=STRANGER, callback_id=ids.REJECT_VIEW, metadata=metadata)
    (record,) = await h.runtime.core.requests.recent()
    assert record.state is RequestState.PENDING_APPROVAL
    assert (STRANGER, "request.reject", "VF-1") in await _refusals(h)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_refusal_with_a_very_long_argument_is_still_audited(
    tmp_path: Any, kind: str
) -> None:
    """PostgreSQL enforces the 200-character target column (SQLite would not notice)."""
    async with open_database(kind, tmp_path) as db:
        moves = Moves(db.uow, lambda: signing_now(), "w")
        await audit_refusal(moves, "U" + "9" * 300, "server.owner", "x" * 5_000, "why " * 2_000)
        async with db.uow() as uow:
            (entry,) = await uow.audit.list_recent(limit=5)
    assert entry.result == "refused"
    assert len(entry.target) == 200 and entry.target.endswith("…")
    assert len(entry.actor) <= 100


def signing_now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)


async def test_an_admins_only_refusal_with_a_long_argument_is_audited(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("owner " + "w" * 3_000 + " 42", user=REQUESTER)
    assert "Only admins" in _last_reply(h)
    ((actor, action, target),) = await _refusals(h)
    assert (actor, action) == (REQUESTER, "server.owner") and len(target) == 200


# -- 13. approvers who are not requesters use day-2 commands ------------------------------


async def test_an_approver_who_is_not_a_requester_uses_day2_commands(slack_env: Any) -> None:
    h = await _with_servers(slack_env, VF_REQUESTERS=REQUESTER)
    await h.command("status web-1", user=APPROVER)
    assert "web-1" in _last_reply(h) and "not allowed" not in _last_reply(h)
    await h.command("list VF-1", user=APPROVER)
    assert "web-2" in _last_reply(h)
    await h.command("power web-1 boot", user=APPROVER)
    assert h.sandbox.state.count("POST", r"/power/boot") == 1
    await h.command("create", user=APPROVER)  # creating stays with the requesters
    assert "not allowed to request servers" in _last_reply(h)
    await h.command("status web-1", user=STRANGER)
    assert "not allowed to use vfbot" in _last_reply(h)
