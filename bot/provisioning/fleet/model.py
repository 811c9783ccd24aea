"""What the fleet jobs know: group capacity, alert thresholds, the daily report's parts; pure.

These models are also the payloads of the fleet's outbox events (`bot.provisioning.events`),
so they are pydantic models with defaults (an older event still parses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CapacityChange",
    "ExpiringServer",
    "FailedBuild",
    "GroupUsage",
    "Resource",
    "Threshold",
    "parse_capacity_alert",
    "parse_percent",
]


class Resource(StrEnum):
    """What a capacity threshold watches in a hypervisor group."""

    MEMORY = "memory"
    DISK = "disk"
    IPV4 = "ipv4"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class GroupUsage(_Payload):
    """Free and total capacity of one hypervisor group, over its eligible hypervisors (enabled,
    commissioned, not prohibited). Disk is local storage only; the panel reports free IPv4
    addresses but no total (docs/virtfusion-api.md, "Capacity")."""

    group_id: int = 0
    name: str = ""
    hypervisors: int = 0
    memory_free_mb: float = 0
    memory_total_mb: float = 0
    disk_free_gb: float = 0
    disk_total_gb: float = 0
    ipv4_free: int = 0

    def free(self, resource: Resource) -> float:
        return {
            Resource.MEMORY: self.memory_free_mb,
            Resource.DISK: self.disk_free_gb,
            Resource.IPV4: float(self.ipv4_free),
        }[resource]

    def total(self, resource: Resource) -> float | None:
        """The capacity `free` is part of; None where the panel gives none (IPv4)."""
        if resource is Resource.MEMORY:
            return self.memory_total_mb
        return self.disk_total_gb if resource is Resource.DISK else None


_UNITS = {Resource.MEMORY: "MB", Resource.DISK: "GB", Resource.IPV4: ""}
# Amounts may carry a unit; each resource's own unit is the default.
_SCALE = {
    Resource.MEMORY: {"": 1, "mb": 1, "gb": 1024, "tb": 1024 * 1024},
    Resource.DISK: {"": 1, "gb": 1, "tb": 1024},
    Resource.IPV4: {"": 1},
}
_RULE = re.compile(r"^\s*([a-z0-9]+)\s*<\s*(\d+(?:\.\d+)?)\s*(%|[a-z]*)\s*$", re.IGNORECASE)
_EXAMPLE = "e.g. memory<10%,disk<10%,ipv4<5"


@dataclass(frozen=True, slots=True)
class Threshold:
    """`memory<10%`: a group is low on `resource` while its free amount is below `amount`
    (a percentage of its total when `percent`, else MB of memory, GB of disk, addresses)."""

    resource: Resource
    amount: float
    percent: bool = False

    def text(self) -> str:
        """`memory < 10 %`, `disk < 500 GB`, `ipv4 < 5`."""
        unit = "%" if self.percent else _UNITS[self.resource]
        return f"{self.resource.value} < {self.amount:g}" + (f" {unit}" if unit else "")

    def low(self, usage: GroupUsage) -> bool | None:
        """Whether the group is below the threshold; None when it cannot be told (a
        percentage of a group that reports no capacity at all)."""
        free = usage.free(self.resource)
        if not self.percent:
            return free < self.amount
        total = usage.total(self.resource)
        if not total:
            return None
        return 100.0 * free / total < self.amount


def parse_capacity_alert(text: str) -> tuple[Threshold, ...]:
    """`memory<10%,disk<10%,ipv4<5` as thresholds; `off` (or nothing) is none.

    Raises ValueError saying what is wrong and what a valid value looks like.
    """
    if text.strip().lower() in ("", "off", "none"):
        return ()
    found: dict[Resource, Threshold] = {}
    for part in text.split(","):
        match = _RULE.match(part)
        if match is None:
            raise ValueError(f"cannot read {part.strip()!r}: write resource<amount, {_EXAMPLE}")
        name, number, unit = match.group(1).lower(), float(match.group(2)), match.group(3).lower()
        try:
            resource = Resource(name)
        except ValueError:
            raise ValueError(f"{name!r} is not memory, disk or ipv4 ({_EXAMPLE})") from None
        if resource in found:
            raise ValueError(f"{resource.value} is given twice")
        if unit == "%":
            if resource is Resource.IPV4:
                raise ValueError(
                    "ipv4 takes a number of free addresses, e.g. ipv4<5 (the panel reports no "
                    "total to take a percentage of)"
                )
            if not 0 < number <= 100:
                raise ValueError(f"{resource.value}<{number:g}%: a percentage from 1 to 100")
            found[resource] = Threshold(resource, number, percent=True)
            continue
        scale = _SCALE[resource].get(unit)
        if scale is None:
            units = ", ".join(u for u in _SCALE[resource] if u) or "no unit"
            raise ValueError(f"{resource.value} takes % or {units}, not {unit!r}")
        found[resource] = Threshold(resource, number * scale)
    return tuple(found.values())


def parse_percent(text: str) -> float | None:
    """`80%` (or `80`) as 80.0; `off` is None. Raises ValueError unless from 1 to 1000."""
    cleaned = text.strip().lower().removesuffix("%").strip()
    if cleaned in ("", "off", "none"):
        return None
    try:
        number = float(cleaned)
    except ValueError:
        raise ValueError("must be a percentage such as 80% (or off)") from None
    if not 0 < number <= 1000:
        raise ValueError("must be a percentage above 0 and at most 1000%, e.g. 80%")
    return number


class CapacityChange(_Payload):
    """One resource of a group crossed its threshold (`low`) or came back above it."""

    resource: str = ""
    low: bool = True
    threshold: str = ""  # Threshold.text()


class ExpiringServer(_Payload):
    """A server whose lifetime ends soon (`ExpiryService.expiring_between` feeds it)."""

    name: str = ""
    server_id: int | None = None
    request_human_id: str = ""
    requester: str = ""
    expires_at: datetime | None = None


class FailedBuild(_Payload):
    """A server that failed to build."""

    name: str = ""
    request_human_id: str = ""
    error: str = ""
    failed_at: datetime | None = None
