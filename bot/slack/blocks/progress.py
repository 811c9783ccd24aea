"""One mrkdwn line per outbox event, and the thread reply that lists a round of them; pure.

Events come typed from the outbox (`bot.provisioning.events`); they carry no secrets and these
lines add none: a failed server's reason is the panel's message, escaped. A delivery round posts
one reply per request with every line since the last one (`progress_reply`), within Block Kit's
limits: lines that do not fit wait for the next reply (`lines_that_fit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.provisioning import events as ev
from bot.slack.blocks._kit import Json, duration_text, section
from bot.slack.ids import COMMAND
from bot.slack.limits import MESSAGE_BLOCKS_MAX, SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = [
    "REPLY_LINES_MAX",
    "decision_text",
    "lines_that_fit",
    "milestone_text",
    "progress_reply",
]

REPLY_LINES_MAX = 100
"""The most lines one thread reply lists; a longer backlog goes out over several rounds."""

_REPLY_TEXT_CHARS = 3000  # the notification text: the first lines, then a count

_REASON_CHARS = 600
_LABEL_CHARS = 80
_IPS_SHOWN = 4


def milestone_text(event: ev.InstanceEvent, *, human_id: str | None = None) -> str:
    """The thread line of a server's milestone; `human_id` (`VF-12`) completes the
    `/vf status` hint on failures."""
    name = code(truncate(event.name.strip() or "server", 63))
    server = f"server {event.server_id}" if event.server_id is not None else None
    if isinstance(event, ev.InstanceCreated):
        return _created(name, server, event)
    if isinstance(event, ev.InstanceBuildStarted):
        os = _label(event.os)
        what = f"installing {os}" if os else "installing the OS"
        return f":hammer_and_wrench: {name}: {what}" + (f" on {server}" if server else "")
    if isinstance(event, ev.InstanceBuilt):
        return _built(name, server, event)
    if isinstance(event, ev.InstanceFailed):
        return _failed(name, server, event, human_id)
    if isinstance(event, ev.InstanceCancelled):
        if server is None:
            return f":no_entry_sign: {name} cancelled before it was created"
        if event.kept:
            return (
                f":no_entry_sign: {name} cancelled; {server} was created but not built, "
                "and it is kept on the panel"
            )
        return f":no_entry_sign: {name} cancelled ({server})"
    if isinstance(event, ev.InstanceFailedOver):
        return (
            f":twisted_rightwards_arrows: {name}: group *{_label(event.from_group) or '?'}* "
            f"refused it ({escape(truncate(event.reason, 300))}); nothing was created there, "
            f"so it goes to group *{_label(event.to_group) or '?'}*, next in its list"
        )
    if isinstance(event, ev.InstanceWaiting):
        return f":hourglass_flowing_sand: {name}: {escape(truncate(event.reason, 300))}"
    if isinstance(event, ev.InstanceDeleted):
        by = event.by.strip()
        who = ""
        if by:
            who = f" by {mention(by)}" if by != "cancel" else " because the request was cancelled"
        return f":wastebasket: {name} deleted" + (f" ({server})" if server else "") + who
    return f":information_source: {name}: {escape(event.KIND)}"


def decision_text(event: ev.Event) -> str | None:
    """The thread line of a decision on the request, or None for events without one."""
    if isinstance(event, ev.RequestApproved):
        return f":white_check_mark: Approved by {mention(event.by)}. Creating the servers now."
    if isinstance(event, ev.RequestRejected):
        reason = event.reason
        return f":no_entry: Rejected by {mention(event.by)}" + (
            f": {escape(reason)}" if reason else "."
        )
    if isinstance(event, ev.RequestExpired):
        return (
            ":hourglass: Expired: nobody approved it in time. Nothing was created; "
            f"run `{COMMAND} create` again if it is still needed."
        )
    if isinstance(event, ev.RequestCancelRequested):
        deleting = " Servers that exist will be deleted." if event.delete_servers else ""
        return (
            f":octagonal_sign: Cancelled by {mention(event.by)}; nothing new will be created."
            f"{deleting}"
        )
    if isinstance(event, ev.RequestRetried):
        return f":repeat: {mention(event.by)} is retrying the failed servers."
    return None


def _created(name: str, server: str | None, event: ev.InstanceCreated) -> str:
    line = f":package: {name} created" + (f": {server}" if server else "")
    group = _label(event.group)
    if group:
        line += f" in group *{group}*"
    hypervisor = _label(event.hypervisor)
    if hypervisor:
        line += f", on hypervisor {hypervisor}"
    elif event.hypervisor_id is not None:
        line += f", on hypervisor {event.hypervisor_id}"
    if event.reconciled:
        line += " (found on the panel after an unclear answer)"
    return line


def _built(name: str, server: str | None, event: ev.InstanceBuilt) -> str:
    parts = [_addresses(event.ipv4)]
    os = _label(event.os)
    if os:
        parts.append(os)
    if event.seconds is not None:
        parts.append(f"built in {duration_text(timedelta(seconds=event.seconds))}")
    where = f" ({server})" if server else ""
    return f":white_check_mark: {name} is ready{where}: " + " · ".join(parts)


def _addresses(ips: Sequence[str]) -> str:
    if not ips:
        return "no IPv4 address"
    shown = escape(", ".join(ips[:_IPS_SHOWN]))
    more = f" +{len(ips) - _IPS_SHOWN}" if len(ips) > _IPS_SHOWN else ""
    return f"IPv4 {shown}{more}"


def _failed(name: str, server: str | None, event: ev.InstanceFailed, human_id: str | None) -> str:
    stage = event.stage.strip()
    line = f":x: {name} failed" + (f" during {escape(stage)}" if stage else "")
    if server:
        line += f" ({server})"
    reason = event.error.strip()
    line += f": {truncate(escape(reason), _REASON_CHARS)}" if reason else "."
    if event.deleted and server:
        line += f" The leftover {server} was deleted."
    status = f"`{COMMAND} status {escape(human_id)}`" if human_id else f"`{COMMAND} status`"
    return line + f"\nUse *Retry failed* on the notice, or {status} for details."


def _label(value: str | None) -> str | None:
    text = (value or "").strip()
    return escape(truncate(text, _LABEL_CHARS)) if text else None


def lines_that_fit(lines: Sequence[str]) -> int:
    """How many of `lines`, from the first, one reply can list (at least one, if any)."""
    packed = _pack(lines[:REPLY_LINES_MAX])
    return sum(len(chunk) for chunk in packed[:MESSAGE_BLOCKS_MAX])


def progress_reply(human_id: str, lines: Sequence[str]) -> tuple[str, list[Json]]:
    """The thread reply listing `lines` (already cut with `lines_that_fit`): its notification
    text and one section per run of lines that fits a section."""
    blocks = [section("\n".join(chunk)) for chunk in _pack(lines)[:MESSAGE_BLOCKS_MAX]]
    if len(lines) == 1:
        return truncate(lines[0], _REPLY_TEXT_CHARS), blocks
    head = f"{escape(human_id)}: {len(lines)} updates\n"
    return truncate(head + "\n".join(lines), _REPLY_TEXT_CHARS), blocks


def _pack(lines: Sequence[str]) -> list[list[str]]:
    """Consecutive lines grouped so each group's text fits one section."""
    chunks: list[list[str]] = []
    size = SECTION_MAX + 1
    for line in lines:
        line = truncate(line, SECTION_MAX)
        if size + 1 + len(line) > SECTION_MAX:
            chunks.append([])
            size = -1
        chunks[-1].append(line)
        size += 1 + len(line)
    return chunks
