"""Usage text for `/vf help` and unknown subcommands; pure strings."""

from __future__ import annotations

from bot.slack import ids
from bot.slack.mrkdwn import code, escape

__all__ = ["COMMANDS", "DAY2_COMMANDS", "help_text", "unknown_command_text"]

_CMD = ids.COMMAND

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("create", "open the form to request new servers", f"{_CMD} create"),
    (
        "create {json}",
        "submit a whole request as JSON in one go",
        f'{_CMD} create {{"project_name": "web-shop", "instances": [{{"name": "web", '
        '"template": "ubuntu-22.04"}]}',
    ),
    ("help", "show this help", f"{_CMD} help"),
)
"""(usage, what it does, example) for the commands that work today."""

DAY2_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("list", "list your requests and servers", f"{_CMD} list"),
    ("status", "show a request or a server", f"{_CMD} status VF-12"),
    ("delete", "delete a server (asks to confirm)", f"{_CMD} delete web-1"),
    ("suspend", "suspend a server", f"{_CMD} suspend web-1"),
    ("unsuspend", "lift a suspension", f"{_CMD} unsuspend web-1"),
    ("power", "start, stop, restart or power off a server", f"{_CMD} power web-1 restart"),
    ("traffic", "show a server's traffic this month", f"{_CMD} traffic web-1"),
    ("vnc", "get a console link for a server", f"{_CMD} vnc web-1"),
    ("backup-plan", "set a server's backup plan", f"{_CMD} backup-plan web-1 2"),
    ("owner", "change a server's owner", f"{_CMD} owner web-1 42"),
    ("throttle", "limit a server's bandwidth", f"{_CMD} throttle web-1 100"),
    ("hypervisors", "list hypervisor groups and free capacity", f"{_CMD} hypervisors"),
    ("check", "check the connection to the panel", f"{_CMD} check"),
    ("audit", "show who did what recently", f"{_CMD} audit VF-12"),
)
"""(usage, what it does, example) for the day-2 commands; listed as coming soon."""


def help_text() -> str:
    """The `/vf help` message (mrkdwn)."""
    lines = [f"*{_CMD}: VirtFusion servers from Slack*", ""]
    lines += [_usage_line(*command) for command in COMMANDS]
    lines += ["", "*Coming soon*"]
    lines += [_usage_line(*command) for command in DAY2_COMMANDS]
    lines += [
        "",
        "Requests are checked against the panel and planned first; an approver then approves "
        "or rejects them, and progress is posted in the request's thread.",
    ]
    return "\n".join(lines)


def unknown_command_text(word: str, suggestion: str | None) -> str:
    """`Unknown subcommand `x`. Did you mean `/vf create`?`, with the word made safe."""
    text = f"Unknown subcommand {code(word)}."
    if suggestion:
        text += f" Did you mean `{_CMD} {escape(suggestion.replace('`', ''))}`?"
    return text + f" Try `{_CMD} help`."


def _usage_line(usage: str, what: str, example: str) -> str:
    return f"• `{_CMD} {usage}`: {what}. Example: {code(example)}"
