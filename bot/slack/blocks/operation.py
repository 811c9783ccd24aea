"""The channel message of a day-2 operation (a delete or resize waiting for approval, and every
rebuild), its states, and the milestones a rebuild posts in its thread; pure. The notifier posts
it and rewrites it as the operation is decided and carried out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.provisioning import events as ev
from bot.provisioning.model import Operation, OperationKind, OperationState
from bot.slack import ids
from bot.slack.blocks._kit import (
    NAME_CHARS,
    NOTE_CHARS,
    Json,
    as_utc,
    button,
    confirm_dialog,
    duration_text,
    header,
    section,
    slack_date,
    utc_text,
)
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = [
    "operation_actions",
    "operation_blocks",
    "operation_milestone_text",
    "operation_state_line",
    "operation_text",
]

_OPERATION_VERBS = {
    OperationKind.DELETE: "delete",
    OperationKind.REBUILD: "rebuild",
    OperationKind.RESIZE: "resize",
}
_ICONS = {
    OperationKind.DELETE: ":wastebasket:",
    OperationKind.REBUILD: ":recycle:",
    OperationKind.RESIZE: ":straight_ruler:",
}
# What the approver's confirmation says will happen, after "vfbot will <verb> server X".
_CONSEQUENCES = {
    OperationKind.DELETE: "This cannot be undone.",
    OperationKind.REBUILD: "Its OS is reinstalled and its disk erased.",
    OperationKind.RESIZE: "It may need a restart to apply.",
}


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
        f"{code(truncate(op.server_name, NAME_CHARS))} (id {op.server_id}). "
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
        + _CONSEQUENCES.get(op.kind, ""),
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
    if state is OperationState.BUILDING:
        return f":gear: *Installing*: the panel is rebuilding the server{approved}"
    if state is OperationState.DONE:
        result = truncate(escape(op.result), NOTE_CHARS) if op.result else "done"
        return f":white_check_mark: *Done*: {result}{approved}"
    if state is OperationState.FAILED:
        result = truncate(escape(op.result), NOTE_CHARS) if op.result else "no reason recorded"
        return f":x: *Failed*: {result}{approved}"
    if state is OperationState.REJECTED:
        note = op.decision_note
        reason = f": {truncate(escape(note), NOTE_CHARS)}" if note and note.strip() else ""
        return f":no_entry: *Rejected* by {by}{reason}"
    if state is OperationState.EXPIRED:  # every state has a branch: mypy flags a new one
        on = f" on {when(op.expires_at)}" if op.expires_at else ""
        return f":hourglass: *Expired*: nobody approved it in time{on}; nothing was changed"


def _operation_what(op: Operation) -> str:
    verb = _OPERATION_VERBS.get(op.kind, op.kind.value)
    text = (
        f"{_ICONS.get(op.kind, ':gear:')} {mention(op.requester)} asks to {verb} "
        f"{code(truncate(op.server_name, NAME_CHARS))} (id {op.server_id})"
    )
    if op.request_id is not None:
        text += f", a server of VF-{op.request_id}"
    change = _change_text(op)
    if change:
        text += f"\n*Change*: {truncate(escape(change), NOTE_CHARS)}"
    delay = _delay_min(op)
    if op.kind is OperationKind.DELETE:
        text += "\n*When*: " + (
            f"{delay:,} min after approval ({duration_text(timedelta(minutes=delay))})"
            if delay
            else "at once after approval"
        )
    if op.created_at is not None:
        text += f"\n*Asked*: {slack_date(op.created_at)}"
    return text


def _change_text(op: Operation) -> str:
    """What a rebuild installs or a resize changes, from the stored parameters (plain text)."""
    params = op.params
    if op.kind is OperationKind.REBUILD:
        template = params.get("template")
        keys = params.get("ssh_key_ids")
        count = len(keys) if isinstance(keys, list) else 0
        kept = f"{count} SSH key{'s' if count != 1 else ''} kept" if count else "no SSH key"
        return f"reinstall {template}, {kept}; the disk is erased" if template else ""
    summary = params.get("summary")
    return summary if op.kind is OperationKind.RESIZE and isinstance(summary, str) else ""


def operation_milestone_text(op: Operation, event: ev.Event) -> str | None:
    """The thread reply of one step of a rebuild (mrkdwn), or None for a step without one.

    Only rebuilds have a thread: they take minutes and end on their own, like a create's build.
    """
    if op.kind is not OperationKind.REBUILD:
        return None
    if isinstance(event, ev.OperationDecided):
        if event.state == OperationState.APPROVED.value:
            return f":white_check_mark: Approved by {mention(event.by)}; sending it to the panel."
        if event.state == OperationState.REJECTED.value:
            return f":no_entry: Rejected by {mention(event.by)}; nothing was changed."
        return ":hourglass: Expired: nobody approved it in time; nothing was changed."
    if isinstance(event, ev.OperationStarted):
        detail = truncate(escape(event.detail), NOTE_CHARS)
        return f":gear: The panel is installing the server: {detail}."
    if isinstance(event, ev.OperationFinished):
        result = truncate(escape(event.result), NOTE_CHARS) if event.result else event.state
        icon = ":white_check_mark:" if event.state == OperationState.DONE.value else ":x:"
        return f"{icon} {result}"
    return None


def _delay_min(op: Operation) -> int:
    value = op.params.get("delay_min")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
