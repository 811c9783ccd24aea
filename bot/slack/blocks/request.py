"""The root message of a request (summary, state, Approve/Reject); pure, `now` is passed in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.provisioning.durations import format_duration
from bot.provisioning.model import IN_FLIGHT_INSTANCE_STATES, InstanceState, RequestState
from bot.slack import ids
from bot.slack.blocks._kit import (
    Json,
    button,
    duration_text,
    header,
    mrkdwn_text,
    plural,
    section,
    slack_date,
    utc_text,
)
from bot.slack.blocks.summary import RequestSummary, ServerLine
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = [
    "GROUP_LINES_MAX",
    "SERVER_LINES_MAX",
    "WARNINGS_MAX",
    "bounded_lines",
    "request_blocks",
    "request_text",
    "server_line_text",
    "state_line",
    "titled_lines",
]

SERVER_LINES_MAX = 10
GROUP_LINES_MAX = 10
WARNINGS_MAX = 5
_WARNING_CHARS = 400
_NOTE_CHARS = 500
_LABEL_CHARS = 40  # panel names (OS, group) inside one list line
_FIELD_MAX = 2000

_STATE_WORDS = {
    InstanceState.PLANNED: "waiting",
    InstanceState.CREATING: "creating",
    InstanceState.CREATE_UNKNOWN: "checking the panel",
    InstanceState.CREATED: "created",
    InstanceState.BUILDING: "building",
    InstanceState.BUILT: "built",
    InstanceState.FAILED: "failed",
    InstanceState.CANCELLED: "cancelled",
    InstanceState.DELETED: "deleted",
}


def request_blocks(summary: RequestSummary, *, now: datetime) -> list[Json]:
    """Blocks of the root message; Approve and Reject appear only while approval is pending."""
    blocks: list[Json] = [
        header(f"{summary.human_id} · {summary.project_name}"),
        {"type": "section", "fields": _fields(summary)},
        section(_servers_text(summary)),
    ]
    where = _where_text(summary)
    if where:
        blocks.append(section(where))
    if summary.warnings:
        blocks.append(section(_warnings_text(summary.warnings)))
    blocks.append(section(state_line(summary, now=now)))
    if summary.state is RequestState.PENDING_APPROVAL:
        value = str(summary.request_id)
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    button("Approve", ids.APPROVE, value, style="primary"),
                    button("Reject", ids.REJECT, value, style="danger"),
                ],
            }
        )
    return blocks


def request_text(summary: RequestSummary) -> str:
    """Fallback text of the root message (notifications, screen readers); UTC dates."""
    return truncate(
        f"{summary.human_id} · {escape(summary.project_name)}: "
        f"{plural(summary.counts.total, 'server')} requested by {mention(summary.requester)}. "
        + state_line(summary, now=None, when=utc_text),
        SECTION_MAX,
    )


def state_line(
    summary: RequestSummary,
    *,
    now: datetime | None,
    when: Callable[[datetime], str] = slack_date,
) -> str:
    """Where the request stands, e.g. `Running: 3/5 built`; `when` renders dates."""
    counts = summary.counts
    state = summary.state
    by = mention(summary.decided_by) if summary.decided_by else "someone"
    approved = ""
    if summary.decided_by and state not in (RequestState.PENDING_APPROVAL, RequestState.REJECTED):
        at = f" at {when(summary.decided_at)}" if summary.decided_at else ""
        approved = f"\nApproved by {by}{at}"
    if state is RequestState.PENDING_APPROVAL:
        line = ":hourglass_flowing_sand: *Waiting for approval*"
        if summary.expires_at is not None:
            left = ""
            if now is not None:
                delta = summary.expires_at - now
                left = f", in {duration_text(delta)}" if delta.total_seconds() > 0 else ", now"
            line += f" (expires {when(summary.expires_at)}{left})"
        return line
    if state is RequestState.APPROVED:
        at = f" at {when(summary.decided_at)}" if summary.decided_at else ""
        return f":white_check_mark: *Approved* by {by}{at}; starting"
    if state is RequestState.REJECTED:
        note = summary.decision_note
        reason = f": {truncate(escape(note), _NOTE_CHARS)}" if note and note.strip() else ""
        return f":no_entry: *Rejected* by {by}{reason}"
    if state is RequestState.EXPIRED:
        at = f" on {when(summary.expires_at)}" if summary.expires_at else ""
        return f":hourglass: *Expired*: nobody approved it in time{at}"
    if state is RequestState.RUNNING:
        line = f":gear: *Running*: {counts.built}/{counts.total} built"
        if counts.failed:
            line += f", {counts.failed} failed"
        if summary.cancel_requested:
            line += "; cancelling"
        return line + approved
    if state is RequestState.COMPLETED:
        line = f":white_check_mark: *Completed*: {counts.built}/{counts.total} built"
        return line + approved
    if state is RequestState.PARTIALLY_FAILED:
        line = f":warning: *Partially failed*: {counts.built} built, {counts.failed} failed"
        if counts.cancelled:
            line += f", {counts.cancelled} cancelled"
        return line + approved
    if state is RequestState.FAILED:
        line = f":x: *Failed*: 0/{counts.total} built, {counts.failed} failed"
        return line + approved
    # RequestState.CANCELLED
    line = ":no_entry_sign: *Cancelled*"
    done = [
        f"{n} {word}"
        for n, word in (
            (counts.built, "built and kept"),
            (counts.deleted, "deleted"),
            (counts.failed, "failed"),
        )
        if n
    ]
    return line + (": " + ", ".join(done) if done else "") + approved


_WAITING_STATES = IN_FLIGHT_INSTANCE_STATES | {InstanceState.PLANNED}
_LIFETIME_STATES = _WAITING_STATES  # not built yet: the lifetime starts at the build
_NOTE_CHARS = 160


def server_line_text(server: ServerLine) -> str:
    """One compact mrkdwn line about a server."""
    parts = [code(truncate(server.name, 63))]
    if server.os:
        parts.append(escape(truncate(server.os, _LABEL_CHARS)))
    if server.cpu is not None:
        parts.append(f"{server.cpu} CPU")
    if server.memory_mb is not None:
        parts.append(f"{server.memory_mb:,} MB")
    if server.disk_gb is not None:
        parts.append(f"{server.disk_gb:,} GB")
    if server.route:  # it names the group it ends in
        parts.append(escape(truncate(server.route, _NOTE_CHARS)))
    elif server.group:
        parts.append(escape(truncate(server.group, _LABEL_CHARS)))
    line = "• " + " · ".join(parts)
    if server.state is not InstanceState.PLANNED:
        line += f" — {_STATE_WORDS[server.state]}"
        if server.server_id is not None:
            line += f" (server {server.server_id})"
    if server.expires_at is not None:
        line += f" · :hourglass: expires {slack_date(server.expires_at)}"
    elif server.lifetime_s and server.state in _LIFETIME_STATES:
        line += f" · :hourglass: expires {format_duration(server.lifetime_s)} after it is built"
    if server.error and server.state in _WAITING_STATES:  # what vfbot is waiting for
        line += f": {escape(truncate(server.error, _NOTE_CHARS))}"
        if server.ipv4:
            line += " " + escape(", ".join(server.ipv4[:2]))
            if len(server.ipv4) > 2:
                line += f" +{len(server.ipv4) - 2}"
    return line


def bounded_lines(
    lines: Sequence[str], *, max_lines: int, budget: int, more: Callable[[int], str]
) -> str:
    """Join at most `max_lines` lines within `budget` chars, then `more(left_out)` if any."""
    kept: list[str] = []
    used = 0
    reserve = len(more(len(lines))) + 1
    for line in lines:
        if len(kept) >= max_lines or used + len(line) + 1 + reserve > budget:
            break
        kept.append(line)
        used += len(line) + 1
    left = len(lines) - len(kept)
    if left:
        kept.append(more(left))
    return "\n".join(kept)


def titled_lines(
    title: str, lines: Sequence[str], *, max_lines: int, more: Callable[[int], str]
) -> str:
    """`title`, then `bounded_lines` on the next lines, the whole within one section's text."""
    body = bounded_lines(lines, max_lines=max_lines, budget=SECTION_MAX - len(title) - 1, more=more)
    return f"{title}\n{body}"


def _fields(summary: RequestSummary) -> list[Json]:
    servers = summary.servers
    totals = [
        plural(summary.counts.total, "server"),
        *_resource_totals(servers),
    ]
    fields = [
        f"*Requested by*\n{mention(summary.requester)} via {escape(summary.source)}\n"
        f"{slack_date(summary.created_at)}",
        "*What*\n" + " · ".join(totals),
    ]
    if summary.package_name:
        fields.append(f"*Package*\n{escape(summary.package_name)}")
    return [mrkdwn_text(f, _FIELD_MAX) for f in fields]


def _resource_totals(servers: Sequence[ServerLine]) -> list[str]:
    out: list[str] = []
    cpu = [s.cpu for s in servers if s.cpu is not None]
    memory = [s.memory_mb for s in servers if s.memory_mb is not None]
    disk = [s.disk_gb for s in servers if s.disk_gb is not None]
    if cpu:
        out.append(f"{sum(cpu):,} CPU")
    if memory:
        out.append(f"{sum(memory):,} MB memory")
    if disk:
        out.append(f"{sum(disk):,} GB disk")
    return out


def _servers_text(summary: RequestSummary) -> str:
    if not summary.servers:
        return "*Servers*\n_none_"
    return titled_lines(
        "*Servers*",
        [server_line_text(s) for s in summary.servers],
        max_lines=SERVER_LINES_MAX,
        more=lambda n: f"_and {n:,} more — `/vf status {summary.human_id}`_",
    )


def _where_text(summary: RequestSummary) -> str:
    groups: dict[str, list[ServerLine]] = {}
    for server in summary.servers:
        groups.setdefault(server.group or "(unknown group)", []).append(server)
    if not groups:
        return ""
    lines = []
    for name, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        totals = " · ".join([plural(len(members), "server"), *_resource_totals(members)])
        lines.append(f"• *{escape(truncate(name, _LABEL_CHARS))}*: {totals}")
    return titled_lines(
        "*Where* (hypervisor groups)",
        lines,
        max_lines=GROUP_LINES_MAX,
        more=lambda n: f"_and {plural(n, 'more group')}_",
    )


def _warnings_text(warnings: Sequence[str]) -> str:
    return titled_lines(
        ":warning: *Warnings*",
        [f"• {truncate(escape(w), _WARNING_CHARS)}" for w in warnings],
        max_lines=WARNINGS_MAX,
        more=lambda n: f"_and {plural(n, 'more warning')}_",
    )
