"""In-memory records of the fake panel and their time-derived lifecycle; no HTTP, no JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, get_args

# commissionStatus values of the single-server object (docs/virtfusion-api.md, "Build state").
ALLOCATED, QUEUED, BUILDING, COMPLETE = 0, 1, 2, 3
# "building" is the sandbox's word: the spec shows no `state` for a build in progress (UNKNOWN).
STATE_NAMES = {ALLOCATED: "allocated", QUEUED: "queued", BUILDING: "building", COMPLETE: "complete"}

# How a failed build looks. "build_failed": `buildFailed: true` (its `state` is UNKNOWN, so it
# stays "building"). "state_failed": the official `GET /servers/user/{id}` example, which shows
# `commissionStatus: 2, state: "failed", buildFailed: false`.
FailShape = Literal["build_failed", "state_failed"]
FAIL_SHAPES: tuple[str, ...] = get_args(FailShape)


@dataclass
class User:
    """A panel user; servers and SSH keys belong to one."""

    id: int
    name: str
    email: str
    ext_relation_id: int | None
    created: datetime
    rel_str: str | None = None
    admin: bool = False
    suspended: bool = False
    timezone: str = "UTC"


@dataclass
class HypervisorGroup:
    """A hypervisor group: `POST /servers` takes a group id in its `hypervisorId` field."""

    id: int
    name: str
    description: str
    created: datetime
    enabled: bool = True
    default: bool = False
    distribution_type: int = 1
    label: str | None = None
    icon: str | None = None


@dataclass
class NetworkProfile:
    """An admin-defined network profile; a separate id space from hypervisor networks (§4)."""

    id: int
    name: str


@dataclass
class HypervisorNetwork:
    """A hypervisor bridge (`networks[]` item) and the profiles attached to it."""

    id: int
    bridge: str
    profile_ids: set[int]
    type: str = "public"
    primary: bool = True
    default: bool = True


@dataclass
class Ipv4Pool:
    """Addresses a hypervisor may hand out, all from an RFC 5737 documentation range."""

    block_id: int
    addresses: list[str]
    gateway: str
    netmask: str
    resolver1: str
    resolver2: str


@dataclass
class Hypervisor:
    """A compute node with fixed capacity; allocations are derived from live servers."""

    id: int
    name: str
    group_id: int
    ip: str
    hostname: str
    created: datetime
    networks: list[HypervisorNetwork]
    ipv4_pool: Ipv4Pool
    ipv6_prefix: str
    max_servers: int
    max_cpu: int
    max_memory_mb: int
    max_storage_gb: int
    enabled: bool = True
    commissioned: int = 3  # an integer on /compute/hypervisors (3 in every spec example)
    maintenance: bool = False
    prohibit: bool = False
    accept: bool = True
    port: int = 8892
    ssh_port: int = 22
    nf_type: int = 1

    def is_eligible(self) -> bool:
        """Whether the panel may place new servers here (WHMCS StockControl rule + maintenance)."""
        return (
            self.enabled
            and bool(self.commissioned)
            and not self.maintenance
            and not self.prohibit
            and self.accept
        )

    def uses_profile(self, profile_id: int) -> bool:
        """Whether any of this hypervisor's networks is attached to `profile_id`."""
        return any(profile_id in net.profile_ids for net in self.networks)


@dataclass
class Package:
    """A server package: the defaults `POST /servers` applies."""

    id: int
    name: str
    description: str
    created: datetime
    memory_mb: int
    storage_gb: int
    traffic_gb: int
    cpu_cores: int
    network_speed_in: int
    network_speed_out: int
    primary_network_profile: int
    primary_storage_profile: int
    template_ids: list[int]
    enabled: bool = True
    backup_plan_id: int = 0
    primary_disk_type: str = "inherit"


@dataclass
class TemplateGroup:
    """An OS distribution group in `/media/templates/...`."""

    id: int
    name: str
    description: str
    icon: str


@dataclass
class Template:
    """An installable OS template; `operatingSystemId` in a build refers to `id`."""

    id: int
    group_id: int
    name: str
    version: str
    variant: str
    description: str
    icon: str
    eol: bool = False
    eol_date: str | None = None
    eol_warning: bool = False
    arch: int = 1
    deploy_type: int = 1
    vnc: bool = True
    type: str = "linux"


@dataclass
class SshKey:
    """A stored public key, owned by one user and referenced by id in builds."""

    id: int
    user_id: int
    name: str
    public_key: str
    created: datetime
    enabled: bool = True

    @property
    def type(self) -> str:
        """Key algorithm, taken from the public key's first word."""
        return self.public_key.split(" ", 1)[0]


@dataclass
class Ipv4Assignment:
    """One IPv4 address bound to a server interface."""

    id: int
    address: str
    block_id: int
    order: int


@dataclass
class AdditionalDisk:
    """An extra disk requested with `additionalStorageNEnable`."""

    profile: int
    capacity_gb: int


