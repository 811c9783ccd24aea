"""Pydantic models of what vfbot reads from and sends to the panel: only the fields it uses.

The spec declares no response schemas (every 2xx is `{type: object, properties: {}}` plus at
most an example), so a model here names only the fields vfbot reads and ignores the rest: a
field vfbot never reads cannot fail a response, whatever the panel puts in it. A field vfbot
does read fails validation, and `_sansio` names the endpoint and the field. Rows of sub-lists
that are only shown (the IP addresses of a server's interfaces) are dropped one by one when
unreadable, with a debug log, instead of failing the whole server.

Secrets the panel returns are never modelled as plain strings: the build response's
`settings.decryptedPassword` is not a field at all (so it is dropped on parsing), and VNC
credentials are `SecretStr`, which never shows in a repr or a log line.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
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
    ValidationInfo,
    model_validator,
)

__all__ = [
    "BuildPhase",
    "BuildServerBody",
    "CreateServerBody",
    "GroupCapacity",
    "Hypervisor",
    "HypervisorGroup",
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
    "VncSession",
    "template_label",
]

logger = logging.getLogger("bot.virtfusion")

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


def _int_to_flag(value: object) -> object:
    return value != 0 if isinstance(value, int) and not isinstance(value, bool) else value


# A yes/no the panel sends as a boolean in one place and an integer in another (`commissioned`
# is `true` in group resources and `3` on hypervisors): any non-zero integer is yes.
Flag = Annotated[bool, BeforeValidator(_int_to_flag)]


class _PanelModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


def _endpoint(info: ValidationInfo) -> str:
    """The `METHOD /path` being parsed, when `_sansio` passed it as validation context."""
    context = info.context
    if isinstance(context, Mapping) and isinstance(context.get("endpoint"), str):
        return str(context["endpoint"])
    return "a panel answer"


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
    """The sizes a server was given (`settings.resources`, or `resources` on per-user rows)."""

    memory_mb: int | None = Field(default=None, alias="memory")
    storage_gb: int | None = Field(default=None, alias="storage")
    cpu_cores: int | None = Field(default=None, alias="cpuCores")


class GroupRef(_PanelModel):
    """A hypervisor group as nested in another object; the server object gives no `id`."""

    id: int | None = None
    name: EmptyStr = ""


class HypervisorRef(_PanelModel):
    """The hypervisor nested in the single-server object: its name and its group's name."""

    name: EmptyStr = ""
    group: GroupRef | None = None


class Server(_PanelModel):
    """A server as the panel reports it (single object, per-user row or simple list row).

    `os_template_id` is `settings.osTemplateInstallId`, present only on the single object and
    the build answer; the spec has no OS name anywhere (list rows carry only `os.screen`, a
    screenshot), so names come from the template list (`template_label`).
    """

    id: int
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
    created: Timestamp = None
    resources: ResourceSpec | None = None
    os_template_id: int | None = None
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    hypervisor: HypervisorRef | None = None
    running: bool | None = None  # None: the panel's answer does not prove either way

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: object, info: ValidationInfo) -> object:
        """Bring the panel's nested and variant shapes into one flat form."""
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        owner = out.get("owner")
        if isinstance(owner, Mapping):  # the single object nests the owner; list rows give an id
            out["owner"] = owner.get("id")
        settings = out.pop("settings", None)  # holds decryptedPassword after a build: never keep
        if isinstance(settings, Mapping):
            if "resources" not in out:
                out["resources"] = settings.get("resources")
            # The create example has `osTemplateInstallId: 0` before any build: 0 is "none".
            template_id = settings.get("osTemplateInstallId")
            out["os_template_id"] = None if template_id in (0, None) else template_id
        out["ipv4"], out["ipv6"] = _addresses(out.get("network"), _endpoint(info), out.get("id"))
        out["running"] = _running(out.get("remoteState"))
        return out

    @property
    def phase(self) -> BuildPhase:
        """The build phase; a failure wins, and either of two fields can say so.

        `buildFailed` is the documented flag, but the official `GET /servers/user/{id}` example
        shows a failed build as `commissionStatus: 2, state: "failed", buildFailed: false`, so
        `state == "failed"` counts too (docs/virtfusion-api.md, "Build state").
        """
        if self.build_failed or self.state.casefold() == "failed":
            return BuildPhase.FAILED
        if self.commission_status >= 3 or self.state == "complete":
            return BuildPhase.COMPLETE
        if self.commission_status == 2:
            return BuildPhase.BUILDING
        if self.commission_status == 1 or self.state == "queued":
            return BuildPhase.QUEUED
        return BuildPhase.ALLOCATED

    @property
    def failure_signal(self) -> str:
        """Which field says the build failed: `buildFailed`, `state "failed"`, or ""."""
        if self.build_failed:
            return "buildFailed"
        return 'state "failed"' if self.state.casefold() == "failed" else ""

    @property
    def primary_ipv4(self) -> str | None:
        """The first IPv4 of the primary interface, as integrations read it."""
        return self.ipv4[0] if self.ipv4 else None

    @property
    def group_name(self) -> str:
        if self.hypervisor and self.hypervisor.group:
            return self.hypervisor.group.name
        return ""


def _running(remote: object) -> bool | None:
    """The power state, only when `remoteState` proves it.

    The spec's only example is `"remoteState": false`, from a request made with
    `remoteState=false`, so a bare boolean says nothing about power. What the panel returns for
    `remoteState=true` is undocumented; third-party code reads `remoteState.running`, so a
    boolean `running` inside an object is taken as proof. Anything else is unknown (None).
    """
    if isinstance(remote, Mapping):
        running = remote.get("running")
        if isinstance(running, bool):
            return running
    return None


