"""bot.slack.blocks: every builder, every state, within Slack's limits and slack_sdk's models."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.provisioning import events
from bot.provisioning.model import (
    EventRecord,
    InstanceRecord,
    InstanceState,
    RequestRecord,
    RequestState,
)
from bot.slack import commands, ids
from bot.slack.blocks.help import unknown_command_text
from bot.slack.blocks.modal import ModalChoices, create_modal, reject_modal
from bot.slack.blocks.notice import notice_blocks, notice_text
from bot.slack.blocks.progress import milestone_text
from bot.slack.blocks.request import request_blocks, request_text
from bot.slack.blocks.summary import RequestSummary, summarize
from tests.slack.blockkit import block_violations, check_blocks, check_text, check_view

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EVIL_NAME = "<!channel>"
EVIL_WARNING = "see <https://evil|x> & tell @here <!here>"
R = RequestState
S = InstanceState

# -- builders of realistic records ------------------------------------------------------------


def spec(name: str, *, group: str = "Prague", os: str = "Ubuntu 22.04") -> dict[str, object]:
    """A ServerPlan as `InstanceRecord.spec` stores it (model_dump(mode="json"))."""
    return {
        "name": name,
        "instance_index": 0,
        "group_id": 1,
        "group_name": group,
        "hypervisor_hint": None,
        "os_id": 12,
        "os_label": os,
        "ssh_key_name": "ops",
        "ssh_key_id": 3,
        "memory_mb": 2048,
        "disk_gb": 40,
        "cpu_cores": 2,
        "ipv4": None,
        "bandwidth_mbps": None,
        "network_profile": None,
        "network_profile_source": "package default",
        "firewall_rulesets": None,
        "volumes": [],
        "create_body": {"packageId": 1, "userId": 7, "hypervisorId": 1},
        "build_body": {"operatingSystemId": 12, "name": name, "hostname": name},
    }


def record(state: RequestState = R.PENDING_APPROVAL, **changes: object) -> RequestRecord:
    base = RequestRecord(
        id=12,
        key="slack:T1:abc",
        requester="U0REQUESTER",
        source="slack",
        project_name="web-shop",
        payload={"project_name": "web-shop", "instances": []},
        plan={
            "project_name": "web-shop",
            "package_id": 1,
            "package_name": "Small",
            "owner_user_id": 7,
            "servers": [spec("web-1"), spec("web-2")],
            "groups": [],
            "warnings": ["web: no ssh_key_name, so the server gets no SSH key", EVIL_WARNING],
        },
        state=state,
        created_at=NOW - timedelta(hours=1),
        updated_at=NOW,
        decided_by=None,
        decided_at=None,
        decision_note=None,
        expires_at=NOW + timedelta(hours=23),
        channel="C0CHANNEL",
        cancel_requested=False,
        delete_on_cancel=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


def instance(
    position: int,
    state: InstanceState = S.PLANNED,
    *,
    name: str | None = None,
    error: str | None = None,
    group: str = "Prague",
) -> InstanceRecord:
    name = name or f"web-{position + 1}"
    has_server = state not in (S.PLANNED, S.CREATING, S.CANCELLED)
    return InstanceRecord(
        id=100 + position,
        request_id=12,
        position=position,
        name=name,
        state=state,
        spec=spec(name, group=group),
        server_id=500 + position if has_server else None,
        hypervisor_id=3 if has_server else None,
        group_id=1,
        ipv4=[f"203.0.113.{position % 250 + 1}"] if state is S.BUILT else [],
        os_name="Ubuntu 22.04 LTS" if state is S.BUILT else None,
        error=error,
        attempts=1,
        intent_at=NOW,
        build_started_at=NOW,
        finished_at=NOW,
        lease_owner=None,
        lease_until=None,
        next_check_at=None,
        updated_at=NOW,
        created_at=NOW - timedelta(hours=1),
    )


def summary_for(
    state: RequestState, states: Sequence[InstanceState], **changes: object
) -> RequestSummary:
    instances = [
        instance(
            i,
            s,
            error="the panel reports that the OS installation failed" if s is S.FAILED else None,
        )
        for i, s in enumerate(states)
    ]
    return summarize(record(state, **changes), instances)


DECIDED = {"decided_by": "U0APPROVER", "decided_at": NOW - timedelta(minutes=30)}

# Every request state with a realistic mix of servers.
CASES: dict[str, RequestSummary] = {
    "pending": summary_for(R.PENDING_APPROVAL, [S.PLANNED] * 3),
    "pending-expired-window": summary_for(
        R.PENDING_APPROVAL, [S.PLANNED], expires_at=NOW - timedelta(minutes=1)
    ),
    "approved": summary_for(R.APPROVED, [S.PLANNED] * 2, **DECIDED),
    "running": summary_for(
        R.RUNNING, [S.BUILT, S.BUILDING, S.CREATED, S.CREATING, S.PLANNED], **DECIDED
    ),
    "running-cancelling": summary_for(
        R.RUNNING, [S.BUILT, S.FAILED, S.PLANNED], cancel_requested=True, **DECIDED
    ),
    "completed": summary_for(R.COMPLETED, [S.BUILT] * 5, **DECIDED),
    "partially-failed": summary_for(
        R.PARTIALLY_FAILED, [S.BUILT, S.BUILT, S.BUILT, S.FAILED, S.FAILED], **DECIDED
    ),
    "failed": summary_for(R.FAILED, [S.FAILED, S.FAILED], **DECIDED),
    "rejected": summary_for(
        R.REJECTED,
        [S.CANCELLED] * 2,
        decided_by="U0APPROVER",
        decided_at=NOW,
        decision_note="too big <!channel> & <https://evil|x>",
    ),
    "expired": summary_for(R.EXPIRED, [S.CANCELLED], expires_at=NOW - timedelta(hours=1)),
    "cancelled": summary_for(
        R.CANCELLED, [S.BUILT, S.DELETED, S.CANCELLED, S.FAILED], cancel_requested=True
    ),
    "evil": summarize(
        record(R.PARTIALLY_FAILED, project_name="<!channel> shop", requester="<!here>"),
        [
            instance(0, S.BUILT, name=EVIL_NAME, group="<!subteam^S1> & co"),
            instance(1, S.FAILED, name="<https://evil|x>", error="boom <!channel> <@U999>"),
        ],
    ),
    "no-instances-yet": summarize(record(), []),
    "no-plan": summarize(record(plan=None), []),
}


# -- shared checks ----------------------------------------------------------------------------


def strings(value: object) -> Iterator[str]:
    """Every string inside a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


