"""The domain's states and records: plain values the store returns and the services pass around.

No I/O and no surface wording. The store maps its rows to these (`bot.store`), the services move
them through their states (`requests`, `engine`, `servers`), and Slack and the CLI render them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from pydantic import ValidationError

from bot.provisioning.plan import ServerPlan

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
    "RequestRecord",
    "RequestState",
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


class OperationKind(StrEnum):
    """What a day-2 operation does."""

    DELETE = "delete"
    REBUILD = "rebuild"
    RESIZE = "resize"


class OperationState(StrEnum):
    """Lifecycle of a day-2 operation: decided once, then run once."""

    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    RUNNING = "running"  # claimed by one runner; the panel call is under way
    BUILDING = "building"  # a rebuild the panel accepted, followed until built or failed
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


OPEN_OPERATION_STATES: frozenset[OperationState] = frozenset(
    {
        OperationState.PENDING_APPROVAL,
        OperationState.APPROVED,
        OperationState.RUNNING,
        OperationState.BUILDING,
    }
)

_HUMAN_ID = re.compile(r"(?:vf-)?([1-9][0-9]{0,17})", re.IGNORECASE)


def parse_human_id(text: str) -> int | None:
    """Return the request id in ``"VF-12"``, ``"vf-12"`` or ``"12"``, or None if it is not one."""
    match = _HUMAN_ID.fullmatch(text.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A provisioning request as stored; datetimes are timezone-aware UTC.

    ``channel`` is the conversation the request was made in, as its surface names it (a Slack
    channel id); None for requests from the command line.
    """

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
    channel: str | None
    cancel_requested: bool
    delete_on_cancel: bool

    @property
    def human_id(self) -> str:
        """The id shown to people, e.g. ``VF-12``."""
        return f"VF-{self.id}"


@dataclass(frozen=True)
class InstanceRecord:
    """One server of a request as stored; datetimes are timezone-aware UTC.

    ``spec`` is the stored `ServerPlan`; read it typed through ``plan``.
    """

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
    # Lifetime: when the server expires (None: never), and for which expiry the reminder was
    # claimed and the expiry action taken (each once per expiry value).
    expires_at: datetime | None = None
    expiry_warned_for: datetime | None = None
    expiry_done_for: datetime | None = None

    @cached_property
    def plan(self) -> ServerPlan:
        """The server's plan (validated once per record)."""
        return ServerPlan.model_validate(self.spec)

    @property
    def human_request_id(self) -> str:
        """``VF-n`` of the request this server belongs to."""
        return f"VF-{self.request_id}"

    @property
    def group_label(self) -> str:
        """The planned group's name, else its id, else empty."""
        try:
            name = self.plan.group_name
        except ValidationError:  # a spec that no longer reads as a plan
            name = ""
        return name or (str(self.group_id) if self.group_id is not None else "")


@dataclass(frozen=True, slots=True)
class NewInstance:
    """Input to ``InstanceRepo.add_many``: one planned server."""

    position: int
    name: str
    spec: JsonDict


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One outbox event; ``id`` orders events within their stream (a request or an operation)."""

    id: int
    request_id: int | None
    instance_id: int | None
    kind: str
    payload: JsonDict
    created_at: datetime
    operation_id: int | None = None


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


@dataclass(frozen=True)
class Operation:
    """A day-2 action that needed (or needs) approval, e.g. deleting a server.

    ``channel`` is where it was asked for (as for requests); None from the command line.
    """

    id: int
    kind: OperationKind
    server_id: int
    server_name: str
    requester: str
    state: OperationState
    params: dict[str, object] = field(default_factory=dict)  # e.g. {"delay_min": 0}; JSON
    created_at: datetime | None = None
    expires_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    result: str | None = None
    request_id: int | None = None  # the create request the server came from, if any
    channel: str | None = None

    @property
    def human_id(self) -> str:
        """The id shown to people, e.g. ``OP-7``."""
        return f"OP-{self.id}"

    @property
    def target(self) -> str:
        """``server 123 (web-1)``: how audit entries and messages name the server."""
        name = self.server_name
        return f"server {self.server_id} ({name})" if name else f"server {self.server_id}"

    @property
    def delay_min(self) -> int:
        """The delete delay asked for, in minutes (0 when none)."""
        value = self.params.get("delay_min")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