def _addresses(
    network: object, endpoint: str, server_id: object
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """IPv4 addresses and IPv6 subnets of the primary interfaces; unreadable rows are dropped."""
    if not isinstance(network, Mapping):
        return (), ()
    v4: list[str] = []
    v6: list[str] = []
    interfaces = network.get("interfaces")
    for index, iface in enumerate(interfaces if isinstance(interfaces, list) else []):
        if not isinstance(iface, Mapping):
            continue
        where = f"{endpoint}: server {server_id} network.interfaces[{index}]"
        for row, entry in enumerate(_rows(iface.get("ipv4"))):
            address = entry.get("address") if isinstance(entry, Mapping) else None
            if isinstance(address, str) and address:
                v4.append(address)
            else:
                logger.debug("%s.ipv4[%d] has no readable address; skipped", where, row)
        for row, entry in enumerate(_rows(iface.get("ipv6"))):
            subnet = entry.get("subnet") if isinstance(entry, Mapping) else None
            cidr = entry.get("cidr") if isinstance(entry, Mapping) else None
            if isinstance(subnet, str) and subnet:
                v6.append(f"{subnet}/{cidr}" if isinstance(cidr, int) else subnet)
            else:
                logger.debug("%s.ipv6[%d] has no readable subnet; skipped", where, row)
    return tuple(v4), tuple(v6)


def _rows(value: object) -> list[object]:
    return value if isinstance(value, list) else []


class Hypervisor(_PanelModel):
    """A hypervisor (`GET /compute/hypervisors[/{id}]`): its name, its flags and its group."""

    id: int
    name: EmptyStr = ""
    enabled: bool = True
    maintenance: bool = False
    group: GroupRef | None = None

    @property
    def group_id(self) -> int | None:
        return self.group.id if self.group else None


class HypervisorGroup(_PanelModel):
    id: int
    name: EmptyStr = ""
    label: EmptyStr = ""
    enabled: bool = True
    default: bool = False


class ResourceUsage(_PanelModel):
    max: float = 0
    allocated: float = 0
    free: float = 0


class HypervisorResources(_PanelModel):
    """One row of `groups/{id}/resources`: a hypervisor and its capacity.

    Storage is `resources.localStorage` only; `resources.otherStorage[]` is not read. In the
    spec's example of this endpoint, otherStorage entries are shared datastores (Ceph RBD, FS,
    EC: `isDatastore: true`, `enabled: 0`) listed again under each hypervisor attached to
    them, with sizes up to 558,349,385 GB, and nothing in the API says which pool a package's
    storage profile puts new disks on. Summing them would count a shared pool once per
    hypervisor and invent capacity; picking one would be a guess. So disk capacity means local
    storage, and for servers on shared storage the panel's dry run decides
    (docs/virtfusion-api.md, "Capacity").
    """

    hypervisor_id: int = Field(validation_alias=AliasPath("hypervisor", "id"))
    enabled: bool = Field(default=True, validation_alias=AliasPath("hypervisor", "enabled"))
    prohibit: bool = Field(default=False, validation_alias=AliasPath("hypervisor", "prohibit"))
    commissioned: Flag = Field(
        default=True, validation_alias=AliasPath("hypervisor", "commissioned")
    )
    servers: ResourceUsage = Field(
        default_factory=ResourceUsage, validation_alias=AliasPath("resources", "servers")
    )
    memory_mb: ResourceUsage = Field(
        default_factory=ResourceUsage, validation_alias=AliasPath("resources", "memory")
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
        return self.enabled and self.commissioned and not self.prohibit


class GroupCapacity(BaseModel):
    """Free capacity of a hypervisor group, summed over its eligible hypervisors.

    Disk is local storage only (see `HypervisorResources`). IPv4 is summed although the spec's
    example reports 470 free on several hypervisors, which looks like one shared block seen from
    each of them; the dry run is the final word there too.
    """

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
    """A package: the defaults a create without sizes gets."""

    id: int
    name: EmptyStr = ""
    memory_mb: int | None = Field(default=None, alias="memory")
    storage_gb: int | None = Field(default=None, alias="primaryStorage")
    cpu_cores: int | None = Field(default=None, alias="cpuCores")
    primary_network_profile: int | None = Field(default=None, alias="primaryNetworkProfile")


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


def template_label(template_id: int | None, templates: Iterable[OsTemplate]) -> str:
    """The OS a server was built with: the template's label, `template 49` when the list lacks
    it (another package's template, or one since removed), "" when the panel gave no id."""
    if template_id is None:
        return ""
    found = next((t for t in templates if t.id == template_id), None)
    return found.label if found is not None else f"template {template_id}"


class SshKey(_PanelModel):
    id: int
    name: EmptyStr = ""
    enabled: bool = True


class QueueTask(_PanelModel):
    """A queued panel job (power actions) from `GET /queue/{id}`: is it over, and how."""

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

    start: Timestamp = None
    end: Timestamp = None
    rx: int = 0
    tx: int = 0
    total: int = 0
    limit_gb: float = Field(default=0, alias="limit")


class VncSession(_PanelModel):
    """VNC connection details; the password and the wss URL (it embeds a token) are secrets."""

    ip: EmptyStr = ""
    hostname: EmptyStr = ""
    port: int | None = None
    password: SecretStr | None = None
    wss_url: SecretStr | None = Field(default=None, validation_alias=AliasPath("wss", "url"))


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
