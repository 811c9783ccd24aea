"""Messages of the alert channel: capacity and traffic alerts, the daily report; pure.

Every name from the panel or a request is escaped; each section stays within Slack's 3000
characters and a message within 50 blocks (long lists end in "… and N more").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.provisioning.events import CapacityAlert, DailyReport, Event, TrafficAlert
from bot.provisioning.fleet.model import ExpiringServer, FailedBuild, GroupUsage, Resource
from bot.provisioning.servers.model import format_bytes
from bot.slack.blocks._kit import (
    LABEL_CHARS,
    NAME_CHARS,
    NOTE_CHARS,
    Json,
    context,
    header,
    plural,
    section,
    slack_date,
)
from bot.slack.blocks.request import bounded_lines
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = ["Message", "capacity_message", "fleet_message", "report_message", "traffic_message"]

Message = tuple[str, list[Json]]
"""Fallback text and blocks of one message."""

_LIST_LINES = 25
_FENCE = "```"


def fleet_message(event: Event | None) -> Message | None:
    """The alert channel's message for a fleet event; None for any other event."""
    match event:
        case CapacityAlert():
            return capacity_message(event)
        case TrafficAlert():
            return traffic_message(event)
        case DailyReport():
            return report_message(event)
    return None


def _name(text: str, limit: int = NAME_CHARS) -> str:
    return escape(truncate(text or "?", limit))


def _free_text(group: GroupUsage, resource: Resource) -> str:
    """`1,024 MB free of 40,960 MB (2.5 %)`, `3 IPv4 addresses free`."""
    if resource is Resource.IPV4:
        return f"{plural(group.ipv4_free, 'IPv4 address', 'IPv4 addresses')} free"
    unit = "MB" if resource is Resource.MEMORY else "GB"
    free, total = group.free(resource), group.total(resource) or 0
    share = f" ({100 * free / total:.1f} %)" if total else ""
    return f"{free:,.0f} {unit} free of {total:,.0f} {unit}{share}"


def capacity_message(alert: CapacityAlert) -> Message:
    """One group's capacity crossing (or recovering): what, how much is left, the threshold."""
    group = alert.group
    name = _name(group.name, LABEL_CHARS)
    low = [c for c in alert.changes if c.low]
    back = [c for c in alert.changes if not c.low]
    lines = []
    if low:
        lines.append(f":warning: Hypervisor group *{name}* is low on capacity:")
        lines += [f"• {_change(group, c.resource, c.threshold, 'below')}" for c in low]
    if back:
        lines.append(f":white_check_mark: Hypervisor group *{name}* has capacity again:")
        lines += [f"• {_change(group, c.resource, c.threshold, 'above')}" for c in back]
    what = "low on" if low else "back above its alert thresholds for"
    text = f"Hypervisor group {name} is {what} " + ", ".join(c.resource for c in alert.changes)
    note = (
        f"Group {group.group_id} · {plural(group.hypervisors, 'usable hypervisor')} · "
        "`/vf hypervisors` shows every group · said once until it changes again"
    )
    return text, [section("\n".join(lines)), context([note])]


def _change(group: GroupUsage, resource: str, threshold: str, side: str) -> str:
    try:
        amount = _free_text(group, Resource(resource))
    except ValueError:
        amount = "unknown"
    return f"{escape(resource)}: {amount}, {side} the alert at {escape(threshold)}"


def traffic_message(alert: TrafficAlert) -> Message:
    """A server past the traffic threshold, mentioning its requester."""
    name = _name(alert.name)
    who = mention(alert.requester) if alert.requester else "Someone"
    where = ", ".join(
        p
        for p in (
            escape(alert.request_human_id),
            f"server {alert.server_id}" if alert.server_id else "",
        )
        if p
    )
    used = (
        f"{format_bytes(alert.total_bytes)} of {alert.limit_gb:,g} GB ({alert.used_percent:.0f} %)"
    )
    period = ""
    if alert.period_start is not None and alert.period_end is not None:
        period = f" The period runs from {slack_date(alert.period_start)} to "
        period += f"{slack_date(alert.period_end)}."
    body = (
        f":chart_with_upwards_trend: {who}: your server *{name}* ({where}) has used {used} of "
        f"its traffic this period.{period} Past the limit the panel may slow or suspend it."
    )
    note = (
        f"Alerts at {alert.threshold_percent:g} % of a limit, once per server and period · "
        f"{code('/vf traffic ' + truncate(alert.name or '?', NAME_CHARS))} shows it now"
    )
    text = f"{who}: {name} has used {alert.used_percent:.0f} % of its traffic this period"
    return truncate(text, SECTION_MAX), [section(body), context([note])]