_CONTROL = re.compile(
    r"<(?!@U0REQUESTER>|@U0APPROVER>|!date\^\d+\^\{date_short_pretty\} \{time\}\|)"
)


def assert_safe(value: object) -> None:
    """No Slack control sequence except the ones builders emit on purpose (mentions, dates)."""
    for text in strings(value):
        assert "<http" not in text, text
        assert not _CONTROL.search(text), text


def assert_message(blocks: list[dict[str, object]], text: str | None = None) -> None:
    json.dumps(blocks)
    check_blocks(blocks, surface="message")
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == block  # nothing unknown to slack_sdk was dropped
    assert_safe(blocks)
    if text is not None:
        check_text(text)
        assert_safe(text)


def assert_view(view: Any) -> None:
    json.dumps(view)
    check_view(view)
    model = View(**view)
    model.validate_json()
    assert model.to_dict() == view
    assert_safe(view)


def actions(blocks: Any) -> list[str]:
    return [
        str(element["action_id"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


# -- summary ----------------------------------------------------------------------------------


def test_summarize_reads_sizes_and_counts() -> None:
    summary = CASES["running"]
    assert summary.human_id == "VF-12"
    assert summary.request_id == 12
    assert summary.package_name == "Small"
    assert summary.channel == "C0CHANNEL"
    assert summary.warnings[1] == EVIL_WARNING
    first = summary.servers[0]
    assert (first.name, first.group, first.os) == ("web-1", "Prague", "Ubuntu 22.04 LTS")
    assert (first.memory_mb, first.disk_gb, first.cpu) == (2048, 40, 2)
    assert first.ipv4 == ("203.0.113.1",) and first.server_id == 500
    assert summary.servers[1].os == "Ubuntu 22.04"  # from the spec until the panel reports it
    counts = summary.counts
    assert (counts.total, counts.built, counts.in_progress, counts.failed) == (5, 1, 4, 0)


def test_summarize_survives_a_spec_without_sizes() -> None:
    bare = dataclasses.replace(instance(0), spec={"name": "web-1", "memory_mb": "2 GB"})
    line = summarize(record(), [bare]).servers[0]
    assert (line.group, line.os, line.memory_mb, line.disk_gb, line.cpu) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert_message(request_blocks(summarize(record(), [bare]), now=NOW))


def test_summarize_orders_servers_by_position() -> None:
    summary = summarize(record(), [instance(2), instance(0), instance(1)])
    assert [s.name for s in summary.servers] == ["web-1", "web-2", "web-3"]


def test_summarize_falls_back_to_the_plan_before_instances_exist() -> None:
    summary = CASES["no-instances-yet"]
    assert [s.name for s in summary.servers] == ["web-1", "web-2"]
    assert all(s.state is S.PLANNED for s in summary.servers)
    assert CASES["no-plan"].servers == () and CASES["no-plan"].warnings == ()


# -- the root message -------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_request_message_is_valid_in_every_state(case: str) -> None:
    summary = CASES[case]
    assert_message(request_blocks(summary, now=NOW), request_text(summary))


@pytest.mark.parametrize("case", sorted(CASES))
def test_approve_and_reject_only_while_pending(case: str) -> None:
    summary = CASES[case]
    blocks: Any = request_blocks(summary, now=NOW)
    if summary.state is R.PENDING_APPROVAL:
        assert actions(blocks) == [ids.APPROVE, ids.REJECT]
        buttons = blocks[-1]["elements"]
        assert [b["style"] for b in buttons] == ["primary", "danger"]
        assert {b["value"] for b in buttons} == {"12"}
    else:
        assert actions(blocks) == []


def test_request_header_and_who() -> None:
    blocks: Any = request_blocks(CASES["pending"], now=NOW)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "VF-12 · web-shop", "emoji": True},
    }
    rendered = json.dumps(blocks)
    assert "<@U0REQUESTER>" in rendered
    assert "Small" in rendered and "3 servers" in rendered and "Prague" in rendered


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("pending", "Waiting for approval* (expires <!date^"),
        ("pending-expired-window", ", now)"),
        ("approved", "*Approved* by <@U0APPROVER> at <!date^"),
        ("running", "*Running*: 1/5 built"),
        ("running-cancelling", "1/3 built, 1 failed; cancelling"),
        ("completed", "*Completed*: 5/5 built"),
        ("partially-failed", "*Partially failed*: 3 built, 2 failed"),
        ("failed", "*Failed*: 0/2 built, 2 failed"),
        ("rejected", "*Rejected* by <@U0APPROVER>: too big &lt;!channel&gt;"),
        ("expired", "*Expired*"),
        ("cancelled", "*Cancelled*: 1 built and kept, 1 deleted, 1 failed"),
    ],
)
def test_state_line(case: str, expected: str) -> None:
    assert expected in json.dumps(request_blocks(CASES[case], now=NOW), ensure_ascii=False)


