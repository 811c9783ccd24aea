"""Which hypervisor groups a server may go to, and the first of them with room; pure, no I/O.

`hypervisor_group` may be an ordered list (`["Frankfurt", "Prague"]`); without one, the default
group (`VIRTFUSION_HYPERVISOR_GROUP_ID`) is followed by `VIRTFUSION_FAILOVER_GROUP_IDS`. Room is
read from `GET /compute/hypervisors/groups/{id}/resources` (`GroupCapacity`) and shrinks as the
request's own servers are placed, in request order. A group passed over is remembered with the
reason (`PassedOver`), so the plan can say "Frankfurt: 1 IPv4 left → Prague" and a failure can
name every group tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.provisioning.request import InstanceRequest, Problem
from bot.virtfusion import GroupCapacity, Hypervisor, HypervisorGroup

__all__ = [
    "GroupChoice",
    "Need",
    "PassedOver",
    "Room",
    "find_group",
    "group_names",
    "no_group_left",
    "resolve_groups",
    "route_text",
]

# ASCII digits only: str.isdigit() is also true for "²", which int() rejects.
_ID = re.compile(r"[0-9]+")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GroupChoice(_Frozen):
    """A hypervisor group a server may still go to."""

    id: int
    name: str


class PassedOver(_Frozen):
    """A group a server did not go to, and why: `plan` (no room or the dry run refused it) or
    `create` (the panel refused the create with a 422, so nothing was created there)."""

    group_id: int
    group_name: str
    reason: str
    stage: Literal["plan", "create"] = "plan"


@dataclass(frozen=True, slots=True)
class Need:
    """What one server takes from its group: memory MB, disk GB (with volumes), IPv4 count."""

    memory_mb: int
    disk_gb: int
    ipv4: int


@dataclass(slots=True)
class Room:
    """A group's free capacity while a request is being placed; `take` counts a placed server.

    `largest_memory_free_mb` is the most free memory on one hypervisor. After a placement it is
    kept at most the group's total free memory: the panel picks the hypervisor, so which one
    shrank is unknown; the dry run and the create-time failover settle what this misjudges.
    """

    memory_free_mb: int
    storage_free_gb: int
    ipv4_free: int
    servers_free: int
    servers_limited: bool
    largest_memory_free_mb: int

    @classmethod
    def of(cls, capacity: GroupCapacity) -> Room:
        return cls(
            memory_free_mb=capacity.memory_free_mb,
            storage_free_gb=capacity.storage_free_gb,
            ipv4_free=capacity.ipv4_free,
            servers_free=capacity.servers_free,
            servers_limited=capacity.servers_limited,
            largest_memory_free_mb=capacity.largest_memory_free_mb,
        )

    def lacks(self, need: Need) -> str | None:
        """What this group lacks for one more server like `need`, in words; None if it fits."""
        if self.servers_limited and self.servers_free < 1:
            return "no server slots left"
        if need.memory_mb > self.memory_free_mb:
            return f"{_left(self.memory_free_mb)} MB memory left (needs {need.memory_mb:,} MB)"
        if need.memory_mb > self.largest_memory_free_mb:
            return (
                f"no single hypervisor has {need.memory_mb:,} MB memory free (largest: "
                f"{_left(self.largest_memory_free_mb)} MB)"
            )
        if need.disk_gb > self.storage_free_gb:
            return f"{_left(self.storage_free_gb)} GB disk left (needs {need.disk_gb:,} GB)"
        if need.ipv4 > self.ipv4_free:
            needs = "" if need.ipv4 == 1 else f" (needs {need.ipv4})"
            return f"{_left(self.ipv4_free)} IPv4 left{needs}"
        return None

    def take(self, need: Need) -> None:
        self.servers_free -= 1
        self.memory_free_mb -= need.memory_mb
        self.storage_free_gb -= need.disk_gb
        self.ipv4_free -= need.ipv4
        self.largest_memory_free_mb = min(self.largest_memory_free_mb, self.memory_free_mb)


def _left(value: int) -> str:
    return f"{max(value, 0):,}"


def route_text(passed_over: Sequence[PassedOver], group_name: str) -> str | None:
    """Why a server goes where it goes: "Frankfurt: 1 IPv4 left → Prague"; None when it goes to
    its first group."""
    if not passed_over:
        return None
    hops = [f"{p.group_name}: {p.reason}" for p in passed_over]
    return " → ".join([*hops, group_name])


def no_group_left(name: str, passed_over: Sequence[PassedOver]) -> str:
    """The failure when no group of a server's list can take it, naming each and its lack."""
    tried = "; ".join(f"{p.group_name}: {p.reason}" for p in passed_over)
    return (
        f"no hypervisor group in its list can take server {name} ({tried}); ask for a smaller "
        "server, add another group to hypervisor_group, or try again when there is room"
    )


# -- resolving the list -------------------------------------------------------------------------