def report_message(report: DailyReport) -> Message:
    """The daily report: servers by state, expiring soon, failed builds, capacity."""
    when = _local(report.slot, report.timezone)
    blocks: list[Json] = [
        header(f"vfbot daily report · {when}"),
        section("*Servers by state* (all vfbot has handled)\n" + _states(report.servers)),
        section(_expiring(report.expiring)),
        section(_failed(report.failed, report.failed_total, report.since)),
        section(_capacity(report.capacity, report.capacity_error)),
        context(["`/vf list` shows servers · `/vf hypervisors` shows every group"]),
    ]
    total = sum(report.servers.values())
    text = f"vfbot daily report {when}: {plural(total, 'server')}, "
    text += f"{plural(report.failed_total, 'failed build')} since the last report"
    return text, blocks


def _local(at: datetime | None, zone: str) -> str:
    if at is None:
        return "today"
    try:
        return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")
    except (ZoneInfoNotFoundError, ValueError):
        return at.strftime("%Y-%m-%d %H:%M %z")


def _states(counts: dict[str, int]) -> str:
    if not counts:
        return "None yet."
    return " · ".join(f"{escape(state)} {n:,}" for state, n in counts.items())


def _expiring(servers: list[ExpiringServer] | None) -> str:
    title = "*Expiring in the next 24 hours*\n"
    if servers is None:
        return title + "Not known: this vfbot does not keep server lifetimes."
    if not servers:
        return title + "Nothing."
    lines = [
        f"• *{_name(s.name)}* ({escape(s.request_human_id or '?')}, {mention(s.requester)})"
        + (f" at {slack_date(s.expires_at)}" if s.expires_at is not None else "")
        for s in servers
    ]
    return title + _bounded(lines, "`/vf list` shows servers")


def _failed(builds: Sequence[FailedBuild], total: int, since: datetime | None) -> str:
    after = f" since {slack_date(since)}" if since is not None else ""
    title = f"*Failed builds{after}*\n"
    if not total:
        return title + "None."
    lines = [
        f"• *{_name(b.name)}* ({escape(b.request_human_id or '?')}): "
        + escape(truncate(" ".join(b.error.split()) or "no reason given", NOTE_CHARS // 2))
        for b in builds
    ]
    text = _bounded(lines, "`/vf status VF-n` shows a request")
    if total > len(builds):
        text += f"\n{plural(total - len(builds), 'more failed build')} not listed."
    return title + text


def _capacity(groups: Sequence[GroupUsage], error: str) -> str:
    title = "*Capacity per hypervisor group*\n"
    if error:
        return title + f"Could not read the panel: {code(truncate(error, NOTE_CHARS))}"
    if not groups:
        return title + "No enabled hypervisor group."
    rows = [("GROUP", "MEMORY FREE", "DISK FREE", "IPV4 FREE")]
    for g in groups:
        rows.append(
            (
                truncate(g.name or str(g.group_id), 24),
                _share(g.memory_free_mb, g.memory_total_mb, "MB"),
                _share(g.disk_free_gb, g.disk_total_gb, "GB"),
                f"{g.ipv4_free:,}",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = [
        escape("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]
    budget = SECTION_MAX - len(title) - 2 * len(_FENCE) - 2
    table = bounded_lines(
        lines, max_lines=_LIST_LINES + 1, budget=budget, more=lambda n: f"… and {n:,} more"
    )
    return f"{title}{_FENCE}\n{table}\n{_FENCE}"


def _share(free: float, total: float, unit: str) -> str:
    if not total:
        return "none"
    return f"{free:,.0f} {unit} ({100 * free / total:.0f} %)"


def _bounded(lines: list[str], where: str) -> str:
    return bounded_lines(
        lines,
        max_lines=_LIST_LINES,
        budget=SECTION_MAX - 100,
        more=lambda n: f"… and {n:,} more ({where})",
    )