def test_pending_line_says_how_long_is_left_and_keeps_a_utc_fallback() -> None:
    text: Any = json.dumps(request_blocks(CASES["pending"], now=NOW))
    assert "in 23 h" in text
    assert "|2024-05-02 11:00 UTC>" in text
    assert "2024-05-02 11:00 UTC" in request_text(CASES["pending"])
    assert "<!date" not in request_text(CASES["pending"])


def test_approver_is_shown_once_running() -> None:
    text: Any = json.dumps(request_blocks(CASES["completed"], now=NOW))
    assert "Approved by <@U0APPROVER>" in text


def test_request_text_names_the_request() -> None:
    text: Any = request_text(CASES["running"])
    assert text.startswith("VF-12 · web-shop: 5 servers requested by <@U0REQUESTER>.")
    assert "Running" in text


def test_user_text_is_escaped_everywhere() -> None:
    summary = CASES["evil"]
    outputs: list[object] = [
        request_blocks(summary, now=NOW),
        request_text(summary),
        notice_blocks(summary, now=NOW),
        notice_text(summary),
    ]
    for output in outputs:
        assert_safe(output)
    rendered = json.dumps(outputs, ensure_ascii=False)
    assert "&lt;!channel&gt;" in rendered
    assert "&lt;https://evil|x&gt;" in rendered
    assert "&lt;!here&gt;" in rendered  # the requester field was not a user id


