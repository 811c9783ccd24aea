"""bot.slack.blocks.home: the App Home tab in every shape, within Slack's limits."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest

from bot.provisioning.events import InstanceExpiryWarning
from bot.provisioning.model import InstanceRecord, InstanceState, OperationState
from bot.provisioning.servers.expiry import Expiring
from bot.slack import ids
from bot.slack.blocks.home import HOME_PENDING_MAX, home_view
from bot.slack.blocks.lifetimes import expiry_warning, parse_extend_value
from bot.slack.blocks.operation import operation_blocks
from bot.slack.blocks.request import request_blocks
from bot.slack.blocks.summary import RequestSummary
from tests.slack.blockkit import check_blocks
from tests.slack.test_blocks import CASES
from tests.slack.test_blocks_ops import NOW, OPERATIONS, actions, assert_view, long_row, row

PENDING = CASES["pending"]


def pending_request(i: int) -> RequestSummary:
    return dataclasses.replace(PENDING, request_id=100 + i, human_id=f"VF-{100 + i}")


def view(**changes: Any) -> Any:
    values: dict[str, Any] = {
        "user_id": "U0REQUESTER",
        "my_requests": [CASES["running"], CASES["completed"], CASES["rejected"]],
        "pending_requests": [PENDING],
        "pending_operations": [OPERATIONS["pending"]],
        "recent_servers": [row(1), row(2)],
        "can_approve": True,
        "now": NOW,
    }
    values.update(changes)
    return home_view(**values)


def text_of(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def test_home_for_an_approver() -> None:
    home = view()
    assert_view(home)
    assert home["type"] == "home" and home["callback_id"] == ids.HOME_VIEW
    text = text_of(home)
    for part in ("Your recent requests", "*VF-12* · web-shop · 5 servers — :gear: *Running*",
                 "Waiting for your approval", "*OP-5* · <@U0REQUESTER> asks to delete `web-1`",
                 "Recently built servers", "`web-1` · id 501", "`/vf create`", "`/vf help`",
                 "Hi <@U0REQUESTER>"):  # fmt: skip
        assert part in text, part
    assert actions(home["blocks"]) == [
        ids.HOME_REFRESH,
        ids.APPROVE,
        ids.REJECT,
        ids.DELETE_APPROVE,
        ids.DELETE_REJECT,
    ]


def test_approval_buttons_are_the_channel_messages_own() -> None:
    blocks = view()["blocks"]
    home_actions = [b for b in blocks if b["type"] == "actions"][1:]
    channel_request = [b for b in request_blocks(PENDING, now=NOW) if b["type"] == "actions"]
    channel_op = [
        b for b in operation_blocks(OPERATIONS["pending"], now=NOW) if b["type"] == "actions"
    ]
    assert home_actions == channel_request + channel_op
    assert home_actions[0]["elements"][0]["value"] == "12"
    assert home_actions[1]["elements"][0]["value"] == "5"


def test_no_approval_section_for_requesters() -> None:
    home = view(can_approve=False)
    assert_view(home)
    assert "Waiting for your approval" not in text_of(home)
    assert actions(home["blocks"]) == [ids.HOME_REFRESH]


def test_empty_home() -> None:
    home = view(my_requests=[], pending_requests=[], pending_operations=[], recent_servers=[])
    assert_view(home)
    text = text_of(home)
    assert "None yet — `/vf create` starts one." in text
    assert "Nothing is waiting for you." in text
    assert "No servers built yet." in text


def test_decided_items_get_no_buttons() -> None:
    # A caller passing a no-longer-pending item shows its state, never a stale button.
    home = view(
        pending_requests=[CASES["approved"]],
        pending_operations=[OPERATIONS["done"]],
    )
    assert_view(home)
    assert actions(home["blocks"]) == [ids.HOME_REFRESH]


@pytest.mark.parametrize("can_approve", [True, False])
def test_home_caps_every_section(can_approve: bool) -> None:
    evil_op = dataclasses.replace(OPERATIONS["evil"], state=OperationState.PENDING_APPROVAL)
    home = view(
        user_id="<!channel>",
        my_requests=[CASES["evil"]] * 500,
        pending_requests=[pending_request(i) for i in range(500)],
        pending_operations=[evil_op] * 500,
        recent_servers=[long_row(i) for i in range(500)],
        can_approve=can_approve,
    )
    assert_view(home)
    assert len(home["blocks"]) <= 100
    text = text_of(home)
    assert "and 490 more" in text
    if can_approve:
        assert "and 490 more requests waiting" in text
        assert "and 490 more operations waiting" in text
        assert actions(home["blocks"]).count(ids.APPROVE) == HOME_PENDING_MAX
        assert actions(home["blocks"]).count(ids.DELETE_APPROVE) == HOME_PENDING_MAX
    assert "&lt;!channel&gt;" in text


def _expiring(i: int) -> Expiring:
    instance = InstanceRecord(
        id=i, request_id=12, position=i, name=f"web-{i}", state=InstanceState.BUILT, spec={},
        server_id=500 + i, hypervisor_id=None, group_id=None, ipv4=[], os_name=None, error=None,
        attempts=0, intent_at=None, build_started_at=None, finished_at=None, lease_owner=None,
        lease_until=None, next_check_at=None, updated_at=NOW, created_at=NOW,
        expires_at=NOW + timedelta(hours=i),
    )  # fmt: skip
    return Expiring(instance, "U0REQUESTER")


def test_expiring_soon_is_listed_soonest_first_and_capped() -> None:
    home = view(expiring=[_expiring(i) for i in range(1, 30)])
    assert_view(home)
    text = text_of(home)
    assert "Expiring soon (next 7 days)" in text
    assert "`web-1` (server 501, VF-12, <@U0REQUESTER>): expires" in text
    assert "`web-10`" in text and "`web-11`" not in text  # at most ten
    assert "Nothing expires in that time." in text_of(view())
    crowded = view(
        expiring=[_expiring(i) for i in range(1, 30)],
        pending_requests=[pending_request(i) for i in range(500)],
        pending_operations=[OPERATIONS["pending"]] * 500,
    )
    assert_view(crowded)
    assert len(crowded["blocks"]) <= 100


def test_the_reminder_stays_within_block_kit() -> None:
    event = InstanceExpiryWarning(
        name="web-1", server_id=501, expires_at=NOW + timedelta(hours=3), requester="U1",
        action="delete",
    )  # fmt: skip
    text, blocks = expiry_warning(
        event, instance_id=7, human_id="VF-12", choices=[3600, 86400], now=NOW
    )
    check_blocks(blocks, surface="message")
    assert "it will be deleted" in text and "VF-12" in text
    options = blocks[1]["elements"][0]["options"]  # type: ignore[index]
    assert [o["value"] for o in options] == ["7:3600", "7:86400"]
    assert parse_extend_value("7:3600") == (7, 3600)
    assert parse_extend_value("7:x") is None and parse_extend_value("²:1") is None
