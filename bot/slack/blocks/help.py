"""Usage text for `/vf help` and unknown subcommands; pure strings."""

from __future__ import annotations

from typing import NamedTuple

from bot.slack import ids
from bot.slack.mrkdwn import code, escape

__all__ = ["COMMANDS", "DAY2_COMMANDS", "Usage", "help_text", "unknown_command_text"]

_CMD = ids.COMMAND


class Usage(NamedTuple):
    """One subcommand in the help: its name, what it does, an example and its arguments."""

    name: str
    what: str
    example: str
    args: str = ""


COMMANDS: tuple[Usage, ...] = (
    Usage("create", "open the form to request new servers", f"{_CMD} create"),
    Usage(
        "create {json}",
        "submit a whole request as JSON in one go",
        f'{_CMD} create {{"project_name": "web-shop", "instances": [{{"name": "web", '
        '"template": "ubuntu-22.04"}]}',
    ),
    Usage("help", "show this help", f"{_CMD} help"),
)
"""Creating servers, and this help."""

DAY2_COMMANDS: tuple[Usage, ...] = (
    Usage("list", "list servers: yours, all of the vfbot owner (admins), or one request's",
          f"{_CMD} list all", "[mine|all|VF-n]"),
    Usage("status", "show one request or one server", f"{_CMD} status web-1", "<server|VF-n>"),
    Usage("delete", "delete a server after you confirm; may need approval, optional delay",
          f"{_CMD} delete web-1 60", "<server> [delay-minutes]"),
    Usage("suspend", "suspend a server (asks to confirm)", f"{_CMD} suspend web-1", "<server>"),
    Usage("unsuspend", "lift a suspension", f"{_CMD} unsuspend web-1", "<server>"),
    Usage("power", "boot, shut down, restart or power off (all but boot ask to confirm)",
          f"{_CMD} power web-1 restart", "<server> boot|shutdown|restart|poweroff"),
    Usage("traffic", "show a server's traffic this month", f"{_CMD} traffic web-1", "<server>"),
    Usage("vnc", "turn the VNC console on (details only to you) or off",
          f"{_CMD} vnc web-1 enable", "<server> enable|disable"),
    Usage("backup-plan", "set or remove a server's backup plan", f"{_CMD} backup-plan web-1 2",
          "<server> <plan-id|none>"),
    Usage("owner", "give a server to another VirtFusion user (admins)", f"{_CMD} owner web-1 42",
          "<server> <user-id>"),
    Usage("throttle", "limit a server's CPU, in percent (0 = no limit)",
          f"{_CMD} throttle web-1 50", "<server> <0-99>"),
    Usage("hypervisors", "list hypervisor groups and their free capacity", f"{_CMD} hypervisors"),
    Usage("check", "check the connection to the panel", f"{_CMD} check"),
    Usage("audit", "show who did what recently (admins)", f"{_CMD} audit 50", "[n]"),
)  # fmt: skip
"""Day-2 operations on existing servers; `<server>` is a name or a VirtFusion server id."""


def help_text() -> str:
    """The `/vf help` message (mrkdwn)."""
    lines = [f"*{_CMD}: VirtFusion servers from Slack*", ""]
    lines += [_usage_line(command) for command in COMMANDS]
    lines += ["", "*Your servers*"]
    lines += [_usage_line(command) for command in DAY2_COMMANDS]
    lines += [
        "",
        "Requests are checked against the panel and planned first; an approver then approves "
        "or rejects them, and progress is posted in the request's thread. `&lt;server&gt;` is a "
        "server's name or id. The Home tab shows your requests and what waits for approval.",
    ]
    return "\n".join(lines)


def unknown_command_text(word: str, suggestion: str | None) -> str:
    """`Unknown subcommand `x`. Did you mean `/vf create`?`, with the word made safe."""
    text = f"Unknown subcommand {code(word)}."
    if suggestion:
        text += f" Did you mean `{_CMD} {escape(suggestion.replace('`', ''))}`?"
    return text + f" Try `{_CMD} help`."


def _usage_line(command: Usage) -> str:
    args = f" {escape(command.args)}" if command.args else ""
    return f"• `{_CMD} {command.name}`{args}: {command.what}. Example: {code(command.example)}"
