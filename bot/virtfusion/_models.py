"""Pydantic models of what vfbot reads from and sends to the panel; tolerant of unknown fields.

Secrets the panel returns are never modelled as plain strings: the build response's
`settings.decryptedPassword` is not a field at all (so it is dropped on parsing), and VNC
credentials are `SecretStr`, which never shows in a repr or a log line.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

__all__ = [
    "BuildPhase",
    "BuildServerBody",
    "CreateServerBody",
    "GroupCapacity",
    "Hypervisor",
    "HypervisorGroup",
    "HypervisorNetwork",
    "HypervisorResources",
    "OsTemplate",
    "Package",
    "Page",
    "PowerAction",
    "QueueTask",
    "ResourceUsage",
    "Server",
    "SshKey",
    "TrafficMonth",
    "User",
    "VncSession",
]

T = TypeVar("T")

PowerAction = Literal["boot", "shutdown", "restart", "poweroff"]


def _parse_timestamp(value: object) -> object:
    """Accept ISO 8601 (with or without offset) and "YYYY-MM-DD HH:MM:SS"; naive means UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        text = value.strip().replace(" ", "T", 1)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None  # an unreadable timestamp is not worth failing a whole response for
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


Timestamp = Annotated[datetime | None, BeforeValidator(_parse_timestamp)]


def _none_to_empty(value: object) -> object:
    return "" if value is None else value


EmptyStr = Annotated[str, BeforeValidator(_none_to_empty)]


class _PanelModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Page(BaseModel, Generic[T]):
    """One page of a Laravel paginator envelope."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    current_page: int
    last_page: int
    total: int
    has_next: bool


class BuildPhase(enum.StrEnum):
    """Where a server is in its life, derived from `commissionStatus`, `state` and `buildFailed`."""

    ALLOCATED = "allocated"
    QUEUED = "queued"
    BUILDING = "building"
    COMPLETE = "complete"
    FAILED = "failed"


class ResourceSpec(_PanelModel):
    memory_mb: int | None = Field(default=None, alias="memory")
    storage_gb: int | None = Field(default=None, alias="storage")
    traffic_gb: int | None = Field(default=None, alias="traffic")
    cpu_cores: int | None = Field(default=None, alias="cpuCores")


class GroupRef(_PanelModel):
    id: int | None = None
    name: EmptyStr = ""


class HypervisorRef(_PanelModel):
    id: int | None = None
    name: EmptyStr = ""
    group: GroupRef | None = None


class Server(_PanelModel):
    """A server as the panel reports it (single object, per-user row or simple list row)."""

    id: int
    uuid: EmptyStr = ""
    name: EmptyStr = ""
    hostname: EmptyStr = ""
    owner_id: int | None = Field(default=None, validation_alias=AliasChoices("ownerId", "owner"))
    hypervisor_id: int | None = Field(default=None, alias="hypervisorId")
    commission_status: int = Field(
        default=0, validation_alias=AliasChoices("commissionStatus", "commissioned")
    )
    state: EmptyStr = ""
    build_failed: bool = Field(default=False, alias="buildFailed")
    built: Timestamp = None
    suspended: bool = False
    protected: bool = False
    created: Timestamp = None
    updated: Timestamp = None
    resources: ResourceSpec | None = None
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    hypervisor: HypervisorRef | None = None
    os_name: EmptyStr = ""
    tasks_active: bool = False
    running: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: object) -> object:
        """Bring the panel's nested and variant shapes into one flat form."""
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        owner = out.get("owner")
        if isinstance(owner, Mapping):  # the single object nests the owner; list rows give an id
            out["owner"] = owner.get("id")
        settings = out.get("settings")
        if "resources" not in out and isinstance(settings, Mapping):
            out["resources"] = settings.get("resources")
        out["ipv4"], out["ipv6"] = _addresses(out.get("network"))
        os_info = out.get("os")
        if isinstance(os_info, Mapping):
            parts = [str(os_info.get(k) or "") for k in ("name", "version")]
            out["os_name"] = " ".join(p for p in parts if p).strip()
        tasks = out.get("tasks")
        if isinstance(tasks, Mapping):
            out["tasks_active"] = bool(tasks.get("active"))
        remote = out.get("remoteState")
        if isinstance(remote, Mapping) and "running" in remote:
            out["running"] = bool(remote.get("running"))
        elif isinstance(remote, bool):
            out["running"] = remote
        out.pop("settings", None)  # holds decryptedPassword after a build: never keep it
        return out

    @property
    def phase(self) -> BuildPhase:
        """The build phase; `buildFailed` wins because the failed `state` is undocumented."""
        if self.build_failed:
            return BuildPhase.FAILED
        if self.commission_status >= 3 or self.state == "complete":
            return BuildPhase.COMPLETE
        if self.commission_status == 2:
            return BuildPhase.BUILDING
        if self.commission_status == 1 or self.state == "queued":
            return BuildPhase.QUEUED
        return BuildPhase.ALLOCATED

    @property
    def primary_ipv4(self) -> str | None:
        """The first IPv4 of the primary interface, as integrations read it."""
        return self.ipv4[0] if self.ipv4 else None

    @property
    def group_name(self) -> str:
        if self.hypervisor and self.hypervisor.group:
            return self.hypervisor.group.name
        return ""


