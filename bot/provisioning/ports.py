"""What the domain needs from storage: a unit of work over typed repositories; no SQL here.

Adapters live in ``bot.store`` (``memory`` for unit tests, ``sql`` for SQLite and PostgreSQL) and
both pass the same contract tests. Repositories never commit: the caller does
``async with uow: ...; await uow.commit()``, and leaving the block without a commit rolls back.
Every ``now`` is passed in by the caller (an injected clock); datetimes are timezone-aware UTC.

Changes are typed values (`RequestChange`, `InstanceChange`, `OperationChange`): a field left
at `UNSET` is not written, so mypy checks every name and type a service sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Final, Protocol, Self

from bot.provisioning.marks import MarkRepo
from bot.provisioning.model import (
    AuditRecord,
    EventRecord,
    InstanceRecord,
    InstanceState,
    JsonDict,
    NewInstance,
    Operation,
    OperationKind,
    OperationState,
    RequestRecord,
    RequestState,
)
from bot.provisioning.store_errors import (
    DatabaseProblem,
    DatabaseUnavailableError,
    ServerAlreadyClaimedError,
    StoreError,
)

__all__ = [
    "RELEASE",
    "UNSET",
    "AuditRepo",
    "Backlog",
    "Claim",
    "DatabaseProblem",
    "DatabaseUnavailableError",
    "EventRepo",
    "ExpiryStage",
    "InstanceChange",
    "InstanceRepo",
    "NewAudit",
    "NewEvent",
    "NewOperation",
    "NewRequest",
    "OperationChange",
    "OperationRepo",
    "RequestChange",
    "RequestRepo",
    "ServerAlreadyClaimedError",
    "ServerQuery",
    "StoreError",
    "UnitOfWork",
    "Unset",
    "changed_fields",
]


class Unset(Enum):
    """The type of `UNSET`: "leave this field as it is"."""

    UNSET = "unset"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestChange:
    """Fields a request transition may set besides its state."""

    decided_by: str | Unset | None = UNSET
    decided_at: datetime | Unset | None = UNSET
    decision_note: str | Unset | None = UNSET
    cancel_requested: bool | Unset = UNSET
    delete_on_cancel: bool | Unset = UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceChange:
    """Fields an instance transition or update may set besides its state."""

    server_id: int | Unset | None = UNSET
    name: str | Unset = UNSET
    spec: JsonDict | Unset = UNSET  # the stored ServerPlan (failover moves it to a new group)
    hypervisor_id: int | Unset | None = UNSET
    group_id: int | Unset | None = UNSET
    ipv4: list[str] | Unset = UNSET
    os_name: str | Unset | None = UNSET
    error: str | Unset | None = UNSET
    attempts: int | Unset = UNSET
    intent_at: datetime | Unset | None = UNSET
    build_started_at: datetime | Unset | None = UNSET
    finished_at: datetime | Unset | None = UNSET
    next_check_at: datetime | Unset | None = UNSET
    lease_owner: str | Unset | None = UNSET
    lease_until: datetime | Unset | None = UNSET
    expires_at: datetime | Unset | None = UNSET


RELEASE: Final = InstanceChange(lease_owner=None, lease_until=None)
"""The lease cleared; combine with `dataclasses.replace(RELEASE, ...)`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationChange:
    """Fields an operation transition may set besides its state."""

    decided_by: str | Unset | None = UNSET
    decided_at: datetime | Unset | None = UNSET
    decision_note: str | Unset | None = UNSET
    result: str | Unset | None = UNSET
    params: JsonDict | Unset = UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRequest:
    """A request to store (`RequestRepo.add_or_get`); it starts in `state`."""

    key: str
    requester: str
    source: str
    project_name: str
    payload: JsonDict
    plan: JsonDict | None
    state: RequestState
    expires_at: datetime | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOperation:
    """A day-2 operation to store (`OperationRepo.add`); decided already when no approval is
    needed."""

    kind: OperationKind
    server_id: int
    server_name: str
    requester: str
    state: OperationState
    params: JsonDict
    expires_at: datetime | None = None
    request_id: int | None = None
    channel: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An outbox event of one stream: a request (with `instance_id` for a server's milestone),
    an operation, or the fleet (neither: alerts and reports for the alert channel)."""

    kind: str
    payload: JsonDict
    request_id: int | None = None
    instance_id: int | None = None
    operation_id: int | None = None


@dataclass(frozen=True, slots=True)
class NewAudit:
    """An audit entry: who did what to which target, and how it went."""

    actor: str
    action: str
    target: str
    result: str
    detail: JsonDict | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """Which instances to lease (`InstanceRepo.claim`): up to `limit` due, unleased ones in
    `states` (of requests in `request_states`, if given), for `lease_s` seconds from `now`."""

    worker: str
    states: Collection[InstanceState]
    now: datetime
    lease_s: float
    limit: int
    request_states: Collection[RequestState] | None = None


class ExpiryStage(Enum):
    """What is done once per expiry of a server (`InstanceRepo.claim_expiry`): the reminder,
    and the action at expiry."""

    WARNED = "expiry_warned_for"
    DONE = "expiry_done_for"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerQuery:
    """One page of instances that have a panel server (`InstanceRepo.list_with_servers`):
    of one requester's requests, or of one request; `deleted` ones only when asked."""

    requester: str | None = None
    request_id: int | None = None
    limit: int = 20
    offset: int = 0
    include_deleted: bool = False


@dataclass(frozen=True, slots=True)
class Backlog:
    """What one outbox subscriber has not been given yet (`EventRepo.backlog`): how many events,
    and when the oldest of them was written (None when there are none)."""

    events: int
    oldest_at: datetime | None


def changed_fields(change: RequestChange | InstanceChange | OperationChange) -> dict[str, object]:
    """The fields of `change` that are set, by name (for adapters)."""
    return {
        f.name: value
        for f in dataclasses.fields(change)
        if (value := getattr(change, f.name)) is not UNSET
    }


class RequestRepo(Protocol):
    """Provisioning requests, idempotent on their key, changed only by compare-and-set."""

    async def add_or_get(self, new: NewRequest, *, now: datetime) -> tuple[RequestRecord, bool]:
        """Insert the request unless ``key`` exists; return it and whether it was created now."""
        ...

    async def get(self, request_id: int) -> RequestRecord | None:
        """Return the request with this id, or None."""
        ...

    async def get_many(self, request_ids: Collection[int]) -> dict[int, RequestRecord]:
        """Return the requests with these ids that exist, by id."""
        ...

    async def get_by_key(self, key: str) -> RequestRecord | None:
        """Return the request with this idempotency key, or None."""
        ...

    async def list_recent(
        self, *, requester: str | None = None, limit: int = 20
    ) -> list[RequestRecord]:
        """Return up to ``limit`` requests, newest first, optionally filtered."""
        ...

    async def list_by_state(self, states: Collection[RequestState]) -> list[RequestRecord]:
        """Return every request in one of ``states``, oldest first."""
        ...

    async def list_expired(self, now: datetime) -> list[RequestRecord]:
        """Return pending requests whose ``expires_at`` is at or before ``now``."""
        ...

    async def count_by_state(self) -> dict[RequestState, int]:
        """Return how many requests are in each state (states with none are left out)."""
        ...

    async def transition(
        self,
        request_id: int,
        /,
        *,
        expected: Collection[RequestState],
        new: RequestState,
        now: datetime,
        change: RequestChange | None = None,
    ) -> RequestRecord | None:
        """Move to ``new`` only if the state is in ``expected``; None when it was not."""
        ...


class InstanceRepo(Protocol):
    """Servers of requests, leased to one worker at a time."""

    async def add_many(
        self, request_id: int, items: Sequence[NewInstance], now: datetime
    ) -> list[InstanceRecord]:
        """Insert ``items`` as planned instances of the request; returned by position."""
        ...

    async def get(self, instance_id: int, *, lock: bool = False) -> InstanceRecord | None:
        """Return the instance with this id, or None. With ``lock``, another unit of work that
        asks the same waits until this one ends, so a read-modify-write loses no update
        (PostgreSQL ``FOR UPDATE``; SQLite's single writer and the memory store already do)."""
        ...

    async def list_for_request(self, request_id: int) -> list[InstanceRecord]:
        """Return the request's instances by position."""
        ...

    async def get_by_server_id(self, server_id: int) -> InstanceRecord | None:
        """Return the instance that adopted this panel server, or None."""
        ...

    async def get_by_server_ids(self, server_ids: Collection[int]) -> dict[int, InstanceRecord]:
        """Return the instances that adopted these panel servers, by server id."""
        ...

    async def claimed_server_ids(self) -> set[int]:
        """Return every panel server id recorded on an instance."""
        ...

    async def find_by_name(self, name: str) -> list[InstanceRecord]:
        """Return instances named ``name`` (any case) that have a panel server and are not
        ``deleted``, newest first."""
        ...

    async def managed_names(self, *, limit: int = 1000) -> list[str]:
        """Return the distinct names of instances with a panel server (not deleted), sorted."""
        ...

    async def list_with_servers(self, query: ServerQuery) -> tuple[list[InstanceRecord], int]:
        """Return the page `query` asks for, newest first, and how many there are in all."""
        ...

    async def expiring(
        self,
        *,
        before: datetime,
        requester: str | None = None,
        limit: int = 200,
        pending_only: bool = False,
    ) -> list[InstanceRecord]:
        """Return up to ``limit`` instances with a panel server, not ``deleted``, whose
        ``expires_at`` is at or before ``before`` (of one requester's requests, if given;
        with ``pending_only``, only those whose expiry action was not taken yet), soonest
        first."""
        ...

    async def claim_expiry(
        self, instance_id: int, /, *, stage: ExpiryStage, expires_at: datetime, now: datetime
    ) -> InstanceRecord | None:
        """Mark `stage` done for this expiry: only if the server still expires at
        ``expires_at``, is not ``deleted`` and the stage was not marked for this expiry yet
        (compare-and-set); None otherwise, so exactly one caller gets the record."""
        ...

    async def list_in_flight(self) -> list[InstanceRecord]:
        """Return instances in ``IN_FLIGHT_INSTANCE_STATES``, by id."""
        ...

    async def unfinished_counts(self, request_ids: Collection[int]) -> dict[int, int]:
        """Return, for each of these requests, how many of its instances are not in a
        terminal state (0 for a request whose instances all ended, or that has none)."""
        ...

    async def list_by_states(
        self,
        states: Collection[InstanceState],
        *,
        request_states: Collection[RequestState] | None = None,
    ) -> list[InstanceRecord]:
        """Return instances in ``states`` (and whose request is in ``request_states``), by id."""
        ...

    async def count_by_state(self) -> dict[InstanceState, int]:
        """Return how many instances are in each state (states with none are left out)."""
        ...

    async def count_leased(self, worker: str, now: datetime) -> int:
        """Return how many instances ``worker`` holds a lease on that runs past ``now``."""
        ...

    async def claim(self, claim: Claim) -> list[InstanceRecord]:
        """Lease the due, unleased instances `claim` describes to its worker, by id.

        Due means ``next_check_at`` is unset or not after ``now``; unleased means no lease or
        an expired one. Concurrent claimers never receive the same instance.
        """
        ...

    async def transition(
        self,
        instance_id: int,
        /,
        *,
        expected: Collection[InstanceState],
        new: InstanceState,
        now: datetime,
        worker: str | None = None,
        change: InstanceChange | None = None,
    ) -> InstanceRecord | None:
        """Move to ``new`` only if the state is in ``expected`` and ``worker`` (if given) holds
        the lease; None otherwise.

        Raises ``ServerAlreadyClaimedError`` when ``change.server_id`` is on another instance
        (the transaction stays usable).
        """
        ...

    async def update(
        self,
        instance_id: int,
        /,
        *,
        now: datetime,
        worker: str | None = None,
        change: InstanceChange,
    ) -> InstanceRecord | None:
        """Apply ``change`` without a state change; None if the id is missing or ``worker`` no
        longer holds the lease."""
        ...

    async def release(
        self, instance_id: int, *, worker: str, next_check_at: datetime | None, now: datetime
    ) -> None:
        """Clear the lease if ``worker`` still holds it, and set when to look again."""
        ...


class EventRepo(Protocol):
    """The outbox: events written with the change they report, delivered in order per stream.

    A stream is one request (``request_id``), one operation (``operation_id``), or the fleet
    (neither: alerts and reports).
    """

    async def add(self, event: NewEvent, *, now: datetime) -> EventRecord:
        """Append an event; call it in the transaction of the change it reports."""
        ...

    async def claim_next(
        self,
        *,
        subscriber: str,
        worker: str,
        now: datetime,
        lease_s: float,
        limit: int,
        per_stream: int = 1,
    ) -> list[EventRecord]:
        """Lease, in up to ``limit`` streams, the oldest ``per_stream`` events not yet
        delivered to ``subscriber``; returned by id.

        Streams whose oldest undelivered event is leased by another worker are skipped, which
        keeps each stream's events in order across replicas; within a stream only an unbroken
        run from the oldest undelivered event is leased.
        """
        ...

    async def mark_delivered(
        self, event_id: int, *, subscriber: str, worker: str, now: datetime
    ) -> bool:
        """Mark the event delivered to ``subscriber``; False unless ``worker`` holds its lease."""
        ...

    async def renew(
        self, event_ids: Collection[int], *, subscriber: str, worker: str, until: datetime
    ) -> None:
        """Extend ``worker``'s leases on these undelivered events to ``until``."""
        ...

    async def prune_delivered(self, *, subscriber: str, before: datetime) -> int:
        """Delete the events written before ``before`` that ``subscriber`` has delivered (and
        every subscriber's delivery marks of them); return how many were deleted."""
        ...

    async def backlog(self, subscriber: str) -> Backlog:
        """Return how many events are not yet delivered to ``subscriber``, and the oldest's
        ``created_at``; leased but undelivered events count as not delivered."""
        ...

    async def list_for_request(self, request_id: int) -> list[EventRecord]:
        """Return the request's events in order."""
        ...

    async def list_for_operation(self, operation_id: int) -> list[EventRecord]:
        """Return the operation's events in order."""
        ...

    async def has_undelivered(self, subscriber: str) -> bool:
        """Whether any event is not yet delivered to ``subscriber`` (leased or not)."""
        ...

    async def list_for_instance(
        self, request_id: int, instance_id: int, kinds: Collection[str]
    ) -> list[EventRecord]:
        """Return the events of these kinds of one server of the request, in order."""
        ...


class AuditRepo(Protocol):
    """Append-only audit log."""

    async def add(self, entry: NewAudit, *, at: datetime) -> AuditRecord:
        """Append an audit entry."""
        ...

    async def list_recent(self, limit: int = 20, actor: str | None = None) -> list[AuditRecord]:
        """Return up to ``limit`` entries, newest first."""
        ...


class OperationRepo(Protocol):
    """Day-2 operations (delete…), decided and run by compare-and-set."""

    async def add(self, new: NewOperation, *, now: datetime) -> Operation:
        """Insert an operation and return it."""
        ...

    async def get(self, operation_id: int) -> Operation | None:
        """Return the operation with this id, or None."""
        ...

    async def transition(
        self,
        operation_id: int,
        /,
        *,
        expected: Collection[OperationState],
        new: OperationState,
        now: datetime,
        change: OperationChange | None = None,
    ) -> Operation | None:
        """Move to ``new`` only if the state is in ``expected``; None when it was not."""
        ...

    async def list_by_states(
        self, states: Collection[OperationState], *, server_id: int | None = None
    ) -> list[Operation]:
        """Return operations in ``states`` (of one server, if given), oldest first."""
        ...

    async def list_pending(self, now: datetime | None = None) -> list[Operation]:
        """Return operations waiting for approval, oldest first; with ``now``, only those whose
        approval window is still open."""
        ...

    async def list_expired(self, now: datetime) -> list[Operation]:
        """Return pending operations whose ``expires_at`` is at or before ``now``."""
        ...


class UnitOfWork(Protocol):
    """One transaction over all repositories; leaving without ``commit()`` rolls back."""

    @property
    def requests(self) -> RequestRepo:
        """Requests of this unit."""
        ...

    @property
    def instances(self) -> InstanceRepo:
        """Instances of this unit."""
        ...

    @property
    def events(self) -> EventRepo:
        """Outbox of this unit."""
        ...

    @property
    def audit(self) -> AuditRepo:
        """Audit log of this unit."""
        ...

    @property
    def operations(self) -> OperationRepo:
        """Day-2 operations of this unit."""
        ...

    @property
    def marks(self) -> MarkRepo:
        """Marks of the fleet jobs (alerts, reports) of this unit."""
        ...

    async def commit(self) -> None:
        """Commit the work so far."""
        ...

    async def rollback(self) -> None:
        """Discard the work since the last commit."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