def resolve_groups(
    instance: InstanceRequest,
    index: int,
    groups: Sequence[HypervisorGroup],
    hypervisors: dict[int, Hypervisor | None],
    default_group_id: int | None,
    failover_group_ids: Sequence[int] = (),
) -> tuple[list[HypervisorGroup], list[Problem], list[str]]:
    """The groups an instance entry may go to, in order, with problems and warnings."""
    path = f"instances[{index}]"
    field = f"{path}.hypervisor_group"
    problems: list[Problem] = []
    warnings: list[str] = []
    by_id = {g.id: g for g in groups}
    chosen: list[HypervisorGroup] = []
    wanted = instance.hypervisor_groups
    for item in wanted:
        group = find_group(item, groups)
        if group is None:
            problems.append(
                Problem(
                    field,
                    f"no hypervisor group {item!r} on the panel; use one of: "
                    + group_names(groups),
                )
            )
        elif group in chosen:
            problems.append(
                Problem(field, f"{item!r} is group {group.name}, which the list already names")
            )
        else:
            chosen.append(group)
    if instance.hypervisor_id is not None:
        hypervisor = hypervisors.get(instance.hypervisor_id)
        if hypervisor is None:
            problems.append(
                Problem(
                    f"{path}.hypervisor_id",
                    f"no hypervisor with id {instance.hypervisor_id} on the panel; see "
                    "`/vf hypervisors` or omit hypervisor_id and give hypervisor_group",
                )
            )
        else:
            via = by_id.get(hypervisor.group_id) if hypervisor.group_id is not None else None
            if via is None:
                problems.append(
                    Problem(
                        f"{path}.hypervisor_id",
                        f"hypervisor {hypervisor.name} ({hypervisor.id}) belongs to no known "
                        "hypervisor group; give hypervisor_group instead",
                    )
                )
            elif chosen and via not in chosen:
                listed = ", ".join(g.name for g in chosen)
                problems.append(
                    Problem(
                        f"{path}.hypervisor_id",
                        f"hypervisor {hypervisor.name} ({hypervisor.id}) is in group {via.name}, "
                        f"not in hypervisor_group {listed}; make them agree or drop one",
                    )
                )
            else:
                chosen = [via]  # a hypervisor pins its group: no failover
                state = " (it is in maintenance)" if hypervisor.maintenance else ""
                warnings.append(
                    f"{instance.name}: hypervisor_id {hypervisor.id} ({hypervisor.name}) selects "
                    f"group {via.name}{state}; VirtFusion places servers within a group, so the "
                    "panel picks the hypervisor and the server may land on another one"
                )
    if not wanted and instance.hypervisor_id is None:
        chosen, more = _default_groups(by_id, groups, field, default_group_id, failover_group_ids)
        problems += more
        warnings += [f"{instance.name}: {w}" for w in _failover_warnings(by_id, failover_group_ids)]
    for group in chosen:
        if not group.enabled:
            problems.append(
                Problem(
                    field,
                    f"hypervisor group {group.name} is disabled on the panel; pick another: "
                    + group_names(g for g in groups if g.enabled),
                )
            )
    return chosen, problems, warnings


def _default_groups(
    by_id: dict[int, HypervisorGroup],
    groups: Sequence[HypervisorGroup],
    field: str,
    default_group_id: int | None,
    failover_group_ids: Sequence[int],
) -> tuple[list[HypervisorGroup], list[Problem]]:
    """The default group, then the usable failover groups (unknown or disabled ones skipped)."""
    if default_group_id is None:
        return [], [
            Problem(
                field,
                "no hypervisor group given and VIRTFUSION_HYPERVISOR_GROUP_ID is not set; "
                "set hypervisor_group to one of: " + group_names(groups),
            )
        ]
    group = by_id.get(default_group_id)
    if group is None:
        return [], [
            Problem(
                field,
                f"VIRTFUSION_HYPERVISOR_GROUP_ID={default_group_id} is not a group on the panel; "
                "fix the setting or give hypervisor_group: " + group_names(groups),
            )
        ]
    chosen = [group]
    for group_id in failover_group_ids:
        extra = by_id.get(group_id)
        if extra is not None and extra.enabled and extra not in chosen:
            chosen.append(extra)
    return chosen, []


def _failover_warnings(
    by_id: dict[int, HypervisorGroup], failover_group_ids: Sequence[int]
) -> list[str]:
    warnings = []
    for group_id in failover_group_ids:
        group = by_id.get(group_id)
        if group is None:
            warnings.append(
                f"VIRTFUSION_FAILOVER_GROUP_IDS names group {group_id}, which is not on the "
                "panel; it is skipped"
            )
        elif not group.enabled:
            warnings.append(
                f"failover group {group.name} ({group.id}) is disabled on the panel; it is skipped"
            )
    return warnings


def find_group(wanted: str | int, groups: Sequence[HypervisorGroup]) -> HypervisorGroup | None:
    """The group `wanted` names: an id, or a name or label (case-insensitive)."""
    if isinstance(wanted, int):
        return next((g for g in groups if g.id == wanted), None)
    text = wanted.strip().casefold()
    if _ID.fullmatch(text):
        return next((g for g in groups if g.id == int(text)), None)
    return next((g for g in groups if text in (g.name.casefold(), g.label.casefold())), None)


def group_names(groups: Iterable[HypervisorGroup]) -> str:
    names = [f"{g.name} (id {g.id})" for g in groups]
    return ", ".join(names) if names else "(the panel has no groups)"