@dataclass
class BuildRecord:
    """An OS install: phase boundaries are fixed when the build is requested."""

    requested_at: datetime
    building_at: datetime
    complete_at: datetime
    fails: bool
    template_id: int
    ssh_key_ids: list[int]
    ipv6: bool
    swap: float | None
    fail_shape: FailShape = "build_failed"


@dataclass
class QueueTask:
    """A queued hypervisor job (power, VNC); finishes when the clock passes `finish_at`."""

    id: int
    server_id: int
    hypervisor_id: int
    action: str
    started: datetime
    finish_at: datetime
    error: str | None = None

    def finished(self, now: datetime) -> bool:
        """Whether the job is over at `now`."""
        return now >= self.finish_at

    def progress(self, now: datetime) -> int:
        """Percent done at `now`, 0-100."""
        if self.finished(now):
            return 100
        total = (self.finish_at - self.started).total_seconds()
        done = (now - self.started).total_seconds()
        return max(0, min(99, int(done * 100 / total))) if total > 0 else 0


@dataclass
class PendingChange:
    """A change held until a power action (`tasks.actions.pending[]`); the sandbox records one
    for memory and CPU changes (whether a real panel does is UNKNOWN)."""

    action: str
    requires: tuple[str, ...]
    created: datetime


@dataclass
class Backup:
    """One backup of a server (`GET /backups/server/{id}`); the API can only list them."""

    id: int
    server_id: int
    created: datetime
    storage_id: int = 1
    storage_name: str = "Backup Server 1"
    complete: bool = True


@dataclass
class Server:
    """A server record; build phase and power state are derived from the clock."""

    id: int
    uuid: str
    owner_id: int
    group_id: int
    hypervisor_id: int
    package_id: int
    created: datetime
    updated: datetime
    memory_mb: int
    storage_gb: int
    traffic_gb: int
    cpu_cores: int
    network_speed_in: int
    network_speed_out: int
    storage_profile: int
    network_profile: int
    hypervisor_network_id: int
    mac: str
    ipv4: list[Ipv4Assignment]
    firewall_rulesets: list[int] = field(default_factory=list)
    firewall_enabled: bool = False
    pending: list[PendingChange] = field(default_factory=list)
    asset_groups: list[int] = field(default_factory=list)
    additional_disks: list[AdditionalDisk] = field(default_factory=list)
    name: str = ""
    hostname: str | None = None
    build: BuildRecord | None = None
    suspended: bool = False
    protected: bool = False
    backup_plan_id: int = 0
    cpu_throttle: int = 0
    vnc_enabled: bool = False
    vnc_password: str = ""
    delete_at: datetime | None = None
    last_task_at: datetime | None = None
    previous_built: datetime | None = None  # `built` of the last completed build, for rebuilds
    # Bytes moved this month; None: a small deterministic amount. Tests set it to reach a limit.
    traffic_bytes: int | None = None

    def commission_status(self, now: datetime) -> int:
        """`commissionStatus` at `now`; a failed build stays at BUILDING (real value UNKNOWN)."""
        build = self.build
        if build is None:
            return ALLOCATED
        if now < build.building_at:
            return QUEUED
        if build.fails or now < build.complete_at:
            return BUILDING
        return COMPLETE

    def failed(self, now: datetime) -> bool:
        """Whether a failing build has reached its would-be completion time."""
        return self.build is not None and self.build.fails and now >= self.build.complete_at

    def build_failed(self, now: datetime) -> bool:
        """`buildFailed`: true for a failed build of the "build_failed" shape only."""
        return (
            self.failed(now) and self.build is not None and self.build.fail_shape == "build_failed"
        )

    def state(self, now: datetime) -> str:
        """`state`: "failed" for a failed build of the "state_failed" shape, else by phase."""
        if self.failed(now) and self.build is not None and self.build.fail_shape == "state_failed":
            return "failed"
        return STATE_NAMES[self.commission_status(now)]

    def building(self, now: datetime) -> bool:
        """Whether an OS install is still in flight (locks the server)."""
        status = self.commission_status(now)
        return status in (QUEUED, BUILDING) and not self.failed(now)

    def built_at(self, now: datetime) -> datetime | None:
        """`built`: when the last build completed; during a rebuild, the previous build's time
        (the spec's rebuild example keeps the old `built`)."""
        if self.build is not None and self.commission_status(now) == COMPLETE:
            return self.build.complete_at
        return self.previous_built

    def gone(self, now: datetime) -> bool:
        """Whether a delayed deletion has come due."""
        return self.delete_at is not None and now >= self.delete_at

    def all_storage_gb(self) -> int:
        """Primary plus additional disks, GB."""
        return self.storage_gb + sum(d.capacity_gb for d in self.additional_disks)


def after(start: datetime, seconds: float) -> datetime:
    """`start` plus `seconds`."""
    return start + timedelta(seconds=seconds)
