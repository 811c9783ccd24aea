"""Day-2 operation messages (list, status, traffic, power, VNC, audit, delete approval); pure.

Builders take plain values from `provisioning/ops_model.py` and `now` from the caller; they
never call Slack, the panel or the clock. All user and panel text is escaped; the VNC builder is
the only place a secret is rendered, and only for an ephemeral reply or a DM to the caller.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.provisioning.ops_model import (
    HypervisorGroupRow,
    Operation,
    OperationKind,
    OperationState,
    PowerResult,
    ServerDetail,
    ServerRow,
    TrafficSummary,
    format_bytes,
)
from bot.slack import ids
from bot.slack.blocks._kit import (
    SECTION_MAX,
    VIEW_TEXT_MAX,
    Json,
    as_utc,
    button,
    confirm_dialog,
    context,
    duration_text,
    header,
    mrkdwn_text,
    plain_text,
    plural,
    section,
    slack_date,
    utc_text,
)
from bot.slack.blocks.notice import server_table
from bot.slack.blocks.request import bounded_lines, request_blocks
from bot.slack.blocks.summary import RequestSummary
from bot.slack.mrkdwn import code, escape, mention, truncate
from bot.slack.policy import is_channel_id
from bot.store.records import AuditRecord, RequestState

if TYPE_CHECKING:
    from bot.virtfusion import VncSession

__all__ = [
    "AUDIT_ENTRIES_MAX",
    "DELETE_DELAY_MAX_MIN",
    "HYPERVISOR_GROUPS_MAX",
    "LIST_ROWS_MAX",
    "LIST_ROWS_PER_SECTION",
    "audit_blocks",
    "check_blocks_text",
    "confirm_modal",
    "done_text",
    "format_bytes",
    "hypervisors_blocks",
    "list_page_value",
    "operation_actions",
    "operation_blocks",
    "operation_state_line",
    "operation_text",
    "parse_list_page",
    "power_result_text",
    "request_status_blocks",
    "server_detail_blocks",
    "server_list_blocks",
    "server_ref",
    "server_row_text",
    "traffic_blocks",
    "usage_text",
    "vnc_blocks",
    "vnc_text",
]

LIST_ROWS_MAX = 50
"""Most servers one list message shows; more are reached with the Next page button."""
LIST_ROWS_PER_SECTION = 10
HYPERVISOR_GROUPS_MAX = 100
AUDIT_ENTRIES_MAX = 200
DELETE_DELAY_MAX_MIN = 43800
"""The panel's largest `DELETE /servers/{id}?delay=` in minutes (about 30 days)."""

_BUTTON_VALUE_MAX = 2000
_METADATA_MAX = 3000
_ROW_CHARS = SECTION_MAX // LIST_ROWS_PER_SECTION - 1  # ten lines always fit one section
_NAME_CHARS = 63
_LABEL_CHARS = 40
_FIELD_CHARS = 2000
_NOTE_CHARS = 500
_GROUPS_PER_SECTION = 5
_GROUP_CHARS = SECTION_MAX // _GROUPS_PER_SECTION - 20
_AUDIT_PER_SECTION = 8
_AUDIT_LINE_CHARS = SECTION_MAX // _AUDIT_PER_SECTION - 15
_VNC_VALUE_CHARS = 2000
_CHECK_LINE_CHARS = 400
_IPS_SHOWN = 5
_POWER_WORDS = {  # action -> (noun, past participle)
    "boot": ("Boot", "booted"),
    "shutdown": ("Shutdown", "shut down"),
    "restart": ("Restart", "restarted"),
    "poweroff": ("Power off", "powered off"),
}
_DONE_WORDS = {
    "suspend": "suspended",
    "unsuspend": "unsuspended",
    "backup-plan": "backup plan changed",
    "owner": "owner changed",
    "throttle": "CPU throttle set",
    "delete": "deletion queued",
    "vnc": "VNC changed",
}
_OPERATION_VERBS = {OperationKind.DELETE: "delete"}


# -- /vf list ---------------------------------------------------------------------------------


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
    for start in range(0, len(shown), LIST_ROWS_PER_SECTION):
        chunk = shown[start : start + LIST_ROWS_PER_SECTION]
        blocks.append(section("\n".join(server_row_text(r) for r in chunk)))
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
        code(truncate(row.name, _NAME_CHARS)),
        f"id {row.server_id}",
        escape(truncate(row.state or "?", _LABEL_CHARS)),
        escape(truncate(row.group or "?", _LABEL_CHARS)),
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
    if len(value) > _BUTTON_VALUE_MAX:
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