def _addresses(network: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not isinstance(network, Mapping):
        return (), ()
    v4: list[str] = []
    v6: list[str] = []
    interfaces = network.get("interfaces")
    for iface in interfaces if isinstance(interfaces, list) else []:
        if not isinstance(iface, Mapping):
            continue
        for entry in iface.get("ipv4") or []:
            if isinstance(entry, Mapping) and entry.get("address"):
                v4.append(str(entry["address"]))
        for entry in iface.get("ipv6") or []:
            if isinstance(entry, Mapping) and entry.get("subnet"):
                v6.append(f"{entry['subnet']}/{entry.get('cidr', '')}".rstrip("/"))
    return tuple(v4), tuple(v6)


class HypervisorNetwork(_PanelModel):
    """A hypervisor bridge; its `id` is NOT a network-profile id (reference §4)."""

    id: int
    type: EmptyStr = ""
    bridge: EmptyStr = ""
    primary: bool = False
    default: bool = False


class Hypervisor(_PanelModel):
    id: int
    name: EmptyStr = ""
    ip: EmptyStr = ""
    hostname: EmptyStr = ""
    enabled: bool = True
    maintenance: bool = False
    commissioned: int = 0
    group: GroupRef | None = None
    max_servers: int | None = Field(default=None, alias="maxServers")
    max_cpu: int | None = Field(default=None, alias="maxCpu")
    max_memory: int | None = Field(default=None, alias="maxMemory")
    networks: tuple[HypervisorNetwork, ...] = ()

    @property
    def group_id(self) -> int | None:
        return self.group.id if self.group else None


class HypervisorGroup(_PanelModel):
    id: int
    name: EmptyStr = ""
    label: EmptyStr = ""
    description: EmptyStr = ""
    distribution_type: int | str | None = Field(default=None, alias="distributionType")
    enabled: bool = True
    default: bool = False


class ResourceUsage(_PanelModel):
    max: float = 0
    allocated: float = 0
    free: float = 0


class HypervisorResources(_PanelModel):
    """One row of `groups/{id}/resources`: a hypervisor and its capacity."""

    hypervisor_id: int = Field(validation_alias=AliasPath("hypervisor", "id"))
    hypervisor_name: EmptyStr = Field(default="", validation_alias=AliasPath("hypervisor", "name"))
    enabled: bool = Field(default=True, validation_alias=AliasPath("hypervisor", "enabled"))
    prohibit: bool = Field(default=False, validation_alias=AliasPath("hypervisor", "prohibit"))
    commissioned: int = Field(default=1, validation_alias=AliasPath("hypervisor", "commissioned"))
    servers: ResourceUsage = Field(
        default_factory=ResourceUsage, validation_alias=AliasPath("resources", "servers")
    )
    memory_mb: ResourceUsage = Field(
        default_factory=ResourceUsage, validation_alias=AliasPath("resources", "memory")
    )
    cpu_cores: ResourceUsage = Field(
        default_factory=ResourceUsage, validation_alias=AliasPath("resources", "cpuCores")
    )
    storage_gb: ResourceUsage = Field(
        default_factory=ResourceUsage, validation_alias=AliasPath("resources", "localStorage")
    )
    ipv4_free: int = Field(
        default=0,
        validation_alias=AliasPath("resources", "network", "total", "ipv4", "free"),
    )

    @property
    def eligible(self) -> bool:
        """Counts toward capacity: enabled, commissioned and not prohibited (WHMCS rule)."""
        return self.enabled and bool(self.commissioned) and not self.prohibit


class GroupCapacity(BaseModel):
    """Free capacity of a hypervisor group, summed over its eligible hypervisors."""

    model_config = ConfigDict(frozen=True)

    group_id: int
    hypervisors: int
    memory_free_mb: int
    storage_free_gb: int
    ipv4_free: int
    servers_free: int
    servers_limited: bool  # False when a hypervisor reports no server limit (max 0 or absent)
    largest_memory_free_mb: int
    largest_storage_free_gb: int

    @classmethod
    def from_rows(cls, group_id: int, rows: list[HypervisorResources]) -> GroupCapacity:
        usable = [r for r in rows if r.eligible]
        return cls(
            group_id=group_id,
            hypervisors=len(usable),
            memory_free_mb=int(sum(r.memory_mb.free for r in usable)),
            storage_free_gb=int(sum(r.storage_gb.free for r in usable)),
            ipv4_free=sum(r.ipv4_free for r in usable),
            servers_free=int(sum(r.servers.free for r in usable)),
            servers_limited=bool(usable) and all(r.servers.max > 0 for r in usable),
            largest_memory_free_mb=int(max((r.memory_mb.free for r in usable), default=0)),
            largest_storage_free_gb=int(max((r.storage_gb.free for r in usable), default=0)),
        )


class Package(_PanelModel):
    id: int
    name: EmptyStr = ""
    enabled: bool = True
    memory_mb: int | None = Field(default=None, alias="memory")
    storage_gb: int | None = Field(default=None, alias="primaryStorage")
    traffic_gb: int | None = Field(default=None, alias="traffic")
    cpu_cores: int | None = Field(default=None, alias="cpuCores")
    network_speed_in: int | None = Field(default=None, alias="primaryNetworkSpeedIn")
    network_speed_out: int | None = Field(default=None, alias="primaryNetworkSpeedOut")
    primary_network_profile: int | None = Field(default=None, alias="primaryNetworkProfile")
    primary_storage_profile: int | None = Field(default=None, alias="primaryStorageProfile")


class OsTemplate(_PanelModel):
    id: int
    name: EmptyStr = ""
    version: EmptyStr = ""
    variant: EmptyStr = ""
    eol: bool = False
    group: EmptyStr = ""

    @property
    def label(self) -> str:
        """ "Ubuntu 22.04", with the variant when there is one."""
        return " ".join(p for p in (self.name, self.version, self.variant) if p)


class SshKey(_PanelModel):
    id: int
    name: EmptyStr = ""
    type: EmptyStr = ""
    enabled: bool = True


class User(_PanelModel):
    id: int
    name: EmptyStr = ""
    email: EmptyStr = ""
    ext_relation_id: int | str | None = Field(default=None, alias="extRelationId")


class QueueTask(_PanelModel):
    """A queued panel job (power actions, VNC) from `GET /queue/{id}`."""

    id: int
    action: EmptyStr = ""
    server_id: int | None = Field(default=None, alias="serverId")
    progress: int = 0
    failed: bool = False
    finished: Timestamp = None
    error: EmptyStr = Field(
        default="", validation_alias=AliasPath("errors", "exception", "message")
    )

    @property
    def done(self) -> bool:
        return self.failed or self.finished is not None


class TrafficMonth(_PanelModel):
    """One month of traffic; rx/tx/total are bytes, limit is GB (units UNKNOWN in the spec)."""

    month: int | str | None = None
    start: Timestamp = None
    end: Timestamp = None
    rx: int = 0
    tx: int = 0
    total: int = 0
    limit_gb: float = Field(default=0, alias="limit")


class VncSession(_PanelModel):
    """VNC connection details; the password and wss token are secrets."""

    ip: EmptyStr = ""
    hostname: EmptyStr = ""
    port: int | None = None
    enabled: bool = False
    password: SecretStr | None = None
    wss_token: SecretStr | None = Field(default=None, validation_alias=AliasPath("wss", "token"))
    wss_url: SecretStr | None = Field(default=None, validation_alias=AliasPath("wss", "url"))
    queue_id: int | None = None


class CreateServerBody(_PanelModel):
    """`POST /servers` body; `hypervisor_group_id` is sent as `hypervisorId` (a GROUP id, §2.3).

    Strict: a string or bool where the panel wants an integer id is a bug, not something to
    coerce quietly.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)

    package_id: int = Field(alias="packageId")
    user_id: int = Field(alias="userId")
    hypervisor_group_id: int = Field(alias="hypervisorId")
    ipv4: int | None = None
    storage_gb: int | None = Field(default=None, alias="storage")
    traffic_gb: int | None = Field(default=None, alias="traffic")
    memory_mb: int | None = Field(default=None, alias="memory")
    cpu_cores: int | None = Field(default=None, alias="cpuCores")
    network_speed_inbound_kbs: int | None = Field(default=None, alias="networkSpeedInbound")
    network_speed_outbound_kbs: int | None = Field(default=None, alias="networkSpeedOutbound")
    storage_profile: int | None = Field(default=None, alias="storageProfile")
    network_profile: int | None = Field(default=None, alias="networkProfile")
    firewall_rulesets: list[int] | None = Field(default=None, alias="firewallRulesets")
    hypervisor_asset_groups: list[int] | None = Field(default=None, alias="hypervisorAssetGroups")
    additional_storage1_enable: bool | None = Field(default=None, alias="additionalStorage1Enable")
    additional_storage1_profile: int | None = Field(default=None, alias="additionalStorage1Profile")
    additional_storage1_capacity_gb: int | None = Field(
        default=None, alias="additionalStorage1Capacity"
    )
    additional_storage2_enable: bool | None = Field(default=None, alias="additionalStorage2Enable")
    additional_storage2_profile: int | None = Field(default=None, alias="additionalStorage2Profile")
    additional_storage2_capacity_gb: int | None = Field(
        default=None, alias="additionalStorage2Capacity"
    )

    def to_json(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True)


class BuildServerBody(_PanelModel):
    """`POST /servers/{id}/build` body; `ssh_key_ids` are ids of keys stored in VirtFusion."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)

    operating_system_id: int = Field(alias="operatingSystemId")
    name: str | None = None
    hostname: str | None = None
    ssh_key_ids: list[int] | None = Field(default=None, alias="sshKeys")
    vnc: bool | None = None
    ipv6: bool | None = None
    email: bool | None = None
    swap: int | float | None = None

    def to_json(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True)
