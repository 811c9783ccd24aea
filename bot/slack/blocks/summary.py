"""The plain data every request message is built from; pure, no Slack objects or I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    InstanceRecord,
    InstanceState,
    RequestRecord,
    RequestState,
)
from bot.provisioning.plan import Plan, ServerPlan

__all__ = ["RequestSummary", "ServerCounts", "ServerLine", "summarize"]


@dataclass(frozen=True, slots=True)
class ServerLine:
    """One server as shown to people; sizes are None when the stored spec lacks them."""

    name: str
    group: str | None
    os: str | None
    memory_mb: int | None
    disk_gb: int | None
    cpu: int | None
    state: InstanceState
    server_id: int | None
    ipv4: tuple[str, ...]
    error: str | None
    expires_at: datetime | None = None  # built: when its lifetime ends
    lifetime_s: int | None = None  # planned: how long after its build it expires
    route: str | None = None  # why it goes to its group: "Frankfurt: 1 IPv4 left → Prague"


@dataclass(frozen=True, slots=True)
class ServerCounts:
    """How many servers of a request are in each kind of state.

    `in_progress` counts servers still planned or in flight (creating, created, building).
    """

    total: int = 0
    built: int = 0
    failed: int = 0
    in_progress: int = 0
    cancelled: int = 0
    deleted: int = 0


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """A request and its servers, reduced to what messages show."""

    request_id: int
    human_id: str
    project_name: str
    requester: str
    source: str
    state: RequestState
    channel: str | None
    package_name: str | None
    servers: tuple[ServerLine, ...]
    warnings: tuple[str, ...]
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    expires_at: datetime | None
    created_at: datetime
    cancel_requested: bool
    counts: ServerCounts


def summarize(record: RequestRecord, instances: Sequence[InstanceRecord]) -> RequestSummary:
    """Reduce a stored request and its instances to a RequestSummary.

    Without instances (not stored yet), the servers come from the plan, all `planned`.
    """
    plan = _plan_of(record)
    ordered = sorted(instances, key=lambda i: (i.position, i.id))
    if ordered:
        servers = tuple(_line(i) for i in ordered)
    else:
        servers = tuple(_planned_line(s) for s in (plan.servers if plan else ()))
    return RequestSummary(
        request_id=record.id,
        human_id=record.human_id,
        project_name=record.project_name,
        requester=record.requester,
        source=record.source,
        state=record.state,
        channel=record.channel,
        package_name=plan.package_name if plan else None,
        servers=servers,
        warnings=tuple(plan.warnings) if plan else (),
        decided_by=record.decided_by,
        decided_at=record.decided_at,
        decision_note=record.decision_note,
        expires_at=record.expires_at,
        created_at=record.created_at,
        cancel_requested=record.cancel_requested,
        counts=_count(servers),
    )


def _plan_of(record: RequestRecord) -> Plan | None:
    """The stored plan, or None when there is none (or it no longer reads as one)."""
    if not record.plan:
        return None
    try:
        return Plan.model_validate(record.plan)
    except ValidationError:
        return None


def _line(instance: InstanceRecord) -> ServerLine:
    try:
        plan: ServerPlan | None = instance.plan
    except ValidationError:  # a spec that no longer reads as a plan: show what the row says
        plan = None
    return ServerLine(
        name=instance.name,
        group=(plan.group_name if plan else None) or None,
        os=instance.os_name or (plan.os_label if plan else None) or None,
        memory_mb=plan.memory_mb if plan else None,
        disk_gb=plan.disk_gb if plan else None,
        cpu=plan.cpu_cores if plan else None,
        state=instance.state,
        server_id=instance.server_id,
        ipv4=tuple(instance.ipv4),
        error=instance.error,
        expires_at=instance.expires_at if instance.state is InstanceState.BUILT else None,
        lifetime_s=plan.lifetime_s if plan else None,
        route=plan.route if plan else None,
    )


def _planned_line(plan: ServerPlan) -> ServerLine:
    return ServerLine(
        name=plan.name or "?",
        group=plan.group_name or None,
        os=plan.os_label or None,
        memory_mb=plan.memory_mb,
        disk_gb=plan.disk_gb,
        cpu=plan.cpu_cores,
        state=InstanceState.PLANNED,
        server_id=None,
        ipv4=(),
        error=None,
        lifetime_s=plan.lifetime_s,
        route=plan.route,
    )


def _count(servers: Sequence[ServerLine]) -> ServerCounts:
    def n(*states: InstanceState) -> int:
        return sum(1 for s in servers if s.state in states)

    return ServerCounts(
        total=len(servers),
        built=n(InstanceState.BUILT),
        failed=n(InstanceState.FAILED),
        in_progress=n(InstanceState.PLANNED, *IN_FLIGHT_INSTANCE_STATES),
        cancelled=n(InstanceState.CANCELLED),
        deleted=n(InstanceState.DELETED),
    )
