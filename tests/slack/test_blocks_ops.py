"""The day-2 builders (servers, changes, panel, operation) in every state, within Block Kit
limits and slack_sdk models."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.provisioning.model import (
    AuditRecord,
    Operation,
    OperationKind,
    OperationState,
    RequestState,
)
from bot.provisioning.servers.model import (
    HypervisorGroupRow,
    PowerResult,
    ServerDetail,
    ServerRow,
    TrafficSummary,
    format_bytes,
)
from bot.slack import ids
from bot.slack.blocks import panel, servers
from bot.slack.blocks.changes import (
    confirm_modal,
    done_text,
    power_result_text,
    vnc_blocks,
    vnc_text,
)
from bot.slack.blocks.operation import operation_blocks, operation_text
from bot.slack.blocks.panel import audit_blocks, check_blocks_text, hypervisors_blocks
from bot.slack.blocks.servers import (
    list_page_value,
    parse_list_page,
    request_status_blocks,
    server_detail_blocks,
    server_list_blocks,
    server_ref,
    traffic_blocks,
)
from bot.slack.blocks.summary import summarize
from bot.virtfusion import VncSession
from tests.slack.blockkit import check_blocks, check_text, check_view
from tests.slack.test_blocks import CASES, instance, record
from tests.slack.test_blocks import DECIDED as REQ_DECIDED

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EVIL = "<!channel> & <https://evil|x>"
PASSWORD = "s3cr&t`<pw>"
WSS_URL = "wss://panel.example.com/vnc?token=tok3n-secret"

# -- shared checks ----------------------------------------------------------------------------


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


# Control sequences builders emit on purpose: mentions of test users, dates, a channel link.
_CONTROL = re.compile(r"<(?!@U0[A-Z]+>|!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>]+>|#C0)")


def assert_safe(value: object) -> None:
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


def assert_text(text: str) -> None:
    """A reply that is one mrkdwn string: it fits a section and is safe."""
    check_text(text)
    check_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
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


def rendered(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# -- values -----------------------------------------------------------------------------------


def row(i: int, **changes: object) -> ServerRow:
    base = ServerRow(
        server_id=500 + i,
        name=f"web-{i}",
        request_human_id=f"VF-{i % 7 + 1}",
        requester="U0REQUESTER",
        state="built",
        group="Prague",
        ipv4=(f"203.0.113.{i % 250 + 1}", "198.51.100.1"),
        suspended=i % 3 == 0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


def long_row(i: int) -> ServerRow:
    return ServerRow(
        server_id=10**9 + i,
        name=EVIL + "n" * 300,
        request_human_id="VF-" + "9" * 30,
        requester="<!here>",
        state="s" * 200,
        group=EVIL * 20,
        ipv4=tuple("2001:db8::" + "f" * 40 for _ in range(20)),
        suspended=True,
    )


def detail(**changes: object) -> ServerDetail:
    base = ServerDetail(
        server_id=123,
        name="web-1",
        hostname="web-1.example.com",
        phase="built",
        state="complete",
        group="Prague",
        hypervisor="hv-prg-1",
        ipv4=("203.0.113.5",),
        ipv6=("2001:db8::5",),
        memory_mb=2048,
        disk_gb=40,
        cpu_cores=2,
        os="Ubuntu 22.04",
        suspended=False,
        running=True,
        live=True,
        request_human_id="VF-12",
        requester="U0REQUESTER",
        built_at=NOW - timedelta(days=3),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


def operation(
    state: OperationState = OperationState.PENDING_APPROVAL, **changes: object
) -> Operation:
    base = Operation(
        id=5,
        kind=OperationKind.DELETE,
        server_id=123,
        server_name="web-1",
        requester="U0REQUESTER",
        state=state,
        params={"delay_min": 60},
        created_at=NOW - timedelta(minutes=5),
        expires_at=NOW + timedelta(hours=23),
        request_id=12,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


DECIDED = {"decided_by": "U0APPROVER", "decided_at": NOW - timedelta(minutes=1)}
OPERATIONS: dict[str, Operation] = {
    "pending": operation(),
    "pending-no-expiry": operation(expires_at=None, params={}, request_id=None, created_at=None),
    "pending-overdue": operation(expires_at=NOW - timedelta(minutes=1)),
    "approved": operation(OperationState.APPROVED, **DECIDED),
    "running": operation(OperationState.RUNNING, **DECIDED),
    "done-unasked": operation(
        OperationState.DONE,
        expires_at=None,
        decided_by="U0REQUESTER",
        decided_at=NOW,
        decision_note="no approval required",
        result="server 123 (web-1) deleted.",
    ),
    "done": operation(OperationState.DONE, result="deleted on the panel", **DECIDED),
    "done-no-approval": operation(OperationState.DONE, params={"delay_min": 0}),
    "failed": operation(OperationState.FAILED, result="panel said <!channel> 423", **DECIDED),
    "rejected": operation(
        OperationState.REJECTED, decision_note="still used <!here> & <https://x|y>", **DECIDED
    ),
    "expired": operation(OperationState.EXPIRED, expires_at=NOW - timedelta(hours=1)),
    "evil": operation(server_name=EVIL, requester="<!here>", params={"delay_min": True}),
}


# -- /vf list ---------------------------------------------------------------------------------


def test_list_page_shows_each_server_and_a_next_button() -> None:
    rows = [row(i) for i in range(25)]
    blocks: Any = server_list_blocks(
        rows,
        total=120,
        offset=25,
        page_size=25,
        title="All servers of the vfbot owner",
        scope="all",
    )
    assert_message(blocks)
    assert blocks[0]["text"]["text"] == "All servers of the vfbot owner (120)"
    text = rendered(blocks)
    for r in rows:
        assert f"`{r.name}` · id {r.server_id} · built · Prague · {r.ipv4[0]} +1" in text
    assert ":double_vertical_bar: suspended" in text and "VF-1" in text
    assert "26 to 50 of 120 · page 2 of 5" in text
    assert actions(blocks) == [ids.LIST_PAGE]
    value = blocks[-1]["elements"][0]["value"]
    assert value == '{"s":"all","o":50}'
    assert parse_list_page(value) == ("all", 50)


def test_last_page_has_no_next_button() -> None:
    blocks = server_list_blocks(
        [row(i) for i in range(3)],
        total=3,
        offset=0,
        page_size=25,
        title="Your servers",
        scope="mine",
    )
    assert_message(blocks)
    assert actions(blocks) == []
    assert "Your servers (3)" in rendered(blocks)


def test_empty_list_says_how_to_make_servers() -> None:
    blocks = server_list_blocks(
        [], total=0, offset=0, page_size=25, title="Your servers", scope="mine"
    )
    assert_message(blocks)
    assert "No servers yet — `/vf create` makes some." in rendered(blocks)
    past_end = server_list_blocks(
        [], total=4, offset=50, page_size=25, title="Servers of VF-12", scope="VF-12"
    )
    assert_message(past_end)
    assert actions(past_end) == [] and "No more servers" in rendered(past_end)


@pytest.mark.parametrize("page_size", [1, 10, 25, 50, 100])
def test_lists_of_long_hostile_rows_stay_within_limits(page_size: int) -> None:
    rows = [long_row(i) for i in range(200)]
    blocks = server_list_blocks(
        rows, total=10_000, offset=0, page_size=page_size, title=EVIL * 20, scope="VF-" + "9" * 30
    )
    assert_message(blocks)
    assert len(blocks) <= 50
    assert "&lt;!channel&gt;" in rendered(blocks)
    shown = min(page_size, servers.LIST_ROWS_MAX)
    value = json.loads(blocks[-1]["elements"][0]["value"])  # type: ignore[index]
    assert value == {"s": "VF-" + "9" * 30, "o": shown}


def test_list_rejects_bad_page_size_and_huge_scope() -> None:
    with pytest.raises(ValueError, match="page_size"):
        server_list_blocks([], total=0, offset=0, page_size=0, title="x", scope="mine")
    with pytest.raises(ValueError, match="too long"):
        list_page_value("x" * 2000, 0)


@pytest.mark.parametrize(
    "value",
    ["", "not json", "[]", '{"s": 1, "o": 2}', '{"s": "all"}', '{"s": "all", "o": true}',
     '{"s": "all", "o": -1}', '{"s": "all", "o": "5"}'],
)  # fmt: skip
def test_parse_list_page_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValueError):
        parse_list_page(value)


@pytest.mark.parametrize("scope", ["mine", "all", "VF-12", "ünïcode", '"quoted"'])
def test_list_page_value_round_trips(scope: str) -> None:
    assert parse_list_page(list_page_value(scope, 75)) == (scope, 75)


def test_server_row_without_ip_or_request() -> None:
    text = servers.server_row_text(row(1, ipv4=(), request_human_id=None, suspended=None))
    assert text == "• `web-1` · id 501 · built · Prague · no IPv4"


# -- /vf status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"running": False, "suspended": True},
        {"running": None, "built_at": None, "request_human_id": None, "requester": None},
        {"ipv4": (), "ipv6": (), "memory_mb": None, "disk_gb": None, "cpu_cores": None, "os": ""},
        {"name": EVIL, "hostname": EVIL, "group": EVIL, "hypervisor": EVIL, "os": EVIL,
         "phase": EVIL, "state": EVIL, "requester": "<!here>", "request_human_id": EVIL},
        {"name": "", "ipv4": tuple(f"203.0.113.{i}" for i in range(200))},
        {"name": "x" * 5000, "hostname": "y" * 5000, "os": "z" * 5000},
        {"built_at": datetime(2024, 4, 1, 12, 0)},  # naive, as SQLite returns it: taken as UTC
    ],
)  # fmt: skip
def test_server_detail_is_valid(changes: dict[str, object]) -> None:
    assert_message(server_detail_blocks(detail(**changes), now=NOW))


def test_server_detail_content_and_hints() -> None:
    blocks: Any = server_detail_blocks(detail(), now=NOW)
    text = rendered(blocks)
    assert blocks[0]["text"]["text"] == "web-1"
    for part in ("(id 123)", "web-1.example.com", "built · complete", "running",
                 "Prague · hv-prg-1", "203.0.113.5", "2001:db8::5",
                 "2 CPU · 2,048 MB memory · 40 GB disk",
                 "Ubuntu 22.04", "(3 d 0 h ago)", "VF-12 by <@U0REQUESTER>"):  # fmt: skip
        assert part in text, part
    hints = blocks[-1]["elements"][0]["text"]
    assert "`/vf power web-1 restart`" in hints
    assert "`/vf traffic web-1`" in hints and "`/vf delete web-1`" in hints
    stopped = rendered(server_detail_blocks(detail(running=False, suspended=True), now=NOW))
    assert ":red_circle: off" in stopped and "suspended" in stopped
    unknown = rendered(server_detail_blocks(detail(running=None), now=NOW))
    assert "*Power*\\n:grey_question: unknown: the panel's answer did not say" in unknown
    assert "running" not in unknown.replace("built · complete", "")
    assert "Power" not in rendered(server_detail_blocks(detail(live=False), now=NOW))


def test_server_ref_uses_the_id_for_names_a_command_cannot_carry() -> None:
    assert server_ref("web-1.example", 7) == "web-1.example"
    assert server_ref("my server", 7) == "7"
    assert server_ref(EVIL, 7) == "7"
    assert server_ref("", 7) == "7"
    hints = rendered(server_detail_blocks(detail(name=EVIL), now=NOW)[-1])
    assert "`/vf delete 123`" in hints


@pytest.mark.parametrize("case", sorted(CASES))
def test_request_status_has_no_buttons_and_a_table(case: str) -> None:
    summary = CASES[case]
    blocks: Any = request_status_blocks(summary, now=NOW)
    assert_message(blocks)
    assert actions(blocks) == []
    text = rendered(blocks)
    if summary.servers:
        assert "```" in text and "NAME" in text
    if summary.state is RequestState.PENDING_APPROVAL:
        assert "Approvers decide on the request message in <#C0CHANNEL>" in text
    assert "`/vf list VF-12`" in text


def test_request_status_of_200_servers_stays_within_limits() -> None:
    summary = summarize(
        record(RequestState.RUNNING, **REQ_DECIDED), [instance(i) for i in range(200)]
    )
    assert_message(request_status_blocks(summary, now=NOW))


# -- /vf traffic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (-5, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2 - 1, "1.0 MiB"),
        (int(12.34 * 1024**3), "12.3 GiB"),
        (5 * 1024**4, "5.0 TiB"),
        (3 * 1024**7, "3,072.0 EiB"),
    ],
)
def test_format_bytes(n: int, expected: str) -> None:
    assert format_bytes(n) == expected


def traffic(**changes: object) -> TrafficSummary:
    base = TrafficSummary(
        server_id=123,
        name="web-1",
        month_start=datetime(2024, 5, 1, tzinfo=UTC),
        month_end=datetime(2024, 5, 31, tzinfo=UTC),
        rx_bytes=10 * 1024**3,
        tx_bytes=int(2.3 * 1024**3),
        total_bytes=int(12.3 * 1024**3),
        limit_gb=1000,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


def test_traffic_with_a_limit() -> None:
    blocks = traffic_blocks(traffic())
    assert_message(blocks)
    text = rendered(blocks)
    assert "10.0 GiB" in text and "2.3 GiB" in text
    assert "12.3 GiB of 1,000 GB (1.2 %)" in text
    assert "2024-05-01 to 2024-05-31" in text
    assert "warning" not in text


def test_traffic_unlimited_and_nearly_used_up() -> None:
    unlimited = traffic_blocks(traffic(limit_gb=0, month_start=None, month_end=None))
    assert_message(unlimited)
    assert "12.3 GiB (unlimited)" in rendered(unlimited)
    full = traffic_blocks(traffic(limit_gb=12.5, name=EVIL, month_end=None))
    assert_message(full)
    assert ":warning:" in rendered(full) and "since 2024-05-01" in rendered(full)


# -- short confirmations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (PowerResult(123, "web-1", "restart", 77, True, False),
         ":white_check_mark: `web-1` (id 123) restarted (task 77)."),
        (PowerResult(123, "web-1", "poweroff", None, True, False),
         ":white_check_mark: `web-1` (id 123) powered off."),
        (PowerResult(123, "web-1", "shutdown", 77, True, True, "guest did not <!channel>"),
         ":x: Shutdown of `web-1` (id 123) failed (task 77): guest did not &lt;!channel&gt;"),
        (PowerResult(123, "web-1", "boot", 77, True, True),
         ":x: Boot of `web-1` (id 123) failed (task 77): no reason given"),
    ],
)  # fmt: skip
def test_power_result_text(result: PowerResult, expected: str) -> None:
    assert power_result_text(result) == expected


def test_power_result_still_running_points_to_status() -> None:
    text = power_result_text(PowerResult(123, "web-1", "boot", 77, False, False))
    assert "still running" in text and "`/vf status web-1`" in text
    hostile = power_result_text(PowerResult(1, EVIL, "<!channel>", None, False, False))
    assert_text(hostile)


@pytest.mark.parametrize(
    ("action", "detail", "expected"),
    [
        ("suspend", "", "suspended."),
        ("unsuspend", "", "unsuspended."),
        ("backup-plan", "plan 2", "backup plan changed — plan 2."),
        ("owner", "now user 42", "owner changed — now user 42."),
        ("throttle", "50 %", "CPU throttle set — 50 %."),
        ("<!here>", EVIL, "&lt;!here&gt; done — &lt;!channel&gt; &amp; &lt;https://evil|x&gt;."),
    ],
)  # fmt: skip
def test_done_text(action: str, detail: str, expected: str) -> None:
    text = done_text(action, "web-1", 123, detail)
    assert text == ":white_check_mark: `web-1` (id 123): " + expected
    assert_text(text)


def test_done_text_with_a_huge_detail_fits() -> None:
    assert_text(done_text("owner", EVIL * 1000, 1, EVIL * 1000))


# -- /vf vnc ----------------------------------------------------------------------------------


def session(**changes: object) -> VncSession:
    data: dict[str, object] = {
        "ip": "203.0.113.9",
        "hostname": "vnc.example.com",
        "port": 5901,
        "enabled": True,
        "password": PASSWORD,
        "wss": {"token": "tok3n-secret", "url": WSS_URL},
    }
    data.update(changes)
    return VncSession.model_validate(data)


def test_vnc_enabled_shows_the_credentials_literally_and_says_who_sees_them() -> None:
    blocks: Any = vnc_blocks(session(), name="web-1", server_id=123, enabled=True)
    check_blocks(blocks)
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None and parsed.to_dict() == block
    text = rendered(blocks)
    listing = blocks[1]["elements"][0]["elements"][0]["text"]
    assert f"Password {PASSWORD}" in listing  # as typed: no escaping, no backtick dropped
    assert f"URL      {WSS_URL}" in listing
    assert "Host     vnc.example.com" in listing and "Port     5901" in listing
    assert "IP       203.0.113.9" in listing
    assert text.count(PASSWORD) == 1  # only in the preformatted block
    assert "Only you can see this. vfbot does not store it." in text
    assert "`/vf vnc web-1 disable`" in text
    fallback = vnc_text(name="web-1", server_id=123, enabled=True)
    assert PASSWORD not in fallback and "tok3n" not in fallback


def test_vnc_disabled_never_carries_a_secret() -> None:
    blocks = vnc_blocks(session(), name="web-1", server_id=123, enabled=False)
    assert_message(blocks, vnc_text(name="web-1", server_id=123, enabled=False))
    text = rendered(blocks)
    assert PASSWORD not in text and "tok3n" not in text and "vnc.example.com" not in text
    assert "disabled" in text and "`/vf vnc web-1 enable`" in text


def test_vnc_without_details_from_the_panel() -> None:
    empty = VncSession.model_validate({})
    blocks: Any = vnc_blocks(empty, name=EVIL, server_id=1, enabled=True)
    check_blocks(blocks)
    listing = blocks[1]["elements"][0]["elements"][0]["text"]
    assert "(the panel gave none)" in listing and "Port     -" in listing
    assert_safe([blocks[0], blocks[2]])


def test_vnc_session_repr_keeps_secrets_hidden() -> None:
    assert PASSWORD not in repr(session()) and "tok3n" not in repr(session())


# -- /vf hypervisors, /vf check ---------------------------------------------------------------


def group(i: int, **changes: object) -> HypervisorGroupRow:
    base = HypervisorGroupRow(
        group_id=i,
        name=f"group-{i}",
        enabled=i % 4 != 0,
        memory_free_mb=65536,
        storage_free_gb=2000,
        ipv4_free=i % 3,
        hypervisors=(f"hv-{i}-a", f"hv-{i}-b (maintenance)"),
        maintenance=(f"hv-{i}-b",) if i % 2 else (),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


def test_hypervisors() -> None:
    blocks = hypervisors_blocks([group(1), group(4), group(3)])
    assert_message(blocks)
    text = rendered(blocks)
    assert "Hypervisor groups (3)" in text
    assert (
        "*group-1* (group 1)" in text and "*group-4* (group 4) · :no_entry_sign: disabled" in text
    )
    assert "65,536 MB memory · 2,000 GB disk · 1 IPv4 address" in text
    assert "0 IPv4 addresses" in text
    assert "Hypervisors: hv-1-a, hv-1-b (maintenance)" in text
    assert ":construction: In maintenance: hv-1-b" in text


def test_hypervisors_empty_and_huge() -> None:
    assert_message(hypervisors_blocks([]))
    huge = [
        group(i, name=EVIL * 10, hypervisors=tuple(EVIL * 5 for _ in range(50)),
              maintenance=tuple(EVIL for _ in range(50)))
        for i in range(500)
    ]  # fmt: skip
    blocks = hypervisors_blocks(huge)
    assert_message(blocks)
    assert "and 400 more groups" in rendered(blocks)


def test_check_text() -> None:
    steps = [("configuration", True, ""), ("GET /connect", True, "200 in 40 ms"),
             ("package", False, "package 9 <!channel> not found")]  # fmt: skip
    text = check_blocks_text(steps)
    assert_text(text)
    assert text.splitlines() == [
        ":x: *Panel check*: 1 of 3 checks failed",
        "✓ *configuration*",
        "✓ *GET /connect*: 200 in 40 ms",
        "✗ *package*: package 9 &lt;!channel&gt; not found",
    ]
    assert check_blocks_text(steps[:2]).startswith(":white_check_mark: *Panel check*: all 2 checks")
    assert_text(check_blocks_text([]))
    many = check_blocks_text([(EVIL * 10, False, EVIL * 100) for _ in range(100)])
    assert_text(many)
    assert "more checks" in many


# -- /vf audit --------------------------------------------------------------------------------


def audit(i: int, **changes: object) -> AuditRecord:
    base = AuditRecord(
        id=i,
        at=NOW - timedelta(minutes=i),
        actor="U0APPROVER" if i % 2 else "cli:alice",
        action="server.delete",
        target="web-1 (123)",
        result="ok",
        detail={"delay_min": 5, "request": "VF-12"},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test-only overrides


def test_audit_lines() -> None:
    blocks = audit_blocks([audit(1), audit(2, detail={})], now=NOW)
    assert_message(blocks)
    text = rendered(blocks)
    assert "<@U0APPROVER> · `server.delete` · web-1 (123) · ok — delay_min=5, request=VF-12" in text
    assert "cli:alice" in text
    assert "2 entries · as of <!date^" in text


def test_audit_empty_and_hostile() -> None:
    assert_message(audit_blocks([], now=NOW))
    evil = audit(
        1, actor="<!here>", action=EVIL, target=EVIL * 50, result=EVIL * 10,
        detail={"note": EVIL * 30, "n": [1, {"<!channel>": "x"}]},
    )  # fmt: skip
    blocks = audit_blocks([evil] * 3, now=NOW)
    assert_message(blocks)
    assert "&lt;!here&gt;" in rendered(blocks)


@pytest.mark.parametrize("count", [8, 9, 100, 1000])
def test_audit_stays_within_limits(count: int) -> None:
    long = {"detail": {"k" * 50: "v" * 500}, "target": "t" * 500, "actor": "U0LONGACTOR"}
    blocks = audit_blocks([audit(i, **long) for i in range(count)], now=NOW)
    assert_message(blocks)
    if count > panel.AUDIT_ENTRIES_MAX:
        assert f"{count - panel.AUDIT_ENTRIES_MAX:,} older not shown" in rendered(blocks)


# -- confirmation modal -----------------------------------------------------------------------


def test_delete_confirmation_has_an_optional_delay() -> None:
    view: Any = confirm_modal(
        title="Delete web-1?",
        text="Delete server web-1 (id 123)? This cannot be undone.",
        action="delete",
        metadata='{"action":"delete","server_id":"123"}',
        confirm_label="Delete",
        danger=True,
    )
    assert_view(view)
    assert view["callback_id"] == ids.CONFIRM_VIEW
    assert view["submit"]["text"] == "Delete"
    assert view["private_metadata"] == '{"action":"delete","server_id":"123"}'
    assert view["blocks"][0]["text"]["text"].startswith(":warning: Delete server web-1 (id 123)?")
    delay = view["blocks"][1]
    assert delay["block_id"] == ids.B_DELAY == delay["element"]["action_id"]
    assert delay["optional"] is True
    assert delay["element"]["type"] == "number_input"
    assert (delay["element"]["min_value"], delay["element"]["max_value"]) == ("0", "43800")


def test_other_confirmations_have_no_input_and_clip_long_labels() -> None:
    view: Any = confirm_modal(
        title="Restart a server with a very long title",
        text=f"Restart {EVIL}?",
        action="power",
        metadata="m" * 3000,
        confirm_label="Restart it right now, please, yes",
        danger=False,
    )
    assert_view(view)
    assert [b["type"] for b in view["blocks"]] == ["section"]
    assert len(view["title"]["text"]) <= 24 and len(view["submit"]["text"]) <= 24
    assert "&lt;!channel&gt;" in view["blocks"][0]["text"]["text"]
    with pytest.raises(ValueError, match="3000"):
        confirm_modal(title="t", text="t", action="delete", metadata="m" * 3001,
                      confirm_label="OK", danger=True)  # fmt: skip


# -- operations needing approval --------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(OPERATIONS))
def test_operation_message_is_valid_in_every_state(case: str) -> None:
    op = OPERATIONS[case]
    assert_message(operation_blocks(op, now=NOW), operation_text(op))


@pytest.mark.parametrize("case", sorted(OPERATIONS))
def test_operation_buttons_only_while_pending(case: str) -> None:
    op = OPERATIONS[case]
    blocks: Any = operation_blocks(op, now=NOW)
    if op.state is OperationState.PENDING_APPROVAL:
        assert actions(blocks) == [ids.DELETE_APPROVE, ids.DELETE_REJECT]
        approve, reject = blocks[-1]["elements"]
        assert approve["value"] == reject["value"] == "5"
        assert (approve["style"], reject["style"]) == ("primary", "danger")
        assert "confirm" in approve and approve["confirm"]["style"] == "danger"
        assert "(id 123)" in approve["confirm"]["text"]["text"]
    else:
        assert actions(blocks) == []


def test_operation_message_content() -> None:
    text = rendered(operation_blocks(OPERATIONS["pending"], now=NOW))
    assert "OP-5 · delete web-1" in text
    assert "<@U0REQUESTER> asks to delete `web-1` (id 123), a server of VF-12" in text
    assert "60 min after approval (1 h)" in text
    assert "*Waiting for approval* (expires <!date^" in text and "in 23 h" in text
    confirm = operation_blocks(OPERATIONS["pending"], now=NOW)[-1]["elements"][0]["confirm"]  # type: ignore[index]
    assert confirm["title"]["text"] == "Delete web-1?"
    assert "after a delay of 60 min" in confirm["text"]["text"]
    assert "at once after approval" in rendered(
        operation_blocks(OPERATIONS["pending-no-expiry"], now=NOW)
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("pending-overdue", ", now)"),
        ("approved", "*Approved*: starting\\nApproved by <@U0APPROVER> at <!date^"),
        ("running", "*In progress*: vfbot is asking the panel\\nApproved by <@U0APPROVER>"),
        ("done-unasked", "*Done*: server 123 (web-1) deleted.\\nNo approval was needed"),
        ("done", "*Done*: deleted on the panel\\nApproved by <@U0APPROVER>"),
        ("done-no-approval", "*Done*: done"),
        ("failed", "*Failed*: panel said &lt;!channel&gt; 423"),
        ("rejected", "*Rejected* by <@U0APPROVER>: still used &lt;!here&gt; &amp; &lt;https://x|y&gt;"),
        ("expired", "*Expired*: nobody approved it in time on <!date^"),
        ("evil", "&lt;!here&gt; asks to delete `&lt;!channel&gt; &amp; &lt;https://evil|x&gt;`"),
    ],
)  # fmt: skip
def test_operation_state_lines(case: str, expected: str) -> None:
    assert expected in rendered(operation_blocks(OPERATIONS[case], now=NOW))


def test_operation_text_uses_utc_dates() -> None:
    text = operation_text(OPERATIONS["pending"])
    assert text.startswith("OP-5: <@U0REQUESTER> asks to delete `web-1` (id 123).")
    assert "2024-05-02 11:00 UTC" in text and "<!date" not in text
