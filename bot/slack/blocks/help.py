"""Usage text for `/vf help` and unknown subcommands; pure strings (the subcommands themselves
are listed in ``bot.slack.commands``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from bot.slack import ids
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape

__all__ = ["Usage", "help_blocks", "help_text", "unknown_command_text"]

_CMD = ids.COMMAND


class Usage(NamedTuple):
    """One subcommand in the help: its name, what it does, an example and its arguments."""

    name: str
    what: str
    example: str
    args: str = ""


def help_text(creating: Sequence[Usage], servers: Sequence[Usage]) -> str:
    """The `/vf help` message (mrkdwn): creating servers, then day-2 work on them."""
    lines = [f"*{_CMD}: VirtFusion servers from Slack*", ""]
    lines += [_usage_line(command) for command in creating]
    lines += ["", "*Your servers*"]
    lines += [_usage_line(command) for command in servers]
    lines += [
        "",
        "Requests are checked against the panel and planned first; an approver then approves "
        "or rejects them, and progress is posted in the request's thread. `&lt;server&gt;` is a "
        "server's name or id. The Home tab shows your requests and what waits for approval.",
    ]
    return "\n".join(lines)


def help_blocks(creating: Sequence[Usage], servers: Sequence[Usage]) -> list[dict[str, object]]:
    """The `/vf help` message as sections, split between lines so each stays within Slack's
    3000 characters however many subcommands there are."""
    chunks: list[str] = []
    current = ""
    for line in help_text(creating, servers).split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_MAX and current:
            chunks.append(current)
            current = line
        else:
            current = candidate
    chunks.append(current)
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk.strip("\n")}}
        for chunk in chunks
        if chunk.strip()
    ]


def unknown_command_text(word: str, suggestion: str | None) -> str:
    """`Unknown subcommand `x`. Did you mean `/vf create`?`, with the word made safe."""
    text = f"Unknown subcommand {code(word)}."
    if suggestion:
        text += f" Did you mean `{_CMD} {escape(suggestion.replace('`', ''))}`?"
    return text + f" Try `{_CMD} help`."


def _usage_line(command: Usage) -> str:
    args = f" {escape(command.args)}" if command.args else ""
    return f"• `{_CMD} {command.name}`{args}: {command.what}. Example: {code(command.example)}"
