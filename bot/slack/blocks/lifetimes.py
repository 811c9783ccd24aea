"""Server lifetimes in Slack: the reminder with Extend / Delete now / Keep, the lines of expiry
milestones and notices, and the list of servers expiring soon; pure.

The reminder's controls carry the instance id (`Extend`: `<instance id>:<seconds>`); the click
is checked again by its listener (`bot.slack.listeners.lifetimes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.provisioning import events as ev
from bot.provisioning.lifetimes import format_duration
from bot.provisioning.servers.expiry import Expiring
from bot.slack import ids
from bot.slack.blocks._kit import (
    Json,
    button,
    confirm_dialog,
    context,
    duration_text,
    plain_text,
    section,
    slack_date,
)
from bot.slack.limits import MESSAGE_BLOCKS_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = [
    "expired_notice",
    "expiring_blocks",
    "expiry_line",
    "expiry_milestone_text",
    "expiry_warning",
    "extend_value",
    "parse_extend_value",
    "settled_reminder",
]

_ACTION_WORDS = {
    "delete": "it will be deleted",
    "suspend": "it will be suspended",
    "notify": "you will be told (nothing is changed)",
}
_LIST_MAX = 40  # servers listed; more are counted


def expiry_line(expires_at: datetime | None, now: datetime) -> str:
    """`expires <date> (in 3 h 5 min)`, `expired <date>`, or `never expires`."""
    if expires_at is None:
        return "never expires"
    left = expires_at - now
    if left.total_seconds() <= 0:
        return f"expired {slack_date(expires_at)}"
    return f"expires {slack_date(expires_at)} (in {duration_text(left)})"


def extend_value(instance_id: int, seconds: int) -> str:
    return f"{instance_id}:{seconds}"


def parse_extend_value(value: str) -> tuple[int, int] | None:
    """(instance id, seconds) of an Extend option, or None when it is not one of ours."""
    left, _, right = value.partition(":")
    if not (left.isascii() and left.isdigit() and right.isascii() and right.isdigit()):
        return None
    return int(left), int(right)


def expiry_warning(
    event: ev.InstanceExpiryWarning,
    *,
    instance_id: int,
    human_id: str,
    choices: Sequence[int],
    now: datetime,
) -> tuple[str, list[Json]]:
    """The reminder (thread reply and DM): when, what happens then, and the three controls."""
    name = code(truncate(event.name or "server", 63))
    server = f" (server {event.server_id})" if event.server_id is not None else ""
    then = _ACTION_WORDS.get(event.action, "its lifetime ends")
    when = expiry_line(event.expires_at, now)
    text = f":alarm_clock: {name}{server} of {human_id} {when}: {then}."
    options = [
        {
            "text": plain_text(f"Extend by {format_duration(seconds)}"),
            "value": extend_value(instance_id, seconds),
        }
        for seconds in choices
    ]
    delete = button(
        "Delete now",
        ids.EXPIRY_DELETE,
        str(instance_id),
        style="danger",
        confirm=confirm_dialog(
            "Delete the server?",
            f"Delete {event.name}{server} now? This cannot be undone.",
            "Delete",
            "Keep it for now",
            danger=True,
        ),
    )
    keep = button("Keep (admins)", ids.EXPIRY_KEEP, str(instance_id))
    extend: Json = {
        "type": "static_select",
        "action_id": ids.EXPIRY_EXTEND,
        "placeholder": plain_text("Extend…"),
        "options": options,
    }
    blocks: list[Json] = [
        section(text),
        {"type": "actions", "block_id": ids.EXPIRY_ACTIONS, "elements": [extend, delete, keep]},
        context([f"Or `{ids.COMMAND} extend {escape(event.name)} 1d`. Keep removes the expiry."]),
    ]
    return text, blocks


def settled_reminder(blocks: Sequence[Json], outcome: str) -> list[Json]:
    """A clicked reminder as it stays: its own text, `outcome` (mrkdwn, e.g. who extended it to
    when) in place of its controls, so nobody picks from a choice that no longer holds."""
    kept = [
        block
        for block in blocks
        if block.get("type") == "section" and block.get("block_id") != ids.EXPIRY_ACTIONS
    ]
    return [*kept[:1], context([truncate(outcome, 2000)])]


def expiry_milestone_text(event: ev.InstanceEvent) -> str | None:
    """The thread line of an expiry milestone, or None for other events."""
    name = code(truncate(event.name.strip() or "server", 63))
    if isinstance(event, ev.InstanceExpiryWarning):
        return None  # posted on its own, with its controls (`expiry_warning`)
    if isinstance(event, ev.InstanceExpiryChanged):
        if event.expires_at is None:
            return f":pushpin: {name} kept by {mention(event.by)}: it no longer expires"
        return (
            f":hourglass: {name} extended by {mention(event.by)} to {slack_date(event.expires_at)}"
        )
    if isinstance(event, ev.InstanceExpired):
        result = escape(truncate(event.result, 600))
        return f":hourglass_flowing_sand: {name}: lifetime ended. {result}"
    return None


def expired_notice(event: ev.InstanceExpired, human_id: str) -> str:
    """The channel notice of an expiry: what happened, to whom it belonged."""
    name = code(truncate(event.name or "server", 63))
    who = f" (requested by {mention(event.requester)})" if event.requester else ""
    verb = {
        ("delete", "done"): "was deleted",
        ("delete", "gone"): "was already gone",
        ("suspend", "done"): "was suspended",
        ("suspend", "gone"): "was already gone",
        ("notify", "done"): "reached the end of its lifetime",
    }.get((event.action, event.outcome), "reached the end of its lifetime")
    if event.outcome == "untouched":
        verb = "reached the end of its lifetime but belongs to another owner now: untouched"
    elif event.outcome == "failed":
        verb = f"could not be {event.action}d: {escape(truncate(event.result, 400))}"
    return f":hourglass_flowing_sand: {name} of {human_id}{who} {verb}."


def expiring_blocks(rows: Sequence[Expiring], now: datetime, *, title: str) -> list[Json]:
    """A list of servers expiring soon, soonest first (the Home tab and `/vf expiring`)."""
    if not rows:
        return [section(f"*{escape(title)}*\nNothing expires in that time.")]
    lines = [
        f"• {code(truncate(row.instance.name, 63))} (server {row.instance.server_id}, "
        f"{row.instance.human_request_id}"
        + (f", {mention(row.requester)}" if row.requester else "")
        + f"): {expiry_line(row.expires_at, now)}"
        for row in rows[:_LIST_MAX]
    ]
    more = len(rows) - _LIST_MAX
    blocks = [section(f"*{escape(title)}*")]
    # Ten lines a section keeps every section well within its 3,000 characters.
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start : start + 10])))
    if more > 0:
        blocks.append(context([f"…and {more} more."]))
    return blocks[:MESSAGE_BLOCKS_MAX]
