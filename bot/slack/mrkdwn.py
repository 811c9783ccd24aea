"""Make untrusted text safe for Slack mrkdwn; pure string functions, no Slack client."""

from __future__ import annotations

import re

__all__ = ["ELLIPSIS", "code", "escape", "mention", "plain", "truncate"]

ELLIPSIS = "…"

# Slack's formatting reference: only these three are control characters in mrkdwn and `text`;
# escaping them stops `<!channel>`, `<@U1>` and `<https://x|label>` typed by a user from working.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# plain_text is not parsed by Slack, but keeping brackets out means no output string ever
# carries a control sequence that came from user text.
_PLAIN = str.maketrans({"<": "\u2039", ">": "\u203a"})  # single angle quotation marks
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` so the text renders literally in mrkdwn."""
    return text.translate(_ESCAPES)


def plain(text: str) -> str:
    """Text for a plain_text object with angle brackets replaced by look-alikes."""
    return text.translate(_PLAIN)


def mention(user_id: str) -> str:
    """A `<@U…>` mention for a Slack user id, or the escaped text when it is not one."""
    if _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape(user_id)


def code(text: str) -> str:
    """Inline code that cannot be broken out of: escaped, backticks and line breaks removed."""
    cleaned = " ".join(text.replace("`", "").split())
    return f"`{escape(cleaned)}`" if cleaned else "` `"


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut.

    The cut never splits an `&amp;`-style entity or a `<…>` Slack token, so escaped text stays
    valid. Raises ValueError when `limit` is below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        cut = cut[:opened]
    entity = _ENTITY_TAIL.search(cut)
    if entity is not None:
        cut = cut[: entity.start()]
    return cut.rstrip() + ELLIPSIS
