"""A one-message modal: what happened to a submitted form (planning, refused, posted)."""

from __future__ import annotations

from bot.slack import ids
from bot.slack.limits import SECTION_MAX

__all__ = ["result_modal"]


def result_modal(
    text: str, *, external_id: str | None = None, final: bool = True
) -> dict[str, object]:
    """A modal with a title, one mrkdwn section and a close button; `text` is already mrkdwn.

    Pushed over the create form while it is being planned: `final` (the request is posted)
    closes every view, otherwise the button goes back to the form, as the user filled it in.
    """
    view: dict[str, object] = {
        "type": "modal",
        "callback_id": ids.CREATE_VIEW + "_result",
        "title": {"type": "plain_text", "text": "New servers"},
        "close": {"type": "plain_text", "text": "Close" if final else "Back to the form"},
        "clear_on_close": final,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_MAX]}}],
    }
    if external_id is not None:
        view["external_id"] = external_id
    return view
