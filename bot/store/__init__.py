"""Persistence ports: repository and unit-of-work Protocols plus the records they return.

Importing this package pulls in no SQL library; the SQL adapter lives in ``bot.store.sql`` and is
named only by the composition root. Repositories never commit: the caller does
``async with uow: ...; await uow.commit()``, and leaving the block without a commit rolls back.
Every ``now`` is passed in by the caller (an injected clock); datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from bot.store.records import (
    IN_FLIGHT_INSTANCE_STATES,
    OPEN_OPERATION_STATES,
    TERMINAL_INSTANCE_STATES,
    TERMINAL_REQUEST_STATES,
    AuditRecord,
    EventRecord,
    InstanceRecord,
    InstanceState,
    JsonDict,
    NewInstance,
    Operation,
    OperationKind,
    OperationState,
    RequestNotFoundError,
    RequestRecord,
    RequestState,
    ServerAlreadyClaimedError,
    StoreError,
    parse_human_id,
)

__all__ = [
    "IN_FLIGHT_INSTANCE_STATES",
    "OPEN_OPERATION_STATES",
    "TERMINAL_INSTANCE_STATES",
    "TERMINAL_REQUEST_STATES",
    "AuditRecord",
    "AuditRepo",
    "EventRecord",
    "EventRepo",
    "InstanceRecord",
    "InstanceRepo",
    "InstanceState",
    "JsonDict",
    "NewInstance",
    "Operation",
    "OperationKind",
    "OperationRepo",
    "OperationState",
    "RequestNotFoundError",
    "RequestRecord",
    "RequestRepo",
    "RequestState",
    "ServerAlreadyClaimedError",
    "SlackEventRepo",
    "StoreError",
    "UnitOfWork",
    "parse_human_id",
]


class RequestRepo(Protocol):
    """Provisioning requests, idempotent on their key, changed only by compare-and-set."""

    async def add_or_get(
        self,
        *,
        key: str,
        requester: str,
        source: str,
        project_name: str,
        payload: JsonDict,
        plan: JsonDict | None,
        state: RequestState,
        now: datetime,
        expires_at: datetime | None = None,
        slack_channel: str | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Insert the request unless ``key`` exists; return it and whether it was created now."""
        ...

    async def get(self, request_id: int) -> RequestRecord | None:
        """Return the request with this id, or None."""
        ...

    async def get_by_key(self, key: str) -> RequestRecord | None:
        """Return the request with this idempotency key, or None."""
        ...

    async def list_recent(
        self,
        *,
        requester: str | None = None,
        limit: int = 20,
        states: Collection[RequestState] | None = None,
    ) -> list[RequestRecord]:
        """Return up to ``limit`` requests, newest first, optionally filtered."""
        ...

    async def list_by_state(self, states: Collection[RequestState]) -> list[RequestRecord]:
        """Return every request in one of ``states``, oldest first."""
        ...

    async def list_expired(self, now: datetime) -> list[RequestRecord]:
        """Return pending requests whose ``expires_at`` is at or before ``now``."""
        ...

    async def transition(
        self,
        request_id: int,
        *,
        expected: Collection[RequestState],
        new: RequestState,
        now: datetime,
        **fields: object,
    ) -> RequestRecord | None:
        """Move to ``new`` only if the state is in ``expected``; None when it was not.

        ``fields`` may set decided_by, decided_at, decision_note, cancel_requested,
        delete_on_cancel, plan and slack_channel/slack_ts/slack_notice_ts; any other name raises
        ``ValueError``.
        """
        ...

    async def update(self, request_id: int, *, now: datetime, **fields: object) -> RequestRecord:
        """Set ``fields`` (as for ``transition``) without a state change.

        Raises ``RequestNotFoundError`` when the id does not exist.
        """
        ...


