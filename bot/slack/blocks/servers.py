"""Server lists and details for `/vf list`, `/vf status` and `/vf traffic`; pure.

Builders take plain values from `bot.provisioning.servers.model` and `now` from the caller; all
user and panel text is escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime

from bot.provisioning.model import RequestState
from bot.provisioning.servers.model import ServerDetail, ServerRow, TrafficSummary, format_bytes
from bot.slack import ids
from bot.slack.blocks._kit import (
    LABEL_CHARS,
    NAME_CHARS,
    Json,
    as_utc,
    button,
    context,
    duration_text,
    header,
    mrkdwn_text,
    section,
    sections,
    slack_date,
)
from bot.slack.blocks.lifetimes import expiry_line
from bot.slack.blocks.notice import server_table
from bot.slack.blocks.request import request_blocks
from bot.slack.blocks.summary import RequestSummary
from bot.slack.limits import BUTTON_VALUE_MAX, SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate
from bot.slack.policy import is_channel_id

__all__ = [
    "LIST_ROWS_MAX",
    "LIST_ROWS_PER_SECTION",
    "list_page_value",
    "parse_list_page",
    "request_status_blocks",
    "server_detail_blocks",
    "server_list_blocks",
    "server_ref",
    "server_row_text",
    "traffic_blocks",
    "usage_text",
]

LIST_ROWS_MAX = 50
"""Most servers one list message shows; more are reached with the Next page button."""
LIST_ROWS_PER_SECTION = 10

_ROW_CHARS = SECTION_MAX // LIST_ROWS_PER_SECTION - 1  # ten lines always fit one section
_FIELD_CHARS = 2000
_IPS_SHOWN = 5


def server_list_blocks(
    rows: Sequence[ServerRow],
    *,
    total: int,
    offset: int,
    page_size: int,
    title: str,
    scope: str,
) -> list[Json]:
    """The ephemeral `/vf list` reply: `title (total)`, a line per server, and a Next page button.

    `title` comes without the count (e.g. "Your servers"); at most `min(page_size, 50)` rows are
    shown, and the button's value carries `scope` and the next offset (see `parse_list_page`).
    Raises ValueError when `page_size` is below 1 or `scope` makes the value too long.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1; got {page_size}")
    shown = list(rows[: min(page_size, LIST_ROWS_MAX)])
    blocks: list[Json] = [header(f"{title} ({total:,})")]
    if not shown:
        if offset <= 0:
            blocks.append(section(f"No servers yet — `{ids.COMMAND} create` makes some."))
        else:
            blocks.append(
                section(f"No more servers here; `{ids.COMMAND} list` starts from the first.")
            )
        return blocks
    blocks += sections([server_row_text(r) for r in shown], per_section=LIST_ROWS_PER_SECTION)
    first, last = offset + 1, offset + len(shown)
    page = offset // page_size + 1
    pages = max(1, math.ceil(total / page_size))
    blocks.append(
        context(
            [
                f"{first:,} to {last:,} of {total:,} · page {page:,} of {pages:,} · "
                f"details: `{ids.COMMAND} status NAME`"
            ]
        )
    )
    if last < total:
        value = list_page_value(scope, last)
        blocks.append({"type": "actions", "elements": [button("Next page", ids.LIST_PAGE, value)]})
    return blocks


def server_row_text(row: ServerRow) -> str:
    """`• `web-1` · id 123 · built · Prague · 203.0.113.5 · VF-12`, one line, ≤ 299 chars."""
    parts = [
        code(truncate(row.name, NAME_CHARS)),
        f"id {row.server_id}",
        escape(truncate(row.state or "?", LABEL_CHARS)),
        escape(truncate(row.group or "?", LABEL_CHARS)),
        _ips(row.ipv4, shown=1) if row.ipv4 else "no IPv4",
    ]
    if row.suspended:
        parts.append(":double_vertical_bar: suspended")
    if row.request_human_id:
        parts.append(escape(truncate(row.request_human_id, 20)))
    return truncate("• " + " · ".join(parts), _ROW_CHARS)


def list_page_value(scope: str, offset: int) -> str:
    """The Next page button value: compact JSON `{"s": scope, "o": offset}`.

    Raises ValueError when it would exceed Slack's 2000 characters.
    """
    value = json.dumps({"s": scope, "o": offset}, separators=(",", ":"), ensure_ascii=False)
    if len(value) > BUTTON_VALUE_MAX:
        raise ValueError(f"list scope too long for a button value ({len(value)} chars)")
    return value


