"""Small Block Kit constructors and formatters shared by the builders; pure, no Slack client."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.slack.limits import (
    BUTTON_TEXT_MAX,
    CONFIRM_BUTTON_MAX,
    CONFIRM_TEXT_MAX,
    CONFIRM_TITLE_MAX,
    CONTEXT_ELEMENTS_MAX,
    HEADER_MAX,
    SECTION_MAX,
)
from bot.slack.mrkdwn import plain, truncate

Json = dict[str, object]
"""A JSON-ready Block Kit object."""

NAME_CHARS = 63
"""Longest server name shown (a DNS label)."""
LABEL_CHARS = 40
"""Longest group, hypervisor, state or action label shown."""
NOTE_CHARS = 500
"""Longest free text shown (a reason, a result, the panel's words)."""


def plain_text(text: str, limit: int | None = None) -> Json:
    """A plain_text object; `limit` truncates it."""
    value = plain(text)
    return {
        "type": "plain_text",
        "text": truncate(value, limit) if limit else value,
        "emoji": True,
    }


def mrkdwn_text(text: str, limit: int = SECTION_MAX) -> Json:
    """A mrkdwn text object; the caller escapes user text, this only enforces the length."""
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def header(text: str) -> Json:
    return {"type": "header", "text": plain_text(text, HEADER_MAX)}


def section(text: str, *, block_id: str | None = None) -> Json:
    block: Json = {"type": "section", "text": mrkdwn_text(text)}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def sections(texts: Sequence[str], *, per_section: int, separator: str = "\n") -> list[Json]:
    """The texts in order, `per_section` to a section block (a section's text is bounded)."""
    return [
        section(separator.join(texts[start : start + per_section]))
        for start in range(0, len(texts), per_section)
    ]


def context(texts: Sequence[str], *, block_id: str | None = None) -> Json:
    """A context block of mrkdwn elements (at most 10)."""
    block: Json = {
        "type": "context",
        "elements": [mrkdwn_text(t) for t in texts[:CONTEXT_ELEMENTS_MAX]],
    }
    if block_id is not None:
        block["block_id"] = block_id
    return block


def divider() -> Json:
    return {"type": "divider"}


def confirm_dialog(title: str, text: str, confirm: str, deny: str, *, danger: bool = False) -> Json:
    dialog: Json = {
        "title": plain_text(title, CONFIRM_TITLE_MAX),
        "text": plain_text(text, CONFIRM_TEXT_MAX),
        "confirm": plain_text(confirm, CONFIRM_BUTTON_MAX),
        "deny": plain_text(deny, CONFIRM_BUTTON_MAX),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: Json | None = None,
) -> Json:
    element: Json = {
        "type": "button",
        "text": plain_text(text, BUTTON_TEXT_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def as_utc(at: datetime) -> datetime:
    """`at` in UTC; a naive value is taken to be UTC already (the store writes UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def utc_text(at: datetime) -> str:
    """`2024-05-01 14:30 UTC`."""
    return as_utc(at).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(at: datetime) -> str:
    """A Slack date token shown in the reader's time zone, with UTC text as its fallback."""
    utc = as_utc(at)
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{utc_text(utc)}>"


def duration_text(delta: timedelta) -> str:
    """`2 h 5 min`, `12 min` or `under a minute`."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 server`, `3 servers`."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"
