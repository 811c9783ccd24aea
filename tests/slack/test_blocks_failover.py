"""Group failover in Slack: the failover milestone and where each server goes, and why."""

from __future__ import annotations

import dataclasses

from bot.provisioning import events
from bot.provisioning.model import InstanceRecord
from bot.slack.blocks.request import request_blocks, request_text
from bot.slack.blocks.summary import summarize
from tests.slack.test_blocks import (
    EVIL_NAME,
    NOW,
    _milestone,
    assert_message,
    instance,
    record,
    spec,
)

ROUTE = "Frankfurt: 1 IPv4 left → Prague"


def moved(position: int) -> InstanceRecord:
    """A server planned past Frankfurt, which had too few IPv4 addresses left."""
    passed = [{"group_id": 3, "group_name": "Frankfurt", "reason": "1 IPv4 left", "stage": "plan"}]
    base = instance(position)
    return dataclasses.replace(base, spec={**spec(base.name), "passed_over": passed})


def test_the_request_message_says_where_each_server_goes_and_why() -> None:
    summary = summarize(record(), [instance(0), moved(1)])

    assert [s.route for s in summary.servers] == [None, ROUTE]
    blocks = request_blocks(summary, now=NOW)
    assert_message(blocks, request_text(summary))
    said = "\n".join(str(b.get("text", {}).get("text", "")) for b in blocks)  # type: ignore[union-attr]
    assert "Frankfurt: 1 IPv4 left → Prague" in said


def test_failover_milestone_names_both_groups_and_the_panels_words() -> None:
    payload = {
        "name": "web-3",
        "from_group": "Frankfurt",
        "to_group": "Prague",
        "reason": f"No hypervisor has enough memory {EVIL_NAME}",
    }

    line = _milestone(events.INSTANCE_FAILED_OVER, payload)

    assert line == (
        ":twisted_rightwards_arrows: `web-3`: group *Frankfurt* refused it (No hypervisor has "
        "enough memory &lt;!channel&gt;); nothing was created there, so it goes to group "
        "*Prague*, next in its list"
    )