# -- /vf status -------------------------------------------------------------------------------


def server_detail_blocks(detail: ServerDetail, *, now: datetime) -> list[Json]:
    """`/vf status <server>`: where and what the server is, and the commands that act on it."""
    ref = server_ref(detail.name, detail.server_id)
    state = (
        f"{escape(detail.phase)} · {escape(detail.state)}" if detail.state else escape(detail.phase)
    )
    if detail.suspended:
        state += "\n:double_vertical_bar: suspended"
    fields = [
        f"*Server*\n{code(truncate(detail.name, _NAME_CHARS))} (id {detail.server_id})"
        + (f"\n{escape(truncate(detail.hostname, 100))}" if detail.hostname else ""),
        f"*State*\n{state}",
    ]
    if detail.running is not None:
        fields.append(
            "*Power*\n" + (":large_green_circle: running" if detail.running else ":red_circle: off")
        )
    fields.append(
        f"*Where*\n{escape(truncate(detail.group or '?', _LABEL_CHARS))} · "
        f"{escape(truncate(detail.hypervisor or '?', _LABEL_CHARS))}"
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


# -- /vf traffic ------------------------------------------------------------------------------


def traffic_blocks(t: TrafficSummary) -> list[Json]:
    """`/vf traffic <server>`: this month's received, sent and total bytes against the limit."""
    period = ""
    if t.month_start is not None and t.month_end is not None:
        period = f" · {t.month_start:%Y-%m-%d} to {t.month_end:%Y-%m-%d}"
    elif t.month_start is not None:
        period = f" · since {t.month_start:%Y-%m-%d}"
    blocks: list[Json] = [
        section(f"*Traffic of {code(truncate(t.name, _NAME_CHARS))}* (id {t.server_id}){period}"),
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


# -- short confirmations ----------------------------------------------------------------------


def power_result_text(r: PowerResult) -> str:
    """How a power action ended: done, failed (with the panel's reason) or still running."""
    noun, past = _POWER_WORDS.get(r.action, (escape(r.action).capitalize(), "done"))
    target = f"{code(truncate(r.name, _NAME_CHARS))} (id {r.server_id})"
    task = f" (task {r.queue_id})" if r.queue_id is not None else ""
    if r.failed:
        reason = truncate(escape(r.error), _NOTE_CHARS) if r.error.strip() else "no reason given"
        return f":x: {noun} of {target} failed{task}: {reason}"
    if not r.finished:
        ref = server_ref(r.name, r.server_id)
        return (
            f":hourglass_flowing_sand: {noun} of {target} is queued{task} and was still running "
            f"when vfbot stopped waiting; `{ids.COMMAND} status {ref}` shows how it ends."
        )
    return f":white_check_mark: {target} {past}{task}."


def done_text(action: str, name: str, server_id: int, detail: str = "") -> str:
    """`✅ `web-1` (id 123): suspended.`; `action` is the subcommand (suspend, owner, …)."""
    phrase = _DONE_WORDS.get(action, f"{escape(action)} done")
    text = f":white_check_mark: {code(truncate(name, _NAME_CHARS))} (id {server_id}): {phrase}"
    if detail.strip():
        text += f" — {truncate(escape(detail), _NOTE_CHARS)}"
    return text + "."


# -- /vf vnc ----------------------------------------------------------------------------------


def vnc_blocks(session: VncSession, *, name: str, server_id: int, enabled: bool) -> list[Json]:
    """VNC details for the caller only (ephemeral or DM); no credentials when `enabled` is False.

    The values sit in a preformatted rich-text block: it is shown and copied literally, so a
    password with a backtick, `&` or `<` is not altered the way a mrkdwn code span would be.
    """
    ref = server_ref(name, server_id)
    target = f"{code(truncate(name, _NAME_CHARS))} (id {server_id})"
    if not enabled:
        return [
            section(
                f":lock: VNC is disabled for {target}. "
                f"`{ids.COMMAND} vnc {ref} enable` turns it on again."
            )
        ]
    password = session.password.get_secret_value() if session.password is not None else ""
    url = session.wss_url.get_secret_value() if session.wss_url is not None else ""
    rows = [
        ("Host", session.hostname or "-"),
        ("IP", session.ip or "-"),
        ("Port", str(session.port) if session.port is not None else "-"),
        ("Password", password or "(the panel gave none)"),
        ("URL", url or "-"),
    ]
    listing = "\n".join(f"{label:<9}{value[:_VNC_VALUE_CHARS]}" for label, value in rows)
    return [
        section(f":desktop_computer: VNC console of {target} is enabled."),
        {
            "type": "rich_text",
            "elements": [
                {
                    "type": "rich_text_preformatted",
                    "elements": [{"type": "text", "text": listing}],
                }
            ],
        },
        context(
            [
                ":lock: Only you can see this. vfbot does not store it. "
                f"`{ids.COMMAND} vnc {ref} disable` closes the console when you are done."
            ]
        ),
    ]


def vnc_text(*, name: str, server_id: int, enabled: bool) -> str:
    """Fallback text of the VNC reply; never any credential."""
    state = "enabled (details below, only for you)" if enabled else "disabled"
    return f"VNC of {code(truncate(name, _NAME_CHARS))} (id {server_id}) is {state}."


# -- /vf hypervisors and /vf check ------------------------------------------------------------


def hypervisors_blocks(rows: Sequence[HypervisorGroupRow]) -> list[Json]:
    """Hypervisor groups with free memory, disk and IPv4, and their hypervisors."""
    blocks: list[Json] = [header(f"Hypervisor groups ({len(rows):,})")]
    if not rows:
        blocks.append(section("The panel shows no hypervisor groups to vfbot's API token."))
        return blocks
    shown = rows[:HYPERVISOR_GROUPS_MAX]
    for start in range(0, len(shown), _GROUPS_PER_SECTION):
        chunk = shown[start : start + _GROUPS_PER_SECTION]
        blocks.append(section("\n\n".join(_group_text(g) for g in chunk)))
    if len(rows) > len(shown):
        blocks.append(context([f"and {plural(len(rows) - len(shown), 'more group')} — "
                               "`vfbot hypervisors` lists them all"]))  # fmt: skip
    return blocks


def check_blocks_text(steps: Sequence[tuple[str, bool, str]]) -> str:
    """`/vf check`: a headline and one ✓/✗ line per (name, ok, detail) step."""
    if not steps:
        return "*Panel check*: no checks ran."
    failed = sum(1 for _, ok, _ in steps if not ok)
    if failed:
        head = f":x: *Panel check*: {failed} of {plural(len(steps), 'check')} failed"
    else:
        head = f":white_check_mark: *Panel check*: all {plural(len(steps), 'check')} passed"
    lines = [
        truncate(
            f"{'✓' if ok else '✗'} *{escape(name)}*" + (f": {escape(detail)}" if detail else ""),
            _CHECK_LINE_CHARS,
        )
        for name, ok, detail in steps
    ]
    body = bounded_lines(
        lines,
        max_lines=len(lines),
        budget=SECTION_MAX - len(head) - 1,
        more=lambda n: f"_and {plural(n, 'more check')} — `vfbot check` shows all_",
    )
    return f"{head}\n{body}"


# -- /vf audit --------------------------------------------------------------------------------


def audit_blocks(entries: Sequence[AuditRecord], *, now: datetime) -> list[Json]:
    """`/vf audit [n]`: who did what to which target, with what result and when (as given)."""
    blocks: list[Json] = [header("Audit log")]
    if not entries:
        blocks.append(section("_Nothing recorded yet._"))
        return blocks
    shown = entries[:AUDIT_ENTRIES_MAX]
    for start in range(0, len(shown), _AUDIT_PER_SECTION):
        chunk = shown[start : start + _AUDIT_PER_SECTION]
        blocks.append(section("\n".join(_audit_line(e) for e in chunk)))
    note = f"{plural(len(shown), 'entry', 'entries')} · as of {slack_date(now)}"
    if len(entries) > len(shown):
        note += f" · {len(entries) - len(shown):,} older not shown"
    blocks.append(context([note]))
    return blocks


# -- confirmation modal -----------------------------------------------------------------------


def confirm_modal(
    *,
    title: str,
    text: str,
    action: str,
    metadata: str,
    confirm_label: str,
    danger: bool,
) -> Json:
    """A modal asking to confirm `text` (escaped); for `action == "delete"` an optional delay.

    `metadata` becomes `private_metadata` unchanged, so it should name the action and server.
    The delay input is `ids.B_DELAY` (block and action id), a whole number of minutes.
    Raises ValueError when `metadata` is over Slack's 3000 characters.
    """
    if len(metadata) > _METADATA_MAX:
        raise ValueError(f"metadata is {len(metadata)} chars; Slack allows {_METADATA_MAX}")
    blocks: list[Json] = [section((":warning: " if danger else "") + escape(text))]
    if action == "delete":
        blocks.append(
            {
                "type": "input",
                "block_id": ids.B_DELAY,
                "optional": True,
                "label": plain_text(f"Delay (minutes, 0 to {DELETE_DELAY_MAX_MIN})"),
                "hint": plain_text(
                    "0 deletes at once; otherwise the panel waits this long, e.g. 1440 = a day."
                ),
                "element": {
                    "type": "number_input",
                    "action_id": ids.B_DELAY,
                    "is_decimal_allowed": False,
                    "min_value": "0",
                    "max_value": str(DELETE_DELAY_MAX_MIN),
                    "initial_value": "0",
                },
            }
        )
    return {
        "type": "modal",
        "callback_id": ids.CONFIRM_VIEW,
        "title": plain_text(title, VIEW_TEXT_MAX),
        "submit": plain_text(confirm_label, VIEW_TEXT_MAX),
        "close": plain_text("Cancel"),
        "private_metadata": metadata,
        "blocks": blocks,
    }


# -- operations needing approval (delete) -----------------------------------------------------


def operation_blocks(op: Operation, *, now: datetime) -> list[Json]:
    """The channel message of an operation; Approve and Reject only while it is pending."""
    verb = _OPERATION_VERBS.get(op.kind, op.kind.value)
    blocks: list[Json] = [
        header(f"{op.human_id} · {verb} {op.server_name}"),
        section(_operation_what(op)),
        section(operation_state_line(op, now=now)),
    ]
    actions = operation_actions(op)
    if actions is not None:
        blocks.append(actions)
    return blocks


def operation_text(op: Operation) -> str:
    """Fallback text of the operation message; UTC dates."""
    verb = _OPERATION_VERBS.get(op.kind, op.kind.value)
    return truncate(
        f"{op.human_id}: {mention(op.requester)} asks to {verb} "
        f"{code(truncate(op.server_name, _NAME_CHARS))} (id {op.server_id}). "
        + operation_state_line(op, now=None, when=utc_text),
        SECTION_MAX,
    )


def operation_actions(op: Operation) -> Json | None:
    """The Approve/Reject actions block of a pending operation, else None (nothing to click)."""
    if op.state is not OperationState.PENDING_APPROVAL:
        return None
    value = str(op.id)
    verb = _OPERATION_VERBS.get(op.kind, op.kind.value)
    delay = _delay_min(op)
    when = f" after a delay of {delay} min" if delay else ""
    confirm = confirm_dialog(
        f"{verb.capitalize()} {op.server_name}?",
        f"vfbot will {verb} server {op.server_name} (id {op.server_id}) on the panel{when}. "
        "This cannot be undone.",
        f"{verb.capitalize()} it",
        "Cancel",
        danger=True,
    )
    return {
        "type": "actions",
        "elements": [
            button("Approve", ids.DELETE_APPROVE, value, style="primary", confirm=confirm),
            button("Reject", ids.DELETE_REJECT, value, style="danger"),
        ],
    }


def operation_state_line(
    op: Operation, *, now: datetime | None, when: Callable[[datetime], str] = slack_date
) -> str:
    """Where the operation stands, e.g. `Waiting for approval (expires …)`; `when` renders dates."""
    by = mention(op.decided_by) if op.decided_by else "someone"
    at = f" at {when(op.decided_at)}" if op.decided_at else ""
    approved = ""
    if op.decided_by:
        # The service records "approved by the requester, no expiry" when none was needed.
        unasked = op.decided_by == op.requester and op.expires_at is None
        approved = "\nNo approval was needed" if unasked else f"\nApproved by {by}{at}"
    state = op.state
    if state is OperationState.PENDING_APPROVAL:
        line = ":hourglass_flowing_sand: *Waiting for approval*"
        if op.expires_at is not None:
            left = ""
            if now is not None:
                delta = as_utc(op.expires_at) - as_utc(now)
                left = f", in {duration_text(delta)}" if delta.total_seconds() > 0 else ", now"
            line += f" (expires {when(op.expires_at)}{left})"
        return line
    if state is OperationState.APPROVED:
        return f":white_check_mark: *Approved*: starting{approved}"
    if state is OperationState.RUNNING:
        return f":gear: *In progress*: vfbot is asking the panel{approved}"
    if state is OperationState.DONE:
        result = truncate(escape(op.result), _NOTE_CHARS) if op.result else "done"
        return f":white_check_mark: *Done*: {result}{approved}"
    if state is OperationState.FAILED:
        result = truncate(escape(op.result), _NOTE_CHARS) if op.result else "no reason recorded"
        return f":x: *Failed*: {result}{approved}"
    if state is OperationState.REJECTED:
        note = op.decision_note
        reason = f": {truncate(escape(note), _NOTE_CHARS)}" if note and note.strip() else ""
        return f":no_entry: *Rejected* by {by}{reason}"
    if state is OperationState.EXPIRED:  # every state has a branch: mypy flags a new one
        on = f" on {when(op.expires_at)}" if op.expires_at else ""
        return f":hourglass: *Expired*: nobody approved it in time{on}; nothing was changed"


def server_ref(name: str, server_id: int) -> str:
    """How a command names the server: its name when it is one safe word, else its id."""
    word = name.strip()
    if word and len(word) <= _NAME_CHARS and all(c.isalnum() or c in "-_." for c in word):
        return word
    return str(server_id)


# -- helpers ----------------------------------------------------------------------------------


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


def _group_text(group: HypervisorGroupRow) -> str:
    title = f"*{escape(truncate(group.name, _LABEL_CHARS))}* (group {group.group_id})"
    if not group.enabled:
        title += " · :no_entry_sign: disabled"
    lines = [
        title,
        f"Free: {group.memory_free_mb:,} MB memory · {group.storage_free_gb:,} GB disk · "
        + plural(group.ipv4_free, "IPv4 address", "IPv4 addresses"),
    ]
    if group.hypervisors:
        names = ", ".join(truncate(h, _LABEL_CHARS) for h in group.hypervisors[:8])
        more = f" +{len(group.hypervisors) - 8}" if len(group.hypervisors) > 8 else ""
        lines.append(f"Hypervisors: {escape(names)}{more}")
    if group.maintenance:
        names = ", ".join(truncate(h, _LABEL_CHARS) for h in group.maintenance[:5])
        lines.append(f":construction: In maintenance: {escape(names)}")
    return truncate("\n".join(lines), _GROUP_CHARS)


def _audit_line(entry: AuditRecord) -> str:
    parts = [
        slack_date(entry.at),
        mention(truncate(entry.actor, 40)),
        code(truncate(entry.action, _LABEL_CHARS)),
        escape(truncate(entry.target, 60)) if entry.target else "-",
        escape(truncate(entry.result, 30)) if entry.result else "-",
    ]
    line = "• " + " · ".join(parts)
    if entry.detail:
        pairs = ", ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
            for key, value in entry.detail.items()
        )
        line += " — " + escape(truncate(pairs, 120))
    return truncate(line, _AUDIT_LINE_CHARS)


def _delay_min(op: Operation) -> int:
    value = op.params.get("delay_min")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _operation_what(op: Operation) -> str:
    verb = _OPERATION_VERBS.get(op.kind, op.kind.value)
    text = (
        f":wastebasket: {mention(op.requester)} asks to {verb} "
        f"{code(truncate(op.server_name, _NAME_CHARS))} (id {op.server_id})"
    )
    if op.request_id is not None:
        text += f", a server of VF-{op.request_id}"
    delay = _delay_min(op)
    text += "\n*When*: " + (
        f"{delay:,} min after approval ({duration_text(timedelta(minutes=delay))})"
        if delay
        else "at once after approval"
    )
    if op.created_at is not None:
        text += f"\n*Asked*: {slack_date(op.created_at)}"
    return text