def test_warnings_are_escaped_truncated_and_capped() -> None:
    warnings = [EVIL_WARNING] + [f"w{i}: " + "x" * 2000 for i in range(30)]
    plan = dict(record().plan or {}, warnings=warnings)
    blocks: Any = request_blocks(summarize(record(plan=plan), []), now=NOW)
    assert_message(blocks)
    text: Any = next(b["text"]["text"] for b in blocks if "Warnings" in json.dumps(b))
    assert "&lt;https://evil|x&gt; &amp; tell @here &lt;!here&gt;" in text
    assert "and 26 more warnings" in text
    assert all(len(line) <= 410 for line in text.splitlines())


def test_a_200_server_request_stays_within_limits() -> None:
    instances = [
        instance(i, [S.BUILT, S.FAILED, S.BUILDING, S.PLANNED][i % 4], group=f"group-{i % 15}")
        for i in range(200)
    ]
    for state in (R.PENDING_APPROVAL, R.RUNNING, R.PARTIALLY_FAILED):
        summary = summarize(record(state, **DECIDED), instances)
        blocks = request_blocks(summary, now=NOW)
        assert_message(blocks, request_text(summary))
        rendered = json.dumps(blocks)
        assert "and 190 more" in rendered
        assert "and 5 more groups" in rendered
        notice = notice_blocks(summary, now=NOW)
        assert_message(notice, notice_text(summary))
        assert "more \\u2014 /vf status VF-12" in json.dumps(notice)


def test_long_names_are_truncated() -> None:
    long: Any = "x" * 500
    summary = summarize(
        record(project_name="p" * 300),
        [instance(0, S.BUILT, name="n" * 300, group=long)],
    )
    blocks: Any = request_blocks(summary, now=NOW)
    assert_message(blocks)
    assert len(blocks[0]["text"]["text"]) <= 150
    assert_message(notice_blocks(summary, now=NOW))


# -- milestones -------------------------------------------------------------------------------


def _milestone(kind: str, payload: dict[str, Any], *, human_id: str | None = None) -> str | None:
    """The line for a stored event of `kind` (as the notifier reads it from the outbox)."""
    record = EventRecord(
        id=1, request_id=1, instance_id=1, kind=kind, payload=payload, created_at=NOW
    )
    event = events.parse_event(record)
    if not isinstance(event, events.InstanceEvent):
        return None
    return milestone_text(event, human_id=human_id)


def test_created_milestone() -> None:
    payload = {
        "name": "web-1",
        "server_id": 501,
        "group": "Prague",
        "hypervisor_id": 3,
        "hypervisor": "hv-3",
        "ipv4": [],
        "reconciled": False,
    }
    line = _milestone(events.INSTANCE_CREATED, payload)
    assert line == ":package: `web-1` created: server 501 in group *Prague*, on hypervisor hv-3"
    reconciled = _milestone(events.INSTANCE_CREATED, {**payload, "reconciled": True})
    assert reconciled is not None
    assert reconciled.endswith("(found on the panel after an unclear answer)")
    unnamed = _milestone(events.INSTANCE_CREATED, {**payload, "hypervisor": ""})
    assert unnamed is not None and unnamed.endswith("on hypervisor 3")


def test_build_started_milestone() -> None:
    line = _milestone(
        events.INSTANCE_BUILD_STARTED, {"name": "web-1", "server_id": 501, "os": "Debian 12"}
    )
    assert line == ":hammer_and_wrench: `web-1`: installing Debian 12 on server 501"


def test_built_milestone() -> None:
    payload = {
        "name": "web-1",
        "server_id": 501,
        "ipv4": ["203.0.113.5", "203.0.113.6"],
        "os": "Debian 12",
        "seconds": 275,
    }
    line = _milestone(events.INSTANCE_BUILT, payload)
    assert line == (
        ":white_check_mark: `web-1` is ready (server 501): "
        "IPv4 203.0.113.5, 203.0.113.6 · Debian 12 · built in 4 min"
    )
    quick = _milestone(events.INSTANCE_BUILT, {**payload, "ipv4": [], "seconds": 20})
    assert quick is not None and "no IPv4 address" in quick and "under a minute" in quick


