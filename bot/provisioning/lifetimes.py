"""Server lifetimes: durations like ``"4h"`` and the rules of ``expires_in``; pure, no I/O.

A request's top-level ``expires_in`` applies to every server and an instance's own overrides it;
without either, ``VF_DEFAULT_LIFETIME`` applies (unset: no expiry). A lifetime longer than
``VF_MAX_LIFETIME`` is refused naming the field, unless an admin asks. The clock starts when the
server is built (``InstanceRecord.expires_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.provisioning.durations import (
    DURATION_EXAMPLE,
    duration_problem,
    format_duration,
    parse_lifetime,
)
from bot.provisioning.request import Problem, ProvisionRequest, expand_servers

__all__ = [
    "DURATION_EXAMPLE",
    "ExpiryAction",
    "LifetimePolicy",
    "duration_problem",
    "format_duration",
    "format_expiry",
    "lifetime_problems",
    "parse_lifetime",
    "server_lifetimes",
]


class ExpiryAction(StrEnum):
    """What happens to a server when its lifetime ends (``VF_EXPIRY_ACTION``)."""

    DELETE = "delete"
    SUSPEND = "suspend"
    NOTIFY = "notify"


def format_expiry(expires_at: datetime, now: datetime) -> str:
    """`2026-12-01 14:05 UTC (in 3d 4h)` or `… (2h ago)`."""
    when = expires_at.strftime("%Y-%m-%d %H:%M UTC")
    left = (expires_at - now).total_seconds()
    if left >= 0:
        return f"{when} (in {format_duration(left)})"
    return f"{when} ({format_duration(-left)} ago)"


@dataclass(frozen=True, slots=True)
class LifetimePolicy:
    """The lifetime settings: default and maximum (seconds, None: none), warning lead time,
    and what happens at expiry."""

    default_s: float | None = None
    max_s: float | None = None
    warning_s: float = 86400.0
    action: ExpiryAction = ExpiryAction.DELETE

    def extend_choices(self, *, admin: bool = False) -> list[int]:
        """Durations (seconds) offered on the Extend button: within the maximum, unless admin."""
        choices = [3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400]
        if self.max_s is None or admin:
            return choices
        allowed = [c for c in choices if c <= self.max_s]
        return allowed or [int(self.max_s)]

    def too_long(self, seconds: float, *, admin: bool) -> str | None:
        """Why `seconds` is refused (over VF_MAX_LIFETIME for a non-admin), or None."""
        if admin or self.max_s is None or seconds <= self.max_s:
            return None
        most = format_duration(self.max_s)
        return (
            f"{format_duration(seconds)} is longer than the maximum lifetime of {most} "
            f"(VF_MAX_LIFETIME); ask for {most} or less, or ask an admin"
        )


def _asked(request: ProvisionRequest) -> list[tuple[str, str | None]]:
    """(JSON path, text) of the lifetime each instance entry asks for (its own, else the
    request's), in instance order."""
    top = request.expires_in
    return [
        (f"instances[{i}].expires_in", instance.expires_in)
        if instance.expires_in is not None
        else ("expires_in", top)
        for i, instance in enumerate(request.instances)
    ]


def lifetime_problems(
    request: ProvisionRequest, policy: LifetimePolicy, *, admin: bool
) -> list[Problem]:
    """Lifetimes over the maximum, one problem per field that asks for one."""
    problems: dict[str, Problem] = {}
    for path, text in _asked(request):
        if text is None or path in problems:
            continue
        reason = policy.too_long(parse_lifetime(text).total_seconds(), admin=admin)
        if reason is not None:
            problems[path] = Problem(path, reason)
    return list(problems.values())


def server_lifetimes(request: ProvisionRequest, policy: LifetimePolicy) -> dict[str, int | None]:
    """Each server's lifetime in seconds (None: no expiry), by server name (names are unique
    within a request)."""
    per_instance: Sequence[int | None] = [
        int(parse_lifetime(text).total_seconds())
        if text is not None
        else (int(policy.default_s) if policy.default_s is not None else None)
        for _, text in _asked(request)
    ]
    return {server.name: per_instance[server.instance_index] for server in expand_servers(request)}
