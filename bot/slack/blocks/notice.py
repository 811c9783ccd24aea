"""The completion notice posted to the channel when a request ends; pure, `now` is passed in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.provisioning.model import InstanceState, RequestState
from bot.slack import ids
from bot.slack.blocks._kit import (
    Json,
    button,
    confirm_dialog,
    context,
    plural,
    section,
    slack_date,
    utc_text,
)
from bot.slack.blocks.request import bounded_lines, state_line, titled_lines
from bot.slack.blocks.summary import RequestSummary, ServerLine
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = ["FAILURES_MAX", "notice_blocks", "notice_text", "server_table"]

FAILURES_MAX = 5
_REASON_CHARS = 300
_CELL_CHARS = {"name": 32, "group": 20, "ipv4": 20}
_FENCE = "```"


def notice_blocks(summary: RequestSummary, *, now: datetime) -> list[Json]:
    """Blocks of the notice: outcome, a server table, failures and, if any failed, the fixes."""
    blocks: list[Json] = [section(_headline(summary, now=now))]
    if summary.servers:
        blocks.append(section(server_table(summary.servers, human_id=summary.human_id)))
    failed = [s for s in summary.servers if s.state is InstanceState.FAILED]
    if failed:
        blocks.append(section(_failures_text(failed, summary.human_id)))
    blocks.append(
        context(
            [
                f"Finished {slack_date(now)} · details: `/vf status {summary.human_id}` · "
                "root passwords stay in the VirtFusion panel; vfbot never shows them"
            ]
        )
    )
    if failed:
        blocks.append(_fix_actions(summary, len(failed)))
    return blocks


def notice_text(summary: RequestSummary) -> str:
    """Fallback text of the notice; it mentions the requester."""
    return truncate(
        f"{mention(summary.requester)} {summary.human_id} · {escape(summary.project_name)} "
        "finished. " + state_line(summary, now=None, when=utc_text),
        SECTION_MAX,
    )


def server_table(servers: Sequence[ServerLine], *, human_id: str) -> str:
    """A monospace table (name, server id, group, IPv4, state) within one section's 3000 chars.

    Rows that do not fit are summarised as `… and N more — /vf status VF-n`.
    """
    rows = [("NAME", "SERVER", "GROUP", "IPV4", "STATE")]
    rows += [_row(s) for s in servers]
    widths = [max(len(row[col]) for row in rows) for col in range(5)]
    lines = [
        escape(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    header_line, body = lines[0], lines[1:]

    def more(n: int) -> str:
        return f"… and {n:,} more — /vf status {human_id}"

    budget = SECTION_MAX - len(_FENCE) * 2 - len(header_line) - 4
    table = bounded_lines(body, max_lines=len(body), budget=budget, more=more)
    return f"{_FENCE}\n{header_line}\n{table}\n{_FENCE}"


def _row(server: ServerLine) -> tuple[str, str, str, str, str]:
    ipv4 = server.ipv4[0] if server.ipv4 else "-"
    if len(server.ipv4) > 1:
        ipv4 += f" +{len(server.ipv4) - 1}"
    return (
        _cell(server.name, _CELL_CHARS["name"]),
        str(server.server_id) if server.server_id is not None else "-",
        _cell(server.group or "-", _CELL_CHARS["group"]),
        _cell(ipv4, _CELL_CHARS["ipv4"]),
        server.state.value,
    )


def _cell(text: str, limit: int) -> str:
    # Backticks would close the code block; line breaks would break the row.
    return truncate(" ".join(text.replace("`", "'").split()) or "-", limit)


def _headline(summary: RequestSummary, *, now: datetime) -> str:
    title = f"*{summary.human_id} · {escape(summary.project_name)}*"
    return f"{mention(summary.requester)} your request {title} has finished.\n" + state_line(
        summary, now=now
    )


def _failures_text(failed: Sequence[ServerLine], human_id: str) -> str:
    lines = [
        f"• {code(truncate(s.name, 63))}"
        + (f" (server {s.server_id})" if s.server_id is not None else "")
        + f": {truncate(escape(s.error or 'no reason recorded'), _REASON_CHARS)}"
        for s in failed
    ]
    return titled_lines(
        "*What went wrong*",
        lines,
        max_lines=FAILURES_MAX,
        more=lambda n: f"_and {n:,} more — `/vf status {human_id}`_",
    )


def _fix_actions(summary: RequestSummary, failed: int) -> Json:
    value = str(summary.request_id)
    servers = plural(failed, "failed server")
    cleanup = button(
        "Clean up",
        ids.CLEANUP,
        value,
        style="danger",
        confirm=confirm_dialog(
            "Delete the failed servers' leftovers?",
            f"vfbot will delete on the panel whatever the {servers} of {summary.human_id} "
            "left behind (servers created but never built). Built servers are not touched. "
            "This cannot be undone.",
            "Delete leftovers",
            "Keep them",
            danger=True,
        ),
    )
    elements = [cleanup]
    if summary.state is not RequestState.CANCELLED:
        retry = button(
            "Retry failed",
            ids.RETRY_FAILED,
            value,
            style="primary",
            confirm=confirm_dialog(
                "Retry the failed servers?",
                f"vfbot will create the {servers} of {summary.human_id} again on the panel, "
                "with the same plan, and post progress in the request's thread. Built servers "
                "are not touched.",
                f"Retry {plural(failed, 'server')}",
                "Not now",
            ),
        )
        elements.insert(0, retry)
    return {"type": "actions", "elements": elements}