def test_failed_milestone_explains_what_to_do() -> None:
    payload = {
        "name": "web-1",
        "server_id": 501,
        "error": "the panel refused: <!channel> <https://evil|x>",
        "stage": "build",
        "deleted": True,
    }
    line = _milestone(events.INSTANCE_FAILED, payload, human_id="VF-12")
    assert line is not None
    assert "failed during build (server 501)" in line
    assert "&lt;!channel&gt; &lt;https://evil|x&gt;" in line
    assert "The leftover server 501 was deleted." in line
    assert "*Retry failed*" in line and "`/vf status VF-12`" in line
    assert_safe(line)
    no_id = _milestone(events.INSTANCE_FAILED, {"name": "web-1", "error": "x"})
    assert no_id is not None and "`/vf status`" in no_id


def test_cancelled_and_deleted_milestones() -> None:
    assert _milestone(events.INSTANCE_CANCELLED, {"name": "web-1"}) == (
        ":no_entry_sign: `web-1` cancelled before it was created"
    )
    kept = _milestone(events.INSTANCE_CANCELLED, {"name": "web-1", "server_id": 5, "kept": True})
    assert kept is not None and "server 5 was created but not built" in kept
    by_user = _milestone(
        events.INSTANCE_DELETED, {"name": "web-1", "server_id": 5, "by": "U0APPROVER"}
    )
    assert by_user == ":wastebasket: `web-1` deleted (server 5) by <@U0APPROVER>"
    by_cancel = _milestone(
        events.INSTANCE_DELETED, {"name": "web-1", "server_id": 5, "by": "cancel"}
    )
    assert by_cancel is not None and by_cancel.endswith("because the request was cancelled")


@pytest.mark.parametrize(
    "kind", [events.REQUEST_APPROVED, events.REQUEST_FINISHED, "instance.unknown", ""]
)
def test_non_milestones_have_no_line(kind: str) -> None:
    assert _milestone(kind, {"name": "web-1", "by": "U1"}) is None


@pytest.mark.parametrize("kind", sorted(events.MILESTONES))
def test_milestones_are_safe_with_hostile_or_missing_payloads(kind: str) -> None:
    hostile = {
        "name": EVIL_NAME,
        "server_id": "not a number",
        "group": "<!here>",
        "hypervisor": "<https://evil|x>",
        "ipv4": ["<!channel>", 5],
        "os": "`rm -rf` <!channel>",
        "error": "<!channel>",
        "stage": "<!here>",
        "by": "<!everyone>",
        "seconds": True,
        "reconciled": "yes",
    }
    for payload in (hostile, {}):
        line = _milestone(kind, payload, human_id="VF-12")
        assert line is not None and len(line) <= 3000
        assert_safe(line)
        assert "password" not in line.lower()


# -- the notice -------------------------------------------------------------------------------


def test_notice_without_failures() -> None:
    summary = CASES["completed"]
    blocks: Any = notice_blocks(summary, now=NOW)
    assert_message(blocks, notice_text(summary))
    assert actions(blocks) == []
    assert blocks[0]["text"]["text"].startswith("<@U0REQUESTER> your request *VF-12 · web-shop*")
    table: Any = blocks[1]["text"]["text"]
    assert table.startswith("```\nNAME") and table.endswith("\n```")
    assert "web-5  504" in table and "203.0.113.5" in table and "built" in table
    assert notice_text(summary).startswith("<@U0REQUESTER> VF-12 · web-shop finished.")


@pytest.mark.parametrize("case", ["partially-failed", "failed", "evil"])
def test_notice_with_failures_offers_retry_and_cleanup(case: str) -> None:
    summary = CASES[case]
    blocks: Any = notice_blocks(summary, now=NOW)
    assert_message(blocks, notice_text(summary))
    assert actions(blocks) == [ids.RETRY_FAILED, ids.CLEANUP]
    retry, cleanup = blocks[-1]["elements"]
    assert retry["value"] == cleanup["value"] == "12"
    assert cleanup["style"] == "danger"
    failed = summary.counts.failed
    noun = "server" if failed == 1 else "servers"
    assert f"create the {failed} failed {noun} of VF-12 again" in retry["confirm"]["text"]["text"]
    assert "delete" in cleanup["confirm"]["text"]["text"]
    assert cleanup["confirm"]["style"] == "danger"
    assert "What went wrong" in json.dumps(blocks)


def test_cancelled_notice_offers_only_cleanup() -> None:
    blocks: Any = notice_blocks(CASES["cancelled"], now=NOW)
    assert_message(blocks)
    assert actions(blocks) == [ids.CLEANUP]