class InstanceRepo(Protocol):
    """Servers of requests, leased to one worker at a time."""

    async def add_many(
        self, request_id: int, items: Sequence[NewInstance], now: datetime
    ) -> list[InstanceRecord]:
        """Insert ``items`` as planned instances of the request; returned by position."""
        ...

    async def get(self, instance_id: int) -> InstanceRecord | None:
        """Return the instance with this id, or None."""
        ...

    async def list_for_request(self, request_id: int) -> list[InstanceRecord]:
        """Return the request's instances by position."""
        ...

    async def get_by_server_id(self, server_id: int) -> InstanceRecord | None:
        """Return the instance that adopted this panel server, or None."""
        ...

    async def claimed_server_ids(self) -> set[int]:
        """Return every panel server id recorded on an instance."""
        ...

    async def find_by_name(self, name: str) -> list[InstanceRecord]:
        """Return instances named ``name`` (any case) that have a panel server and are not
        ``deleted``, newest first."""
        ...

    async def list_with_servers(
        self,
        *,
        requester: str | None = None,
        request_id: int | None = None,
        limit: int = 20,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> tuple[list[InstanceRecord], int]:
        """Return one page of instances that have a panel server, newest first, and the total.

        ``requester`` keeps those whose request was made by that requester, ``request_id``
        those of one request; ``deleted`` instances are left out unless ``include_deleted``.
        """
        ...

    async def list_in_flight(self) -> list[InstanceRecord]:
        """Return instances in ``IN_FLIGHT_INSTANCE_STATES``, by id."""
        ...

    async def list_by_states(
        self,
        states: Collection[InstanceState],
        *,
        request_states: Collection[RequestState] | None = None,
    ) -> list[InstanceRecord]:
        """Return instances in ``states`` (and whose request is in ``request_states``), by id."""
        ...

    async def claim(
        self,
        *,
        worker: str,
        states: Collection[InstanceState],
        now: datetime,
        lease_s: float,
        limit: int,
        request_states: Collection[RequestState] | None = None,
    ) -> list[InstanceRecord]:
        """Lease up to ``limit`` due, unleased instances in ``states`` to ``worker``, by id.

        Due means ``next_check_at`` is unset or not after ``now``; unleased means no lease or
        an expired one. Concurrent claimers never receive the same instance.
        """
        ...

    async def transition(
        self,
        instance_id: int,
        *,
        expected: Collection[InstanceState],
        new: InstanceState,
        now: datetime,
        worker: str | None = None,
        **fields: object,
    ) -> InstanceRecord | None:
        """Move to ``new`` only if the state is in ``expected`` and ``worker`` (if given) holds
        the lease; None otherwise.

        ``fields``: server_id, hypervisor_id, group_id, ipv4, os_name, error, attempts,
        intent_at, build_started_at, finished_at, next_check_at, lease_owner, lease_until, spec;
        any other name raises ``ValueError``. Raises ``ServerAlreadyClaimedError`` when
        ``server_id`` is on another instance (the transaction stays usable).
        """
        ...

    async def update(
        self, instance_id: int, *, now: datetime, worker: str | None = None, **fields: object
    ) -> InstanceRecord | None:
        """Set ``fields`` (as for ``transition``) without a state change; None if the id is
        missing or ``worker`` no longer holds the lease."""
        ...

    async def release(
        self, instance_id: int, *, worker: str, next_check_at: datetime | None, now: datetime
    ) -> None:
        """Clear the lease if ``worker`` still holds it, and set when to look again."""
        ...


class EventRepo(Protocol):
    """The outbox: events written with the change they report, delivered in order per request."""

    async def add(
        self,
        *,
        request_id: int,
        instance_id: int | None = None,
        kind: str,
        payload: JsonDict,
        now: datetime,
    ) -> EventRecord:
        """Append an event; call it in the transaction of the change it reports."""
        ...

    async def claim_next(
        self, *, subscriber: str, worker: str, now: datetime, lease_s: float, limit: int
    ) -> list[EventRecord]:
        """Lease, per request, the oldest event not yet delivered to ``subscriber``, by id.

        Requests whose oldest undelivered event is leased by another worker are skipped, which
        keeps each request's events in order across replicas. At most ``limit`` events.
        """
        ...

    async def mark_delivered(
        self, event_id: int, *, subscriber: str, worker: str, now: datetime
    ) -> bool:
        """Mark the event delivered to ``subscriber``; False unless ``worker`` holds its lease."""
        ...

    async def list_for_request(self, request_id: int) -> list[EventRecord]:
        """Return the request's events in order."""
        ...

    async def undelivered_count(self, subscriber: str) -> int:
        """Return how many events ``subscriber`` has not had delivered."""
        ...


class AuditRepo(Protocol):
    """Append-only audit log."""

    async def add(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        target: str,
        result: str,
        detail: JsonDict | None = None,
    ) -> AuditRecord:
        """Append an audit entry."""
        ...

    async def list_recent(self, limit: int = 20, actor: str | None = None) -> list[AuditRecord]:
        """Return up to ``limit`` entries, newest first."""
        ...


class OperationRepo(Protocol):
    """Day-2 operations (delete…), decided and run by compare-and-set."""

    async def add(
        self,
        *,
        kind: OperationKind,
        server_id: int,
        server_name: str,
        requester: str,
        state: OperationState,
        params: JsonDict,
        now: datetime,
        expires_at: datetime | None = None,
        request_id: int | None = None,
        slack_channel: str | None = None,
        decided_by: str | None = None,
        decided_at: datetime | None = None,
        decision_note: str | None = None,
    ) -> Operation:
        """Insert an operation and return it."""
        ...

    async def get(self, operation_id: int) -> Operation | None:
        """Return the operation with this id, or None."""
        ...

    async def transition(
        self,
        operation_id: int,
        *,
        expected: Collection[OperationState],
        new: OperationState,
        now: datetime,
        **fields: object,
    ) -> Operation | None:
        """Move to ``new`` only if the state is in ``expected``; None when it was not.

        ``fields`` may set decided_by, decided_at, decision_note, result, params, expires_at,
        slack_channel and slack_ts; any other name raises ``ValueError``.
        """
        ...

    async def update(
        self, operation_id: int, *, now: datetime, **fields: object
    ) -> Operation | None:
        """Set ``fields`` (as for ``transition``) without a state change; None if missing."""
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


class SlackEventRepo(Protocol):
    """Slack event ids already handled, so redeliveries are ignored."""

    async def remember(self, event_id: str, now: datetime) -> bool:
        """Record the event id; True the first time, False for a redelivery."""
        ...

    async def forget_older_than(self, cutoff: datetime) -> int:
        """Delete ids seen before ``cutoff``; return how many were deleted."""
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
    def slack_events(self) -> SlackEventRepo:
        """Seen Slack events of this unit."""
        ...

    @property
    def operations(self) -> OperationRepo:
        """Day-2 operations of this unit."""
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
