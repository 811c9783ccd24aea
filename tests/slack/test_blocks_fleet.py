"""The alert channel's messages at their extremes: within Block Kit limits and slack_sdk models,
hostile names escaped, long lists cut with a count."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.provisioning.events import CapacityAlert, DailyReport, TrafficAlert
from bot.provisioning.fleet.model import (
    CapacityChange,
    ExpiringServer,
    FailedBuild,
    GroupUsage,
)
from bot.slack.blocks.fleet import (
    capacity_message,
    fleet_message,
    report_message,
    traffic_message,
)
from tests.slack.test_blocks_ops import assert_message

HOSTILE = "<!channel> <@U999> & `x` *bold*" + "ß" * 300
AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _group(n: int, name: str = HOSTILE) -> GroupUsage:
    return GroupUsage(
        group_id=n,
        name=name,
        hypervisors=2,
        memory_free_mb=1024,
        memory_total_mb=40960,
        disk_free_gb=20,
        disk_total_gb=1000,
        ipv4_free=3,
    )


def test_capacity_messages_say_what_crossed_and_what_recovered() -> None:
    alert = CapacityAlert(
        group=_group(1),
        changes=[
            CapacityChange(resource="memory", low=True, threshold="memory < 10 %"),
            CapacityChange(resource="ipv4", low=True, threshold="ipv4 < 5"),
            CapacityChange(resource="disk", low=False, threshold="disk < 10 %"),
        ],
    )
    text, blocks = capacity_message(alert)
    assert_message(blocks, text)
    body = blocks[0]["text"]["text"]  # type: ignore[index]
    assert "memory: 1,024 MB free of 40,960 MB (2.5 %), below the alert at memory &lt; 10 %" in body
    assert "ipv4: 3 IPv4 addresses free, below the alert at ipv4 &lt; 5" in body
    assert "has capacity again" in body and "disk: 20 GB free of 1,000 GB (2.0 %)" in body
    assert "&lt;!channel&gt;" in body


def test_traffic_message_mentions_the_requester_and_escapes_the_name() -> None:
    alert = TrafficAlert(
        server_id=101,
        name=HOSTILE,
        request_human_id="VF-7",
        requester="U0ALICE",
        total_bytes=900 * 1024**3,
        limit_gb=1000,
        used_percent=90,
        threshold_percent=80,
        period_start=AT,
        period_end=AT,
    )
    text, blocks = traffic_message(alert)
    assert_message(blocks, text)
    assert text.startswith("<@U0ALICE>:")
    body = blocks[0]["text"]["text"]  # type: ignore[index]
    assert "900.0 GiB of 1,000 GB (90 %)" in body and "(VF-7, server 101)" in body
    cli = TrafficAlert(requester="alice@laptop", name="db")  # a CLI request: no mention
    assert "alice@laptop" in traffic_message(cli)[0]


def test_a_huge_report_stays_within_limits() -> None:
    report = DailyReport(
        slot=AT,
        timezone="Europe/Prague",
        since=AT,
        servers={"built": 12_345, "failed": 67, "deleted": 890},
        expiring=[
            ExpiringServer(name=f"{HOSTILE}-{n}", request_human_id=f"VF-{n}", requester="U0BOB")
            for n in range(200)
        ],
        failed=[
            FailedBuild(name=f"{HOSTILE}-{n}", request_human_id=f"VF-{n}", error=HOSTILE * 3)
            for n in range(20)
        ],
        failed_total=500,
        capacity=[_group(n) for n in range(300)],
    )
    text, blocks = report_message(report)
    assert_message(blocks, text)
    said = str(blocks)
    assert "vfbot daily report · 2025-03-01 09:00 CET" in said
    assert "built 12,345 · failed 67 · deleted 890" in said
    assert "… and " in said and "480 more failed builds not listed." in said
    assert "<!channel>" not in said


def test_an_empty_report_says_so() -> None:
    text, blocks = report_message(DailyReport(slot=AT, capacity_error="The panel failed: 503"))
    assert_message(blocks, text)
    said = str(blocks)
    assert "None yet." in said and "Not known: this vfbot does not keep server lifetimes." in said
    assert "*Failed builds*\nNone." in [b["text"]["text"] for b in blocks[3:4]]  # type: ignore[index]
    assert "Could not read the panel: `The panel failed: 503`" in said
    expiring = report_message(DailyReport(slot=AT, expiring=[]))[1]
    assert "Expiring in the next 24 hours*\nNothing." in expiring[2]["text"]["text"]  # type: ignore[index]


def test_other_events_are_not_alert_messages() -> None:
    assert fleet_message(None) is None
    assert fleet_message(CapacityAlert()) is not None