def parse_list_page(value: str) -> tuple[str, int]:
    """(scope, offset) from a Next page button value; raises ValueError on anything else."""
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        raise ValueError("list page value is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("list page value is not a JSON object")
    scope, offset = data.get("s"), data.get("o")
    if not isinstance(scope, str) or not isinstance(offset, int) or isinstance(offset, bool):
        raise ValueError("list page value needs a string `s` and an integer `o`")
    if offset < 0:
        raise ValueError(f"list page offset must not be negative; got {offset}")
    return scope, offset


def _power_text(running: bool | None) -> str:
    """Power as the panel proved it; unknown is said, never guessed (the spec documents no
    `remoteState` answer beyond `false`)."""
    if running is None:
        return ":grey_question: unknown: the panel's answer did not say"
    return ":large_green_circle: running" if running else ":red_circle: off"


def server_detail_blocks(detail: ServerDetail, *, now: datetime) -> list[Json]:
    """`/vf status <server>`: where and what the server is, and the commands that act on it."""
    ref = server_ref(detail.name, detail.server_id)
    state = (
        f"{escape(detail.phase)} · {escape(detail.state)}" if detail.state else escape(detail.phase)
    )
    if detail.suspended:
        state += "\n:double_vertical_bar: suspended"
    fields = [
        f"*Server*\n{code(truncate(detail.name, NAME_CHARS))} (id {detail.server_id})"
        + (f"\n{escape(truncate(detail.hostname, 100))}" if detail.hostname else ""),
        f"*State*\n{state}",
    ]
    if detail.live:
        fields.append("*Power*\n" + _power_text(detail.running))
    fields.append(
        f"*Where*\n{escape(truncate(detail.group or '?', LABEL_CHARS))} · "
        f"{escape(truncate(detail.hypervisor or '?', LABEL_CHARS))}"
    )
    addresses = []
    if detail.ipv4:
        addresses.append(_ips(detail.ipv4, shown=_IPS_SHOWN))
    if detail.ipv6:
        addresses.append(_ips(detail.ipv6, shown=2))
    fields.append("*IP addresses*\n" + ("\n".join(addresses) if addresses else "none"))
    size = _size_text(detail.cpu_cores, detail.memory_mb, detail.disk_gb)
    if size:
        fields.append(f"*Size*\n{size}")
    if detail.os:
        fields.append(f"*OS*\n{escape(truncate(detail.os, 100))}")
    if detail.built_at is not None:
        ago = as_utc(now) - as_utc(detail.built_at)
        fields.append(f"*Built*\n{slack_date(detail.built_at)} ({duration_text(ago)} ago)")
    if detail.expires_at is not None:
        fields.append(f"*Expires*\n{expiry_line(detail.expires_at, now)}")
    if detail.request_human_id:
        by = f" by {mention(detail.requester)}" if detail.requester else ""
        fields.append(f"*Request*\n{escape(detail.request_human_id)}{by}")
    blocks: list[Json] = [
        header(detail.name or f"Server {detail.server_id}"),
        {"type": "section", "fields": [mrkdwn_text(f, _FIELD_CHARS) for f in fields]},
        context(
            [
                "Related: "
                + " · ".join(
                    (_hint(ref, "power", "restart"), _hint(ref, "traffic"), _hint(ref, "delete"))
                )
            ]
        ),
    ]
    return blocks


def request_status_blocks(summary: RequestSummary, *, now: datetime) -> list[Json]:
    """`/vf status VF-n`: the request message without buttons, servers as a table."""
    blocks = [b for b in request_blocks(summary, now=now) if b.get("type") != "actions"]
    if summary.servers:
        table = section("*Servers*\n" + server_table(summary.servers, human_id=summary.human_id))
        blocks = [table if _is_servers_section(b) else b for b in blocks]
    hints = []
    if summary.state is RequestState.PENDING_APPROVAL:
        channel = summary.channel
        where = f" in <#{channel}>" if channel and is_channel_id(channel) else ""
        hints.append(f"Approvers decide on the request message{where}.")
    hints.append(
        f"`{ids.COMMAND} list {summary.human_id}` shows its servers as the panel sees them"
    )
    blocks.append(context([" · ".join(hints)]))
    return blocks


def traffic_blocks(t: TrafficSummary) -> list[Json]:
    """`/vf traffic <server>`: this month's received, sent and total bytes against the limit."""
    period = ""
    if t.month_start is not None and t.month_end is not None:
        period = f" · {t.month_start:%Y-%m-%d} to {t.month_end:%Y-%m-%d}"
    elif t.month_start is not None:
        period = f" · since {t.month_start:%Y-%m-%d}"
    blocks: list[Json] = [
        section(f"*Traffic of {code(truncate(t.name, NAME_CHARS))}* (id {t.server_id}){period}"),
        {
            "type": "section",
            "fields": [
                mrkdwn_text(f"*Received*\n{format_bytes(t.rx_bytes)}"),
                mrkdwn_text(f"*Sent*\n{format_bytes(t.tx_bytes)}"),
                mrkdwn_text(f"*Used*\n{usage_text(t)}"),
            ],
        },
    ]
    percent = t.used_percent
    if percent is not None and percent >= 90:
        blocks.append(
            context([":warning: Close to or over the monthly limit; the panel may throttle it."])
        )
    return blocks


def usage_text(t: TrafficSummary) -> str:
    """`12.3 GiB of 1,000 GB (1.2 %)`, or `12.3 GiB (unlimited)`."""
    return t.usage_text()


def server_ref(name: str, server_id: int) -> str:
    """How a command names the server: its name when it is one safe word, else its id."""
    word = name.strip()
    if word and len(word) <= NAME_CHARS and all(c.isalnum() or c in "-_." for c in word):
        return word
    return str(server_id)


def _ips(addresses: Sequence[str], *, shown: int) -> str:
    text = ", ".join(truncate(a, 45) for a in addresses[:shown])
    if len(addresses) > shown:
        text += f" +{len(addresses) - shown}"
    return escape(text)


def _size_text(cpu: int | None, memory_mb: int | None, disk_gb: int | None) -> str:
    parts = []
    if cpu is not None:
        parts.append(f"{cpu} CPU")
    if memory_mb is not None:
        parts.append(f"{memory_mb:,} MB memory")
    if disk_gb is not None:
        parts.append(f"{disk_gb:,} GB disk")
    return " · ".join(parts)


def _hint(ref: str, *words: str) -> str:
    return code(" ".join((ids.COMMAND, words[0], ref, *words[1:])))


def _is_servers_section(block: Json) -> bool:
    text = block.get("text")
    return (
        block.get("type") == "section"
        and isinstance(text, dict)
        and str(text.get("text", "")).startswith("*Servers*")
    )
