"""Plain values the store returns (states, records, errors); no I/O, no ORM rows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "IN_FLIGHT_INSTANCE_STATES",
    "OPEN_OPERATION_STATES",
    "TERMINAL_INSTANCE_STATES",
    "TERMINAL_REQUEST_STATES",
    "AuditRecord",
    "EventRecord",
    "InstanceRecord",
    "InstanceState",
    "JsonDict",
    "NewInstance",
    "Operation",
    "OperationKind",
    "OperationState",
    "RequestNotFoundError",
    "RequestRecord",
    "RequestState",
    "ServerAlreadyClaimedError",
    "StoreError",
    "parse_human_id",
]

JsonDict = dict[str, object]
"""A JSON object as stored in a JSON column; the store treats its contents as opaque."""


class RequestState(StrEnum):
    """Lifecycle of a provisioning request."""

    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TERMINAL_REQUEST_STATES: frozenset[RequestState] = frozenset(
    {
        RequestState.COMPLETED,
        RequestState.PARTIALLY_FAILED,
        RequestState.FAILED,
        RequestState.REJECTED,
        RequestState.EXPIRED,
        RequestState.CANCELLED,
    }
)


class InstanceState(StrEnum):
    """Lifecycle of one server within a request."""

    PLANNED = "planned"
    CREATING = "creating"
    CREATE_UNKNOWN = "create_unknown"
    CREATED = "created"
    BUILDING = "building"
    BUILT = "built"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DELETED = "deleted"


TERMINAL_INSTANCE_STATES: frozenset[InstanceState] = frozenset(
    {InstanceState.BUILT, InstanceState.FAILED, InstanceState.CANCELLED, InstanceState.DELETED}
)

IN_FLIGHT_INSTANCE_STATES: frozenset[InstanceState] = frozenset(
    {
        InstanceState.CREATING,
        InstanceState.CREATE_UNKNOWN,
        InstanceState.CREATED,
        InstanceState.BUILDING,
    }
)


class StoreError(Exception):
    """Base class for expected failures raised by the store."""


class ServerAlreadyClaimedError(StoreError):
    """A panel server id is already recorded on another instance (server ids are unique)."""

    def __init__(self, server_id: int) -> None:
        super().__init__(f"server {server_id} is already claimed by another instance")
        self.server_id = server_id


class RequestNotFoundError(StoreError):
    """No request has the given id."""

    def __init__(self, request_id: int) -> None:
        super().__init__(f"request {request_id} does not exist")
        self.request_id = request_id


_HUMAN_ID = re.compile(r"(?:vf-)?([1-9][0-9]{0,17})", re.IGNORECASE)


def parse_human_id(text: str) -> int | None:
    """Return the request id in ``"VF-12"``, ``"vf-12"`` or ``"12"``, or None if it is not one."""
    match = _HUMAN_ID.fullmatch(text.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A provisioning request as stored; datetimes are timezone-aware UTC."""

    id: int
    key: str
    requester: str
    source: str
    project_name: str
    payload: JsonDict
    plan: JsonDict | None
    state: RequestState
    created_at: datetime
    updated_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    expires_at: datetime | None
    slack_channel: str | None
    slack_ts: str | None
    slack_notice_ts: str | None
    cancel_requested: bool
    delete_on_cancel: bool

    @property
    def human_id(self) -> str:
        """The id shown to people, e.g. ``VF-12``."""
        return f"VF-{self.id}"


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One server of a request as stored; datetimes are timezone-aware UTC."""

    id: int
    request_id: int
    position: int
    name: str
    state: InstanceState
    spec: JsonDict
    server_id: int | None
    hypervisor_id: int | None
    group_id: int | None
    ipv4: list[str]
    os_name: str | None
    error: str | None
    attempts: int
    intent_at: datetime | None
    build_started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    next_check_at: datetime | None
    updated_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewInstance:
    """Input to ``InstanceRepo.add_many``: one planned server."""

    position: int
    name: str
    spec: JsonDict


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One outbox event; ``id`` orders events."""

    id: int
    request_id: int
    instance_id: int | None
    kind: str
    payload: JsonDict
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit log entry."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    result: str
    detail: JsonDict


class OperationKind(StrEnum):
    """What a day-2 operation does."""

    DELETE = "delete"


class OperationState(StrEnum):
    """Lifecycle of a day-2 operation: decided once, then run once."""

    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    RUNNING = "running"  # claimed by one runner; the panel call is under way
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


OPEN_OPERATION_STATES: frozenset[OperationState] = frozenset(
    {OperationState.PENDING_APPROVAL, OperationState.APPROVED, OperationState.RUNNING}
)


@dataclass(frozen=True)
class Operation:
    """A day-2 action that needed (or needs) approval, e.g. deleting a server.

    Defined here so the store can return it; ``bot.provisioning.ops_model`` re-exports it.
    """

    id: int
    kind: OperationKind
    server_id: int
    server_name: str
    requester: str
    state: OperationState
    params: dict[str, object] = field(default_factory=dict)  # e.g. {"delay_min": 0}
    created_at: datetime | None = None
    expires_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    result: str | None = None
    request_id: int | None = None  # the create request the server came from, if any
    slack_channel: str | None = None
    slack_ts: str | None = None

    @property
    def human_id(self) -> str:
        """The id shown to people, e.g. ``OP-7``."""
        return f"OP-{self.id}"
