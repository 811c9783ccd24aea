"""The plain data every request message is built from; pure, no Slack objects or I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.store.records import (
    IN_FLIGHT_INSTANCE_STATES,
    InstanceRecord,
    InstanceState,
    RequestRecord,
    RequestState,
)

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
    plan = record.plan or {}
    ordered = sorted(instances, key=lambda i: (i.position, i.id))
    if ordered:
        servers = tuple(_line(i) for i in ordered)
    else:
        servers = tuple(_planned_line(s) for s in _mappings(plan.get("servers")))
    return RequestSummary(
        request_id=record.id,
        human_id=record.human_id,
        project_name=record.project_name,
        requester=record.requester,
        source=record.source,
        state=record.state,
        channel=record.slack_channel,
        package_name=_str(plan, "package_name"),
        servers=servers,
        warnings=tuple(w for w in _list(plan.get("warnings")) if isinstance(w, str)),
        decided_by=record.decided_by,
        decided_at=record.decided_at,
        decision_note=record.decision_note,
        expires_at=record.expires_at,
        created_at=record.created_at,
        cancel_requested=record.cancel_requested,
        counts=_count(servers),
    )


def _line(instance: InstanceRecord) -> ServerLine:
    spec = instance.spec
    return ServerLine(
        name=instance.name,
        group=_str(spec, "group_name"),
        os=instance.os_name or _str(spec, "os_label"),
        memory_mb=_int(spec, "memory_mb"),
        disk_gb=_int(spec, "disk_gb"),
        cpu=_int(spec, "cpu_cores"),
        state=instance.state,
        server_id=instance.server_id,
        ipv4=tuple(instance.ipv4),
        error=instance.error,
    )


def _planned_line(spec: Mapping[str, object]) -> ServerLine:
    return ServerLine(
        name=_str(spec, "name") or "?",
        group=_str(spec, "group_name"),
        os=_str(spec, "os_label"),
        memory_mb=_int(spec, "memory_mb"),
        disk_gb=_int(spec, "disk_gb"),
        cpu=_int(spec, "cpu_cores"),
        state=InstanceState.PLANNED,
        server_id=None,
        ipv4=(),
        error=None,
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


def _str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _int(data: Mapping[str, object], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _mappings(value: object) -> list[Mapping[str, object]]:
    return [v for v in _list(value) if isinstance(v, Mapping)]
