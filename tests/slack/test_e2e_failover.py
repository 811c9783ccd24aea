"""Group failover through Slack: the request message says where each server goes and why, and a
create refused for room moves a server to the next group with a milestone in the thread."""

from __future__ import annotations

import json
from typing import Any

from bot.provisioning.model import InstanceState, RequestState
from bot.slack import ids
from tests.slack import signing
from tests.slack.conftest import APPROVER, CHANNEL, SlackHarness
from tests.slack.test_e2e_create import _request, _root, _text_of

REQUEST = {
    "project_name": "edge",
    "instances": [
        {
            "name": "web",
            "number_of_instances": 3,
            "hypervisor_group": ["Prague", "Amsterdam"],
            "template": "ubuntu-22.04",
        }
    ],
}


async def _submit(h: SlackHarness) -> Any:
    file = h.slack.add_file("edge.json", json.dumps(REQUEST).encode())
    values = {ids.B_FILE: {ids.B_FILE: signing.file_input([file])}}
    assert (await h.submit(values))["response_action"] == "push"
    await h.runtime.tick()  # the root message
    return await _request(h)


async def test_planned_and_create_time_failover_in_slack(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    prague = h.sandbox.state.hypervisors
    prague[1].max_memory_mb, prague[2].enabled = 2048, False  # room for two "Small" servers

    record = await _submit(h)

    root_text = _text_of(_root(h))
    assert "Prague: 0 MB memory left (needs 1,024 MB) → Amsterdam" in root_text
    assert [s["group_name"] for s in record.plan["servers"]] == ["Prague", "Prague", "Amsterdam"]

    prague[1].max_memory_mb = 1024  # Prague shrinks after planning: room for one now
    await h.click(ids.APPROVE, record, user=APPROVER, message_ts=_root(h)["ts"])
    await h.run_engine(ticks=15)

    record = await _request(h)
    assert record.state is RequestState.COMPLETED
    _, instances = await h.runtime.core.requests.get(record.id)
    assert [i.state for i in instances] == [InstanceState.BUILT] * 3
    assert sorted(i.group_id or 0 for i in instances) == [1, 2, 2]
    thread = "\n".join(_text_of(m) for m in h.slack.thread(CHANNEL, _root(h)["ts"]))
    assert "group *Prague* refused it (" in thread
    assert "so it goes to group *Amsterdam*, next in its list" in thread
    assert "Prague: the panel refused it: “" in _text_of(_root(h))
    h.check_limits()