def test_notice_table_escapes_and_keeps_code_block_closed() -> None:
    summary = summarize(record(R.COMPLETED), [instance(0, S.BUILT, name="a```b<!channel>")])
    blocks: Any = notice_blocks(summary, now=NOW)
    table = blocks[1]["text"]["text"]
    assert table.count("```") == 2
    assert "&lt;!channel&gt;" in table


# -- modals -----------------------------------------------------------------------------------


def choices(**changes: object) -> ModalChoices:
    base = ModalChoices(
        package_id=1,
        package_name="Small",
        package_memory_mb=1024,
        package_disk_gb=20,
        package_cpu=1,
        groups=[(1, "Prague"), (2, "Frankfurt")],
        default_group_id=2,
        templates=[(12, "Ubuntu 22.04"), (13, "Debian 12")],
        ssh_keys=["ops", "deploy"],
        max_instances=10,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


def inputs(view: Any) -> dict[str, Any]:
    return {str(b["block_id"]): b for b in view["blocks"] if b["type"] == "input"}


def test_loading_modal() -> None:
    view: Any = create_modal(None, private_metadata='{"channel": "C1"}')
    assert_view(view)
    assert view["title"]["text"] == "New servers"
    assert view["callback_id"] == ids.CREATE_VIEW
    assert view["private_metadata"] == '{"channel": "C1"}'
    assert "submit" not in view and inputs(view) == {}
    assert view["blocks"] == [
        {
            "type": "context",
            "block_id": ids.B_LOADING,
            "elements": [{"type": "mrkdwn", "text": "Loading choices from the panel…"}],
        }
    ]


def test_error_modal_keeps_only_the_file_input() -> None:
    view: Any = create_modal(
        None, private_metadata="m", error="panel said <!channel> " + "x" * 5000
    )
    assert_view(view)
    assert list(inputs(view)) == [ids.B_FILE]
    assert view["submit"]["text"] == "Plan request"
    assert "&lt;!channel&gt;" in json.dumps(view)


def test_full_modal() -> None:
    view: Any = create_modal(choices(), private_metadata="m")
    assert_view(view)
    found: Any = inputs(view)
    assert tuple(found) == ids.CREATE_INPUT_BLOCKS
    for block_id, block in found.items():
        assert block["element"]["action_id"] == block_id
    assert view["submit"]["text"] == "Plan request"
    assert view["close"]["text"] == "Cancel"
    count: Any = found[ids.B_COUNT]["element"]
    assert count == {
        "type": "number_input",
        "is_decimal_allowed": False,
        "min_value": "1",
        "max_value": "10",
        "initial_value": "1",
        "action_id": ids.B_COUNT,
    }
    group: Any = found[ids.B_GROUP]["element"]
    assert group["initial_option"]["value"] == "2"
    template: Any = found[ids.B_TEMPLATE]["element"]
    assert [o["value"] for o in template["options"]] == ["12", "13"]
    memory: Any = found[ids.B_MEMORY]
    assert memory["optional"] is True
    assert memory["element"]["placeholder"]["text"] == "1024 (package Small)"
    file_input: Any = found[ids.B_FILE]
    assert file_input["element"]["filetypes"] == ["json"]
    assert file_input["element"]["max_files"] == 1
    assert "fields above are ignored" in file_input["hint"]["text"]
    assert "does not mount" in found[ids.B_VOLUME_MOUNT]["hint"]["text"]
    optional = {b for b, block in found.items() if block["optional"]}
    assert optional == set(ids.CREATE_INPUT_BLOCKS) - {
        ids.B_PROJECT,
        ids.B_NAME,
        ids.B_COUNT,
        ids.B_GROUP,
        ids.B_TEMPLATE,
    }


def test_modal_without_a_default_group_has_no_initial_option() -> None:
    view: Any = create_modal(choices(default_group_id=None), private_metadata="m")
    assert_view(view)
    assert "initial_option" not in inputs(view)[ids.B_GROUP]["element"]


def test_many_long_templates_are_cut_to_100_options() -> None:
    templates = [(i, f"Template {i} " + "y" * 200) for i in range(1, 151)]
    groups = [(i, f"<!here> group {i} " + "z" * 100) for i in range(1, 131)]
    view: Any = create_modal(
        choices(templates=templates, groups=groups, default_group_id=130),
        private_metadata="m",
    )
    assert_view(view)
    found: Any = inputs(view)
    options: Any = found[ids.B_TEMPLATE]["element"]["options"]
    assert len(options) == 100
    assert all(len(o["text"]["text"]) <= 75 for o in options)
    assert "Showing 100 of 150" in found[ids.B_TEMPLATE]["hint"]["text"]
    group: Any = found[ids.B_GROUP]["element"]
    assert group["initial_option"]["value"] == "130"
    assert len(group["options"]) == 100


def test_modal_with_empty_choices_notes_what_is_missing() -> None:
    view: Any = create_modal(
        choices(groups=[], templates=[], ssh_keys=[], package_memory_mb=None),
        private_metadata="m",
    )
    assert_view(view)
    found: Any = inputs(view)
    assert {ids.B_GROUP, ids.B_TEMPLATE, ids.B_SSH_KEY}.isdisjoint(found)
    rendered = json.dumps(view)
    assert "no hypervisor groups" in rendered and "no OS templates" in rendered
    assert "no default (package Small)" in rendered


def test_reject_modal() -> None:
    view: Any = reject_modal("VF-12", private_metadata='{"request_id": 12}')
    assert_view(view)
    assert view["callback_id"] == ids.REJECT_VIEW
    assert view["submit"]["text"] == "Reject"
    reason: Any = inputs(view)[ids.B_REASON]
    assert reason["optional"] is True
    assert reason["element"]["multiline"] is True
    long: Any = reject_modal("VF-123456789012345678", private_metadata="m")
    assert_view(long)


# -- help -------------------------------------------------------------------------------------


def test_help_lists_every_command_with_an_example() -> None:
    text: Any = commands.help_message()
    blocks = commands.help_message_blocks()
    check_blocks(blocks)  # every section within Slack's 3000 characters
    shown = "\n".join(b["text"]["text"] for b in blocks)  # type: ignore[index]
    assert [line for line in shown.split("\n") if line] == [
        line for line in text.split("\n") if line
    ]  # every line, in order, only the blank line at a split is dropped
    day2 = [c.name for c in commands.COMMANDS if c.section == "servers"]
    for usage in ("create", "create {json}", "help", *day2):
        assert f"`/vf {usage}`" in text
    assert set(day2) == {
        "list", "status", "delete", "suspend", "unsuspend", "power", "traffic", "vnc",
        "backup-plan", "owner", "throttle", "hypervisors", "check", "audit",
        "rebuild", "resize", "rename", "password", "firewall", "ip", "backups", "extend",
        "expiring",
    }  # fmt: skip
    assert len(blocks) >= 2  # more than one section's worth of commands


def test_unknown_command() -> None:
    assert unknown_command_text("crate", "create") == (
        "Unknown subcommand `crate`. Did you mean `/vf create`? Try `/vf help`."
    )
    hostile = unknown_command_text("<!channel>`", None)
    assert hostile == "Unknown subcommand `&lt;!channel&gt;`. Try `/vf help`."


# -- the limit checks themselves --------------------------------------------------------------


def _button(text: str = "Go", value: str = "1", **extra: object) -> dict[str, object]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": "a",
        "value": value,
        **extra,
    }


