"""Turn a request plus what the panel told us into a Plan of exact API calls; pure, no I/O.

Every request field is either mapped to an API field, rejected with the reason, or accepted with
a warning shown in the plan (see docs/field-mapping.md). Placement is per hypervisor *group*:
`POST /servers` takes a group id in `hypervisorId` and the panel picks the hypervisor.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, field_serializer

from bot.provisioning.durations import format_duration
from bot.provisioning.errors import PlanError
from bot.provisioning.lookup import match_key, match_template
from bot.provisioning.placement import (
    GroupChoice,
    Need,
    PassedOver,
    Room,
    no_group_left,
    resolve_groups,
    route_text,
)
from bot.provisioning.request import InstanceRequest, Problem, ProvisionRequest, expand_servers
from bot.virtfusion import (
    BuildServerBody,
    CreateServerBody,
    GroupCapacity,
    Hypervisor,
    HypervisorGroup,
    OsTemplate,
    Package,
    SshKey,
)

__all__ = [
    "KBPS_PER_MBPS",
    "EngineDefaults",
    "GroupTotals",
    "PanelFacts",
    "Plan",
    "ServerPlan",
    "VolumePlan",
    "make_plan",
    "match_template",
    "render_plan_text",
    "resolve_group_list",
]

KBPS_PER_MBPS = 125  # the API's network speeds are kB/s (SPEC): 1 Mbps = 1000 kbit/s = 125 kB/s

# ASCII digits only: str.isdigit() is also true for "²", which int() rejects.
_ID = re.compile(r"[0-9]+")

PROFILE_FROM_REQUEST = "request network.profile_id"
PROFILE_FROM_ENV = "VIRTFUSION_NETWORK_PROFILE_ID"
PROFILE_FROM_PACKAGE = "package default"


@dataclass(frozen=True)
class EngineDefaults:
    """Operator settings that planning uses."""

    user_id: int
    package_id: int
    default_group_id: int | None = None
    default_network_profile_id: int | None = None
    failover_group_ids: tuple[int, ...] = ()  # tried in order after the default group


@dataclass
class PanelFacts:
    """What the planner learned from the panel for one request; filled by `planner.py`."""

    package: Package
    groups: list[HypervisorGroup]
    templates: list[OsTemplate]
    ssh_keys: list[SshKey]
    hypervisors: dict[int, Hypervisor | None] = field(default_factory=dict)  # None: no such id
    capacity: dict[int, GroupCapacity] = field(default_factory=dict)
    # (instance index, group id) → the panel's words when its dry run refused that pair
    refused: dict[tuple[int, int], str] = field(default_factory=dict)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VolumePlan(_Frozen):
    name: str
    size_gb: int
    mount_point: str | None = None


class ServerPlan(_Frozen):
    """One server: where it goes, what it gets, and the exact create and build bodies."""

    name: str
    instance_index: int
    group_id: int
    group_name: str
    hypervisor_hint: str | None = None
    os_id: int
    os_label: str
    ssh_key_name: str | None = None
    ssh_key_id: int | None = None
    memory_mb: int
    disk_gb: int
    cpu_cores: int
    ipv4: int | None = None
    bandwidth_mbps: int | None = None
    network_profile: int | None = None
    network_profile_source: str
    firewall_rulesets: list[int] | None = None
    volumes: list[VolumePlan] = []
    lifetime_s: int | None = None  # expires this long after it is built; None: never
    create_body: CreateServerBody
    build_body: BuildServerBody
    # Failover: the groups still to try, in order, when the panel refuses the create (422),
    # and the groups passed over so far with why (at planning, then at create time).
    fallback_groups: list[GroupChoice] = []
    passed_over: list[PassedOver] = []

    @property
    def route(self) -> str | None:
        """Why the server goes where it goes ("Frankfurt: 1 IPv4 left → Prague"), or None."""
        return route_text(self.passed_over, self.group_name)

    @property
    def need(self) -> Need:
        """What the server takes from its group (an unset ipv4 counts as the usual one)."""
        return Need(
            memory_mb=self.memory_mb,
            disk_gb=self.disk_gb + sum(v.size_gb for v in self.volumes),
            ipv4=1 if self.ipv4 is None else self.ipv4,
        )

    def failed_over(self, reason: str) -> ServerPlan:
        """This plan moved to its next fallback group after the panel refused `reason` here."""
        following, *rest = self.fallback_groups
        refused = PassedOver(
            group_id=self.group_id, group_name=self.group_name, reason=reason, stage="create"
        )
        return self.in_group(following, rest, [*self.passed_over, refused])

    def in_group(
        self, group: GroupChoice, fallback: list[GroupChoice], passed_over: list[PassedOver]
    ) -> ServerPlan:
        """This plan in `group`, with the groups still to try and those passed over."""
        body = self.create_body.model_copy(update={"hypervisor_group_id": group.id})
        return self.model_copy(
            update={
                "group_id": group.id,
                "group_name": group.name,
                "create_body": body,
                "fallback_groups": fallback,
                "passed_over": passed_over,
            }
        )

    @field_serializer("create_body", "build_body")
    def _panel_json(self, body: CreateServerBody | BuildServerBody) -> dict[str, object]:
        # Stored as the panel receives it (camelCase, no nulls); read back by alias.
        return body.to_json()


class GroupTotals(_Frozen):
    group_id: int
    group_name: str
    servers: int
    memory_mb: int
    disk_gb: int
    ipv4: int


class Plan(_Frozen):
    """Everything vfbot will do for a request, decided before anything is created."""

    project_name: str
    package_id: int
    package_name: str
    owner_user_id: int
    servers: list[ServerPlan]
    groups: list[GroupTotals]
    warnings: list[str] = []

    @property
    def total_memory_mb(self) -> int:
        return sum(s.memory_mb for s in self.servers)

    @property
    def total_disk_gb(self) -> int:
        return sum(s.disk_gb + sum(v.size_gb for v in s.volumes) for s in self.servers)


# -- resolution helpers -------------------------------------------------------------------------


def resolve_group_list(
    instance: InstanceRequest, index: int, facts: PanelFacts, defaults: EngineDefaults
) -> tuple[list[HypervisorGroup], list[Problem], list[str]]:
    """The groups an instance entry may go to, in order, with problems and warnings."""
    return resolve_groups(
        instance,
        index,
        facts.groups,
        facts.hypervisors,
        defaults.default_group_id,
        defaults.failover_group_ids,
    )


# -- the plan -----------------------------------------------------------------------------------


def make_plan(request: ProvisionRequest, facts: PanelFacts, defaults: EngineDefaults) -> Plan:
    """Decide every server of `request`; raise PlanError listing every problem found."""
    problems: list[Problem] = []
    warnings: list[str] = []
    package = facts.package
    resolved: dict[int, _Resolved] = {}
    for index, instance in enumerate(request.instances):
        before = len(problems)
        path = f"instances[{index}]"
        groups, group_problems, group_warnings = resolve_group_list(
            instance, index, facts, defaults
        )
        problems += group_problems
        warnings += group_warnings
        template = match_template(instance.template, facts.templates)
        if isinstance(template, str):
            problems.append(Problem(f"{path}.template", template))
        elif template.eol:
            warnings.append(f"{instance.name}: {template.label} is end-of-life")
        key: SshKey | None = None
        if instance.ssh_key_name is not None:
            key = match_key(instance.ssh_key_name, facts.ssh_keys)
            if key is None:
                names = ", ".join(sorted(k.name for k in facts.ssh_keys)) or "(none)"
                problems.append(
                    Problem(
                        f"{path}.ssh_key_name",
                        f"no SSH key named {instance.ssh_key_name!r} for VirtFusion user "
                        f"{defaults.user_id}; keys: {names}. Add the key in VirtFusion or fix "
                        "the name",
                    )
                )
            elif not key.enabled:
                problems.append(
                    Problem(f"{path}.ssh_key_name", f"SSH key {key.name!r} is disabled")
                )
        else:
            warnings.append(
                f"{instance.name}: no ssh_key_name, so the server gets no SSH key; the root "
                "password is only in the VirtFusion panel (vfbot never shows it)"
            )
        resources = instance.resources
        sizes = {
            "memory": (resources.memory if resources else None) or package.memory_mb,
            "disk": (resources.disk if resources else None) or package.storage_gb,
            "cpu": (resources.cpu if resources else None) or package.cpu_cores,
        }
        for name, value in sizes.items():
            if value is None:
                problems.append(
                    Problem(
                        f"{path}.resources.{name}",
                        f"not given and package {package.name} ({package.id}) has no default; "
                        "set it in the request",
                    )
                )
        profile, source = _network_profile(instance, defaults, package)
        if profile is None and not package.primary_network_profile:
            problems.append(
                Problem(
                    f"{path}.network.profile_id",
                    "no network profile: the request has no network.profile_id, "
                    "VIRTFUSION_NETWORK_PROFILE_ID is not set and package "
                    f"{package.name} ({package.id}) has no primary network profile; set one",
                )
            )
        for volume in instance.volumes:
            applied = "its name and mount point are" if volume.mount_point else "its name is"
            warnings.append(
                f"{instance.name}: volume {volume.name!r} ({volume.size_gb} GB) is attached as an "
                f"extra disk; VirtFusion does not format or mount it, so {applied} not applied"
            )
        if len(problems) == before and groups and not isinstance(template, str):
            resolved[index] = _Resolved(
                groups=groups,
                template=template,
                key=key,
                memory_mb=int(sizes["memory"] or 0),
                disk_gb=int(sizes["disk"] or 0),
                cpu_cores=int(sizes["cpu"] or 0),
                profile=profile,
                profile_source=source,
            )
    if problems:
        raise PlanError(problems)

    drafts = [
        _server_plan(
            planned.name,
            planned.instance_index,
            planned.instance,
            resolved[planned.instance_index],
            resolved[planned.instance_index].groups[0],
            facts,
            defaults,
        )
        for planned in expand_servers(request)
    ]
    # Servers with one group have no choice: they take their room first, then the others go,
    # in request order, to the first group of their list with room left.
    ordered = sorted(drafts, key=lambda d: len(resolved[d.instance_index].groups) > 1)
    rooms = {group_id: Room.of(capacity) for group_id, capacity in facts.capacity.items()}
    placed_by_name: dict[str, ServerPlan] = {}
    for draft in ordered:
        placed = _place(draft, resolved[draft.instance_index].groups, rooms, facts.refused)
        if isinstance(placed, ServerPlan):
            placed_by_name[draft.name] = placed
        elif all(p.path != placed.path for p in problems):  # one problem per entry
            problems.append(placed)
    if problems:
        raise PlanError(problems)
    servers = [placed_by_name[d.name] for d in drafts]
    totals = _group_totals(servers)
    problems += _capacity_problems(request, servers, totals, facts)
    if problems:
        raise PlanError(problems)
    return Plan(
        project_name=request.project_name,
        package_id=package.id,
        package_name=package.name,
        owner_user_id=defaults.user_id,
        servers=servers,
        groups=totals,
        warnings=list(dict.fromkeys(warnings)),
    )


def _network_profile(
    instance: InstanceRequest, defaults: EngineDefaults, package: Package
) -> tuple[int | None, str]:
    """The seed's three steps on the real API: request, then setting, then the package's own."""
    if instance.network is not None and instance.network.profile_id is not None:
        return instance.network.profile_id, PROFILE_FROM_REQUEST
    if defaults.default_network_profile_id is not None:
        return defaults.default_network_profile_id, PROFILE_FROM_ENV
    return None, PROFILE_FROM_PACKAGE


@dataclass(frozen=True)
class _Resolved:
    """One instance entry with every panel lookup settled."""

    groups: list[HypervisorGroup]  # in order of preference
    template: OsTemplate
    key: SshKey | None
    memory_mb: int
    disk_gb: int
    cpu_cores: int
    profile: int | None
    profile_source: str


def _server_plan(
    name: str,
    index: int,
    instance: InstanceRequest,
    info: _Resolved,
    group: HypervisorGroup,
    facts: PanelFacts,
    defaults: EngineDefaults,
) -> ServerPlan:
    network = instance.network
    ipv4 = None if network is None or network.public_ip is None else int(network.public_ip)
    bandwidth = network.bandwidth if network else None
    speed = bandwidth * KBPS_PER_MBPS if bandwidth is not None else None
    resources = instance.resources
    volumes = [
        VolumePlan(name=v.name, size_gb=v.size_gb, mount_point=v.mount_point)
        for v in instance.volumes
    ]
    first = volumes[0] if volumes else None
    second = volumes[1] if len(volumes) > 1 else None
    create = CreateServerBody(
        package_id=facts.package.id,
        user_id=defaults.user_id,
        hypervisor_group_id=group.id,
        ipv4=ipv4,
        memory_mb=resources.memory if resources else None,
        storage_gb=resources.disk if resources else None,
        cpu_cores=resources.cpu if resources else None,
        network_speed_inbound_kbs=speed,
        network_speed_outbound_kbs=speed,
        network_profile=info.profile,
        firewall_rulesets=network.firewall_rulesets if network else None,
        additional_storage1_enable=True if first else None,
        additional_storage1_capacity_gb=first.size_gb if first else None,
        additional_storage2_enable=True if second else None,
        additional_storage2_capacity_gb=second.size_gb if second else None,
    )
    build = BuildServerBody(
        operating_system_id=info.template.id,
        name=name,
        hostname=name,
        ssh_key_ids=[info.key.id] if info.key else None,
    )
    hint = None
    if instance.hypervisor_id is not None:
        hypervisor = facts.hypervisors.get(instance.hypervisor_id)
        hint = hypervisor.name if hypervisor else None
    return ServerPlan(
        name=name,
        instance_index=index,
        group_id=group.id,
        group_name=group.name,
        hypervisor_hint=hint,
        os_id=info.template.id,
        os_label=info.template.label,
        ssh_key_name=info.key.name if info.key else None,
        ssh_key_id=info.key.id if info.key else None,
        memory_mb=info.memory_mb,
        disk_gb=info.disk_gb,
        cpu_cores=info.cpu_cores,
        ipv4=ipv4,
        bandwidth_mbps=bandwidth,
        network_profile=info.profile,
        network_profile_source=info.profile_source,
        firewall_rulesets=network.firewall_rulesets if network else None,
        volumes=volumes,
        create_body=create,
        build_body=build,
    )


def _place(
    draft: ServerPlan,
    groups: Sequence[HypervisorGroup],
    rooms: dict[int, Room],
    refused: dict[tuple[int, int], str],
) -> ServerPlan | Problem:
    """`draft` in the first of `groups` with room for it (taking that room), or why none has.

    A single group is not judged here: `_capacity_problems` explains a lack there over the
    whole request, as before failover existed.
    """
    index = draft.instance_index
    need = draft.need
    passed: list[PassedOver] = []
    for position, group in enumerate(groups):
        room = rooms.get(group.id)
        words = refused.get((index, group.id))
        if words is not None:
            lack: str | None = f"the panel refused it: “{words}”"
        else:
            lack = room.lacks(need) if room is not None and len(groups) > 1 else None
        if lack is not None:
            passed.append(PassedOver(group_id=group.id, group_name=group.name, reason=lack))
            continue
        if room is not None:
            room.take(need)
        later = [
            GroupChoice(id=g.id, name=g.name)
            for g in groups[position + 1 :]
            if (index, g.id) not in refused
        ]
        return draft.in_group(GroupChoice(id=group.id, name=group.name), later, passed)
    return Problem(f"instances[{index}].hypervisor_group", no_group_left(draft.name, passed))


def _group_totals(servers: Sequence[ServerPlan]) -> list[GroupTotals]:
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    names: dict[int, str] = {}
    for server in servers:
        row = sums[server.group_id]
        names[server.group_id] = server.group_name
        row[0] += 1
        row[1] += server.memory_mb
        row[2] += server.disk_gb + sum(v.size_gb for v in server.volumes)
        row[3] += 1 if server.ipv4 is None else server.ipv4  # unset: assume the usual one
    return [
        GroupTotals(
            group_id=gid,
            group_name=names[gid],
            servers=r[0],
            memory_mb=r[1],
            disk_gb=r[2],
            ipv4=r[3],
        )
        for gid, r in sums.items()
    ]


def _capacity_problems(
    request: ProvisionRequest,
    servers: Sequence[ServerPlan],
    totals: Sequence[GroupTotals],
    facts: PanelFacts,
) -> list[Problem]:
    problems: list[Problem] = []
    for total in totals:
        cap = facts.capacity.get(total.group_id)
        if cap is None:
            continue
        where = f"hypervisor group {total.group_name}"
        checks = [
            ("memory", cap.memory_free_mb, total.memory_mb, "MB"),
            # Local storage only: `otherStorage[]` pools are not counted (HypervisorResources).
            ("local disk", cap.storage_free_gb, total.disk_gb, "GB"),
            ("IPv4 addresses", cap.ipv4_free, total.ipv4, ""),
        ]
        if cap.servers_limited:  # "no limit" is not documented: only check real limits
            checks.append(("server slots", cap.servers_free, total.servers, ""))
        for what, free, needed, unit in checks:
            if needed > free:
                problems.append(
                    Problem(
                        "instances",
                        f"not enough {what} in {where}: {_qty(free, unit)} free, this request "
                        f"needs {_qty(needed, unit)} for {total.servers} server(s); ask for "
                        "fewer or smaller servers, or use another hypervisor_group",
                    )
                )
        for server in servers:
            if server.group_id != total.group_id:
                continue
            if (
                server.memory_mb > cap.largest_memory_free_mb
                and total.memory_mb <= cap.memory_free_mb
            ):
                problems.append(
                    Problem(
                        f"instances[{server.instance_index}].resources.memory",
                        f"no single hypervisor in {where} has {server.memory_mb:,} MB free "
                        f"(largest free: {cap.largest_memory_free_mb:,} MB)",
                    )
                )
                break
    return problems


def _qty(value: int, unit: str) -> str:
    return f"{value:,} {unit}".strip()


# -- rendering ----------------------------------------------------------------------------------


def render_plan_text(plan: Plan) -> str:
    """The plan as plain text for the CLI (Slack renders its own blocks from the same data)."""
    lines = [
        f"Project {plan.project_name}: {len(plan.servers)} server(s), package "
        f"{plan.package_name} ({plan.package_id}), owner user {plan.owner_user_id}",
    ]
    for total in plan.groups:
        lines.append(
            f"  group {total.group_name} (id {total.group_id}): {total.servers} server(s), "
            f"{total.memory_mb:,} MB memory, {total.disk_gb:,} GB disk, {total.ipv4} IPv4"
        )
    for server in plan.servers:
        profile = (
            f"profile {server.network_profile} ({server.network_profile_source})"
            if server.network_profile is not None
            else "profile: package default"
        )
        extras = [f"{v.size_gb} GB volume {v.name}" for v in server.volumes]
        if server.bandwidth_mbps:
            extras.append(f"{server.bandwidth_mbps} Mbps")
        if server.ssh_key_name:
            extras.append(f"key {server.ssh_key_name}")
        if server.lifetime_s:
            extras.append(f"expires {format_duration(server.lifetime_s)} after it is built")
        lines.append(
            f"  - {server.name}: {server.os_label}, {server.cpu_cores} CPU, "
            f"{server.memory_mb:,} MB, {server.disk_gb} GB, {server.group_name}, {profile}"
            + (", " + ", ".join(extras) if extras else "")
        )
        if server.route:
            lines.append(f"      placed: {server.route}")
    for warning in plan.warnings:
        lines.append(f"  ! {warning}")
    return "\n".join(lines)
