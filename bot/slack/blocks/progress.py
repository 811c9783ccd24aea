"""One mrkdwn line per outbox event, posted in the request's thread; pure, no I/O.

Events come typed from the outbox (`bot.provisioning.events`); they carry no secrets and these
lines add none: a failed server's reason is the panel's message, escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.provisioning import events as ev
from bot.slack.blocks._kit import duration_text
from bot.slack.ids import COMMAND
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = ["decision_text", "milestone_text"]

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