def test_limits_accept_good_blocks() -> None:
    check_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}])
    check_blocks([], surface="modal")


def test_limits_list_every_violation() -> None:
    blocks: list[object] = [{"type": "divider"}] * 51 + [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        {
            "type": "section",
            "block_id": "b" * 256,
            "fields": [{"type": "mrkdwn", "text": "f" * 2001}] * 11,
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11},
        {
            "type": "actions",
            "elements": [
                _button("t" * 76, "v" * 2001),
                _button(
                    confirm={
                        "title": {"type": "plain_text", "text": "t" * 101},
                        "text": {"type": "plain_text", "text": "t" * 301},
                        "confirm": {"type": "plain_text", "text": "c" * 31},
                        "deny": {"type": "plain_text", "text": "d" * 31},
                    }
                ),
            ],
        },
        {
            "type": "input",
            "label": {"type": "plain_text", "text": "L"},
            "element": {
                "type": "static_select",
                "action_id": "s" * 256,
                "options": [{"text": {"type": "plain_text", "text": "o" * 76}, "value": "1"}] * 101,
                "initial_option": {"text": {"type": "plain_text", "text": "x"}, "value": "9"},
            },
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": ""}},
    ]
    problems = block_violations(blocks, surface="message")
    expected = [
        "58 blocks > 50",
        "blocks[51].text.text: 3001 chars > 3000",
        "blocks[52].text.text: 151 chars > 150",
        "blocks[53].block_id: 256 chars > 255",
        "blocks[53].fields: 11 fields > 10",
        "blocks[53].fields[0].text: 2001 chars > 2000",
        "blocks[54].elements: 11 elements",
        "blocks[55].elements[0].text.text: 76 chars > 75",
        "blocks[55].elements[0].value: 2001 chars > 2000",
        "blocks[55].elements[1].action_id: duplicate",
        "blocks[55].elements[1].confirm.title.text: 101 chars > 100",
        "blocks[55].elements[1].confirm.text.text: 301 chars > 300",
        "blocks[55].elements[1].confirm.confirm.text: 31 chars > 30",
        "blocks[55].elements[1].confirm.deny.text: 31 chars > 30",
        "blocks[56].element.action_id: 256 chars > 255",
        "blocks[56].element.options: 101 options > 100",
        "blocks[56].element.options[0].text.text: 76 chars > 75",
        "blocks[56].element.initial_option: not one of the options",
        "blocks[57].text.text: must be a non-empty string",
    ]
    joined = "\n".join(problems)
    for fragment in expected:
        assert fragment in joined, fragment
    with pytest.raises(ValueError, match="Block Kit limit violation"):
        check_blocks(blocks)


def test_modal_surface_allows_100_blocks() -> None:
    blocks: Any = [{"type": "divider"}] * 100
    check_blocks(blocks, surface="modal")
    with pytest.raises(ValueError, match="100 blocks > 50"):
        check_blocks(blocks, surface="message")
    with pytest.raises(ValueError, match="101 blocks > 100"):
        check_blocks([*blocks, {"type": "divider"}], surface="home")


def test_view_limits() -> None:
    view: Any = {
        "type": "modal",
        "callback_id": "c" * 256,
        "title": {"type": "plain_text", "text": "t" * 25},
        "close": {"type": "plain_text", "text": "c" * 25},
        "private_metadata": "m" * 3001,
        "blocks": [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "L"},
                "element": {"type": "plain_text_input", "action_id": "x"},
            }
        ],
    }
    with pytest.raises(ValueError) as caught:
        check_view(view)
    message = str(caught.value)
    for fragment in (
        "view.title.text: 25 chars > 24",
        "view.close.text: 25 chars > 24",
        "view.submit: a modal with input blocks needs a submit button",
        "view.private_metadata: 3001 chars > 3000",
        "view.callback_id: 256 chars > 255",
    ):
        assert fragment in message
    check_view({"type": "home", "blocks": []})


