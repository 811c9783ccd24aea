"""One mrkdwn line per build milestone, posted in the request's thread; pure, no I/O.

Payloads come from the outbox (`bot/provisioning/service.py`); they carry no secrets and these
lines add none: a failed server's reason is the panel's message, escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from bot.provisioning import events
from bot.slack.blocks._kit import duration_text
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = ["milestone_text"]

_REASON_CHARS = 600
_LABEL_CHARS = 80
_IPS_SHOWN = 4


def milestone_text(
    kind: str, payload: Mapping[str, object], *, human_id: str | None = None
) -> str | None:
    """The thread line for milestone event `kind`, or None when `kind` is not a milestone.

    `human_id` (e.g. `VF-12`) completes the `/vf status` hint on failures.
    """
    if kind not in events.MILESTONES:
        return None
    name = code(truncate(_str(payload, "name") or "server", 63))
    server_id = _int(payload, "server_id")
    server = f"server {server_id}" if server_id is not None else None
    if kind == events.INSTANCE_CREATED:
        return _created(name, server, payload)
    if kind == events.INSTANCE_BUILD_STARTED:
        os = _label(payload, "os")
        what = f"installing {os}" if os else "installing the OS"
        return f":hammer_and_wrench: {name}: {what}" + (f" on {server}" if server else "")
    if kind == events.INSTANCE_BUILT:
        return _built(name, server, payload)
    if kind == events.INSTANCE_FAILED:
        return _failed(name, server, payload, human_id)
    if kind == events.INSTANCE_CANCELLED:
        if server is None:
            return f":no_entry_sign: {name} cancelled before it was created"
        if payload.get("kept") is True:
            return (
                f":no_entry_sign: {name} cancelled; {server} was created but not built, "
                "and it is kept on the panel"
            )
        return f":no_entry_sign: {name} cancelled ({server})"
    # events.INSTANCE_DELETED
    by = _str(payload, "by")
    who = ""
    if by:
        who = f" by {mention(by)}" if by != "cancel" else " because the request was cancelled"
    return f":wastebasket: {name} deleted" + (f" ({server})" if server else "") + who


def _created(name: str, server: str | None, payload: Mapping[str, object]) -> str:
    line = f":package: {name} created" + (f": {server}" if server else "")
    group = _label(payload, "group")
    if group:
        line += f" in group *{group}*"
    hypervisor = _label(payload, "hypervisor")
    hypervisor_id = _int(payload, "hypervisor_id")
    if hypervisor:
        line += f", on hypervisor {hypervisor}"
    elif hypervisor_id is not None:
        line += f", on hypervisor {hypervisor_id}"
    if payload.get("reconciled") is True:
        line += " (found on the panel after an unclear answer)"
    return line


def _built(name: str, server: str | None, payload: Mapping[str, object]) -> str:
    ips = [ip for ip in _list(payload.get("ipv4")) if isinstance(ip, str)]
    if ips:
        shown = escape(", ".join(ips[:_IPS_SHOWN]))
        more = f" +{len(ips) - _IPS_SHOWN}" if len(ips) > _IPS_SHOWN else ""
        address = f"IPv4 {shown}{more}"
    else:
        address = "no IPv4 address"
    parts = [address]
    os = _label(payload, "os")
    if os:
        parts.append(os)
    seconds = _int(payload, "seconds")
    if seconds is not None:
        parts.append(f"built in {duration_text(timedelta(seconds=seconds))}")
    where = f" ({server})" if server else ""
    return f":white_check_mark: {name} is ready{where}: " + " · ".join(parts)


def _failed(
    name: str, server: str | None, payload: Mapping[str, object], human_id: str | None
) -> str:
    stage = _str(payload, "stage")
    line = f":x: {name} failed" + (f" during {escape(stage)}" if stage else "")
    if server:
        line += f" ({server})"
    reason = _str(payload, "error")
    line += f": {truncate(escape(reason), _REASON_CHARS)}" if reason else "."
    if payload.get("deleted") is True and server:
        line += f" The leftover {server} was deleted."
    status = f"`/vf status {escape(human_id)}`" if human_id else "`/vf status`"
    return line + f"\nUse *Retry failed* on the notice, or {status} for details."


def _label(payload: Mapping[str, object], key: str) -> str | None:
    value = _str(payload, key)
    return escape(truncate(value, _LABEL_CHARS)) if value else None


def _str(payload: Mapping[str, object], key: str) -> str | None:
    value = payload.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def _int(payload: Mapping[str, object], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []
