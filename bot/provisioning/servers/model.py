"""Plain data about servers (lists, details, traffic, power results, groups) for every surface.

Pure values only: the server services fill them, the Slack builders and the CLI render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from bot.provisioning.model import InstanceRecord, Operation, RequestRecord
from bot.virtfusion import Backup, TrafficMonth

__all__ = [
    "AddressChange",
    "BackupList",
    "FirewallView",
    "HypervisorGroupRow",
    "PasswordResult",
    "PowerResult",
    "RebuildRun",
    "ResolvedServer",
    "ServerDetail",
    "ServerRow",
    "TrafficSummary",
    "format_bytes",
]


@dataclass(frozen=True)
class ResolvedServer:
    """A server the user named, known to belong to vfbot's owner; `instance` if vfbot made it."""

    server_id: int
    name: str
    instance: InstanceRecord | None = None
    request: RequestRecord | None = None

    @property
    def label(self) -> str:
        """``server 123 (web-1)``: how audit entries and messages name it."""
        return f"server {self.server_id} ({self.name})" if self.name else f"server {self.server_id}"

    @property
    def request_id(self) -> int | None:
        """The create request the server came from, if vfbot made it."""
        return self.instance.request_id if self.instance is not None else None

    @property
    def request_human_id(self) -> str | None:
        """``VF-n`` of the request that created it, if vfbot did."""
        if self.request is not None:
            return self.request.human_id
        return self.instance.human_request_id if self.instance is not None else None


@dataclass(frozen=True)
class ServerRow:
    """One server in a list: what vfbot knows, merged with the panel's view when available."""

    server_id: int
    name: str
    request_human_id: str | None  # "VF-12" when vfbot created it, None for other owner servers
    requester: str | None  # Slack user id or "cli:<user>"
    state: str  # the instance state ("built", "failed", …) or the panel phase for other servers
    group: str
    ipv4: tuple[str, ...] = ()
    suspended: bool | None = None  # None: not read from the panel


@dataclass(frozen=True)
class ServerDetail:
    """One server in detail, for `/vf status <server>`."""

    server_id: int
    name: str
    hostname: str
    phase: str  # BuildPhase value from the panel
    state: str  # the panel's `state`
    group: str
    hypervisor: str
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    memory_mb: int | None
    disk_gb: int | None
    cpu_cores: int | None
    os: str
    suspended: bool
    running: bool | None  # None: not asked for, or the panel's answer did not say
    request_human_id: str | None = None
    requester: str | None = None
    built_at: datetime | None = None
    expires_at: datetime | None = None  # when its lifetime ends (None: never)
    live: bool = False  # the hypervisor was asked (`remoteState=true`): show power, even unknown


@dataclass(frozen=True)
class TrafficSummary:
    """This month's traffic of one server; bytes, and the limit in GB (0 = unlimited)."""

    server_id: int
    name: str
    month_start: datetime | None
    month_end: datetime | None
    rx_bytes: int
    tx_bytes: int
    total_bytes: int
    limit_gb: float

    @classmethod
    def of(cls, server_id: int, name: str, month: TrafficMonth | None) -> TrafficSummary:
        """The summary of one panel month (no month: nothing used, no limit)."""
        return cls(
            server_id=server_id,
            name=name,
            month_start=month.start if month else None,
            month_end=month.end if month else None,
            rx_bytes=month.rx if month else 0,
            tx_bytes=month.tx if month else 0,
            total_bytes=month.total if month else 0,
            limit_gb=month.limit_gb if month else 0,
        )

    @property
    def used_percent(self) -> float | None:
        if self.limit_gb <= 0:
            return None
        return 100.0 * self.total_bytes / (self.limit_gb * 1024**3)

    def usage_text(self) -> str:
        """`12.3 GiB of 1,000 GB (1.2 %)`, or `12.3 GiB (unlimited)`."""
        percent = self.used_percent
        if percent is None:
            return f"{format_bytes(self.total_bytes)} (unlimited)"
        return f"{format_bytes(self.total_bytes)} of {self.limit_gb:,g} GB ({percent:.1f} %)"


_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(n: int) -> str:
    """Binary units: `512 B`, `1.5 KiB`, `12.3 GiB`; negative counts are shown as 0 B."""
    if n < 1024:
        return f"{max(n, 0)} B"
    value = n / 1024
    unit = 0
    while round(value, 1) >= 1024 and unit < len(_BYTE_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:,.1f} {_BYTE_UNITS[unit]}"


@dataclass(frozen=True)
class PowerResult:
    """How a queued power action (or other queued task) ended."""

    server_id: int
    name: str
    action: str
    queue_id: int | None
    finished: bool  # False: still running when vfbot stopped following it
    failed: bool
    error: str = ""


@dataclass(frozen=True)
class HypervisorGroupRow:
    """A hypervisor group with its free capacity and hypervisors, for `/vf hypervisors`."""

    group_id: int
    name: str
    enabled: bool
    memory_free_mb: int
    storage_free_gb: int
    ipv4_free: int
    hypervisors: tuple[str, ...] = ()  # names, "(maintenance)"/"(disabled)" appended
    maintenance: tuple[str, ...] = ()
    default: bool = False  # the panel's default group


@dataclass(frozen=True)
class PasswordResult:
    """A root password reset: the new password (a secret for the person who asked, never
    stored or logged) and how the panel's task that sets it ended."""

    server_id: int
    name: str
    user: str
    password: SecretStr
    task: PowerResult

    @property
    def set(self) -> bool:
        """Whether the panel has finished setting it (not failed, not still running)."""
        return self.task.finished and not self.task.failed


@dataclass(frozen=True)
class FirewallView:
    """A server's firewall on its primary interface; rules as short text (shape UNKNOWN)."""

    server_id: int
    name: str
    enabled: bool
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddressChange:
    """IPv4 addresses added or removed, and the ones the server has now."""

    server_id: int
    name: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupList:
    """A server's backups and its backup plan (the API cannot create or restore one)."""

    server_id: int
    name: str
    plan: str
    backups: tuple[Backup, ...] = ()


@dataclass(frozen=True)
class RebuildRun:
    """A rebuild that was sent (or refused before sending): its operation, and the new root
    password, only when the server has no SSH key; shown once to whoever asked, never kept."""

    operation: Operation
    password: SecretStr | None = None
    ssh_keys: int = 0
    unclear: bool = False  # the panel's answer was lost; reading the server tells the outcome