def test_text_limit() -> None:
    check_text("x" * 40000)
    with pytest.raises(ValueError, match="40001 chars > 40000"):
        check_text("x" * 40001)
    with pytest.raises(ValueError, match="expected a string"):
        check_text(None)


def test_limits_never_crash_on_odd_input() -> None:
    odd: list[object] = [None, "x", {"type": "section"}, {"type": "actions", "elements": "no"}]
    problems = block_violations(odd)
    assert len(problems) >= 4
    assert block_violations("not a list")
    with pytest.raises(ValueError):
        check_view(["not", "a", "view"])


def test_waiting_milestone_and_root_line_say_what_vfbot_waits_for() -> None:
    note = "create answer lost (POST /servers: HTTP 502); looking for the server until 14:05 UTC"
    line = _milestone(events.INSTANCE_WAITING, {"name": "web-1", "reason": note})
    assert line == f":hourglass_flowing_sand: `web-1`: {note}"
    summary = summarize(
        record(R.RUNNING),
        [
            instance(0, S.CREATE_UNKNOWN, error=note),
            instance(1, S.BUILT, error="an old note is not shown"),
            instance(2, S.PLANNED, error="the panel failed (429); creating it again at 14:03 UTC"),
        ],
    )
    text = json.dumps(request_blocks(summary, now=NOW))
    assert "looking for the server until 14:05 UTC" in text
    assert "creating it again at 14:03 UTC" in text
    assert "an old note" not in text
    check_blocks(request_blocks(summary, now=NOW))
