"""Replies to day-2 changes (power, suspend, owner, …), the VNC details, and the confirmation
modal; pure. The VNC builder is the only place a secret is rendered, and only for an ephemeral
reply to the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.provisioning.servers.deletes import MAX_DELETE_DELAY_MIN
from bot.provisioning.servers.model import PowerResult
from bot.slack import ids
from bot.slack.blocks._kit import NAME_CHARS, NOTE_CHARS, Json, context, plain_text, section
from bot.slack.blocks.servers import server_ref
from bot.slack.limits import METADATA_MAX, VIEW_TEXT_MAX
from bot.slack.mrkdwn import code, escape, truncate

if TYPE_CHECKING:
    from bot.virtfusion import VncSession

__all__ = ["confirm_modal", "done_text", "power_result_text", "vnc_blocks", "vnc_text"]

_VNC_VALUE_CHARS = 2000
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
    "rename": "renamed",
    "firewall": "firewall changed",
}


def power_result_text(r: PowerResult) -> str:
    """How a power action ended: done, failed (with the panel's reason) or still running."""
    noun, past = _POWER_WORDS.get(r.action, (escape(r.action).capitalize(), "done"))
    target = f"{code(truncate(r.name, NAME_CHARS))} (id {r.server_id})"
    task = f" (task {r.queue_id})" if r.queue_id is not None else ""
    if r.failed:
        reason = truncate(escape(r.error), NOTE_CHARS) if r.error.strip() else "no reason given"
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
    text = f":white_check_mark: {code(truncate(name, NAME_CHARS))} (id {server_id}): {phrase}"
    if detail.strip():
        text += f" — {truncate(escape(detail), NOTE_CHARS)}"
    return text + "."


def vnc_blocks(session: VncSession, *, name: str, server_id: int, enabled: bool) -> list[Json]:
    """VNC details for the caller only (ephemeral or DM); no credentials when `enabled` is False.

    The values sit in a preformatted rich-text block: it is shown and copied literally, so a
    password with a backtick, `&` or `<` is not altered the way a mrkdwn code span would be.
    """
    ref = server_ref(name, server_id)
    target = f"{code(truncate(name, NAME_CHARS))} (id {server_id})"
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
    return f"VNC of {code(truncate(name, NAME_CHARS))} (id {server_id}) is {state}."


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
    if len(metadata) > METADATA_MAX:
        raise ValueError(f"metadata is {len(metadata)} chars; Slack allows {METADATA_MAX}")
    blocks: list[Json] = [section((":warning: " if danger else "") + escape(text))]
    if action == "delete":
        blocks.append(
            {
                "type": "input",
                "block_id": ids.B_DELAY,
                "optional": True,
                "label": plain_text(f"Delay (minutes, 0 to {MAX_DELETE_DELAY_MIN})"),
                "hint": plain_text(
                    "0 deletes at once; otherwise the panel waits this long, e.g. 1440 = a day."
                ),
                "element": {
                    "type": "number_input",
                    "action_id": ids.B_DELAY,
                    "is_decimal_allowed": False,
                    "min_value": "0",
                    "max_value": str(MAX_DELETE_DELAY_MIN),
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
