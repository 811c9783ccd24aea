"""The alert channel end to end (issue 12): capacity and traffic alerts and the daily report
reach Slack once each, escaped and within Block Kit limits, and are not repeated on the next
ticks; two `vfbot serve` replicas on one database post one report."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.provisioning.model import RequestState
from bot.slack import ids
from tests.slack import signing
from tests.slack.conftest import REQUESTER, SlackHarness, form
from tests.slack.test_e2e_create import _text_of

ALERTS = "C0ALERTS"
GIB = 1024**3
SETTINGS = {
    "VF_REQUIRE_APPROVAL": "never",
    "VF_ALERT_CHANNEL": ALERTS,
    "VF_CAPACITY_ALERT": "memory<10%,ipv4<5",
    "VF_TRAFFIC_ALERT": "80%",
    "VF_DAILY_REPORT": "09:30",
    "VF_TIMEZONE": "Europe/Prague",
}


def _alerts(h: SlackHarness) -> list[str]:
    return [_text_of(m) for m in h.slack.messages(ALERTS)]


async def _tick(h: SlackHarness) -> None:
    """One round of the alert jobs and the daily report, then the notifier."""
    await h.runtime.core.fleet.alerts()
    await h.runtime.core.fleet.report()
    await h.runtime.deliver()


async def test_alerts_and_the_report_are_posted_once_each(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(**SETTINGS)
    values = form(name="web", count="1")
    values[ids.B_LIFETIME] = {ids.B_LIFETIME: signing.static_select("1d")}  # the form's choice
    await h.submit(values)
    await h.run_engine(ticks=12)
    (record,) = await h.runtime.core.requests.recent()
    assert record.state is RequestState.COMPLETED
    _, (instance,) = await h.runtime.core.requests.get(record.id)
    panel = h.sandbox.state
    panel.groups[2].name = "<!channel> Amsterdam & co"  # panel text is escaped, never obeyed
    h.slack.reset()

    # 09:30 in Prague is 08:30 UTC; the clock is just past 09:00 UTC: today's report is due.
    await _tick(h)
    (report,) = _alerts(h)
    assert "vfbot daily report · 2025-01-06 09:30 CET" in report
    assert "built 1" in report
    # Built a few seconds ago with a lifetime of one day: it expires within the next 24 hours.
    assert "*Expiring in the next 24 hours*\n• *web* (VF-1, <@U0REQUESTER>) at " in report
    assert "&lt;!channel&gt; Amsterdam &amp;" in report and "<!channel>" not in report

    # Amsterdam runs out of addresses, and the server passes 80 % of its traffic.
    panel.hypervisors[3].ipv4_pool.addresses[2:] = []
    assert instance.server_id is not None
    panel.servers[instance.server_id].traffic_bytes = 900 * GIB  # of 1000 GB
    await _tick(h)
    capacity, traffic = _alerts(h)[1:]
    assert "is low on capacity" in capacity and "2 IPv4 addresses free" in capacity
    assert "&lt;!channel&gt; Amsterdam &amp; co" in capacity and "<!channel>" not in capacity
    assert f"<@{REQUESTER}>" in traffic and "*web*" in traffic and "(90 %)" in traffic

    # The next ticks say nothing new.
    for _ in range(3):
        h.clock.advance(900)
        await _tick(h)
    assert len(_alerts(h)) == 3

    # Addresses come back: one recovery message.
    panel.hypervisors[3].ipv4_pool.addresses.extend(f"198.51.100.{n}" for n in range(200, 210))
    await _tick(h)
    await _tick(h)
    (recovered,) = _alerts(h)[3:]
    assert "has capacity again" in recovered
    h.check_limits()
    assert all(c.params["channel"] == ALERTS for c in h.slack.calls_to("chat.postMessage"))


async def test_two_replicas_post_one_report(slack_env: Any) -> None:
    first: SlackHarness = await slack_env(**SETTINGS)
    second: SlackHarness = await slack_env(**SETTINGS)  # the same database and Slack
    fired = await asyncio.gather(
        first.runtime.core.fleet.report(), second.runtime.core.fleet.report()
    )
    assert sorted(fired) == [False, True]
    await asyncio.gather(first.runtime.deliver(), second.runtime.deliver())
    assert len(_alerts(first)) == 1
    assert not await second.runtime.core.fleet.report()  # the next firing: written already


async def test_without_an_alert_channel_nothing_runs(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    fleet = h.runtime.core.fleet
    assert (fleet.capacity, fleet.traffic, fleet.reports) == (None, None, None)
    assert await fleet.alerts() == 0 and not await fleet.report()


async def test_alerts_wait_until_vfbot_is_invited(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(**SETTINGS)
    h.slack.bot_channels = set()  # invited nowhere
    await _tick(h)
    assert _alerts(h) == []
    assert any("cannot post alerts in VF_ALERT_CHANNEL" in r.getMessage() for r in h.logs)
    h.slack.bot_channels = {ALERTS}
    h.clock.advance(60)  # the deferred event's lease runs out
    await h.runtime.deliver()
    assert len(_alerts(h)) == 1
