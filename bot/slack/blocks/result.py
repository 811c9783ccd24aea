"""A one-message modal: what happened to a submitted form (planning, refused, posted)."""

from __future__ import annotations

from bot.slack import ids

__all__ = ["result_modal"]


def result_modal(text: str) -> dict[str, object]:
    """A modal with a title, one mrkdwn section and a Close button; `text` is already mrkdwn."""
    return {
        "type": "modal",
        "callback_id": ids.CREATE_VIEW + "_result",
        "title": {"type": "plain_text", "text": "New servers"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}],
    }
