"""What every day-2 operation (delete, rebuild, resize) shares: recording it with its approval,
writing its events on the operation's own outbox stream, and finishing it; no Slack or SQL.

One operation per server may be open at a time (waiting for approval, approved, running or a
rebuild being built), so a second delete, rebuild or resize of the same server is refused with
the one that is open. Every write is a compare-and-set in the caller's unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import ClassVar

from bot.provisioning.errors import (
    AlreadyDecidedError,
    OperationPendingError,
    UnknownOperationError,
)
from bot.provisioning.events import (
    OperationDecided,
    OperationFinished,
    OperationRequested,
    OperationStarted,
)
from bot.provisioning.model import (
    OPEN_OPERATION_STATES,
    JsonDict,
    Operation,
    OperationKind,
    OperationState,
)
from bot.provisioning.ports import NewAudit, NewEvent, NewOperation, OperationChange, UnitOfWork
from bot.provisioning.servers.model import ResolvedServer
from bot.provisioning.transitions import Service, UowFactory, log_milestone

__all__ = [
    "Asked",
    "RepeatableOperations",
    "claim_approved",
    "decided_text",
    "emit_operation",
    "finish_operation",
    "get_operation",
    "record_operation",
    "stale_running",
    "state_text",
]

logger = logging.getLogger("bot.provisioning.servers")

OS = OperationState
OperationEvent = OperationRequested | OperationDecided | OperationStarted | OperationFinished


async def emit_operation(
    uow: UnitOfWork, operation: Operation, event: OperationEvent, now: datetime
) -> None:
    """Write an event on the operation's stream, in the caller's unit (and its log line)."""
    new = NewEvent(event.KIND, event.to_json(), operation_id=operation.id)
    log_milestone(await uow.events.add(new, now=now), server_id=operation.server_id)


@dataclass(frozen=True, kw_only=True)
class Asked:
    """Who asks for an operation, and whether it needs approval first."""

    requester: str
    approval_required: bool
    ttl_s: float
    channel: str | None = None

    def new(
        self, kind: OperationKind, server: ResolvedServer, params: JsonDict, now: datetime
    ) -> NewOperation:
        """The operation to store: waiting for approval (expiring after `ttl_s`), or approved
        at once by the requester when none is needed."""
        pending = self.approval_required
        return NewOperation(
            kind=kind,
            server_id=server.server_id,
            server_name=server.name,
            requester=self.requester,
            state=OS.PENDING_APPROVAL if pending else OS.APPROVED,
            params=params,
            expires_at=now + timedelta(seconds=self.ttl_s) if pending else None,
            request_id=server.request_id,
            channel=self.channel,
            decided_by=None if pending else self.requester,
            decided_at=None if pending else now,
            decision_note=None if pending else "no approval required",
        )


async def record_operation(
    uow: UnitOfWork, new: NewOperation, *, now: datetime, target: str, detail: JsonDict
) -> Operation:
    """Store `new` with its `OperationRequested` event and a `server.<kind>.request` audit entry
    (with `detail`), in the caller's unit.

    Raises OperationPendingError when an operation on the same server is still open.
    """
    open_ops = await uow.operations.list_by_states(OPEN_OPERATION_STATES, server_id=new.server_id)
    if open_ops:
        existing = open_ops[0]
        raise OperationPendingError(
            f"A {existing.kind.value} of {target} is already {state_text(existing.state)} "
            f"({existing.human_id}, asked by {existing.requester}).",
            existing.id,
        )
    operation = await uow.operations.add(new, now=now)
    approval = new.state is OS.PENDING_APPROVAL
    requested = OperationRequested(by=new.requester, approval_required=approval)
    await emit_operation(uow, operation, requested, now)
    await uow.audit.add(
        NewAudit(
            new.requester,
            f"server.{new.kind.value}.request",
            target,
            new.state.value,
            {"operation": operation.human_id, **detail},
        ),
        at=now,
    )
    return operation


async def finish_operation(
    uow: UnitOfWork,
    operation: Operation,
    *,
    expected: Collection[OperationState],
    state: OperationState,
    result: str,
    now: datetime,
    detail: JsonDict,
) -> Operation | None:
    """Move the operation to `state` (done or failed) with `result`, its `OperationFinished`
    event and a `server.<kind>` audit entry, in the caller's unit; None when it had moved on
    (someone else finished it: nothing is written)."""
    finished = await uow.operations.transition(
        operation.id, expected=expected, new=state, now=now, change=OperationChange(result=result)
    )
    if finished is None:
        return None
    await emit_operation(uow, finished, OperationFinished(state=state.value, result=result), now)
    outcome = "ok" if state is OS.DONE else "failed"
    audit = {"operation": operation.human_id, "approved_by": operation.decided_by, **detail}
    await uow.audit.add(
        NewAudit(
            operation.requester,
            f"server.{operation.kind.value}",
            operation.target,
            outcome,
            {**audit, "result": result},
        ),
        at=now,
    )
    return finished


async def stale_running(
    uow_factory: UowFactory, kind: OperationKind, *, now: datetime, older_than_s: float
) -> list[Operation]:
    """Operations of `kind` left `running` since before `older_than_s` ago (their runner died:
    every run finishes far sooner), oldest first."""
    cutoff = now - timedelta(seconds=older_than_s)
    async with uow_factory() as uow:
        running = await uow.operations.list_by_states([OS.RUNNING])
    return [
        op
        for op in running
        if op.kind is kind and op.decided_at is not None and op.decided_at <= cutoff
    ]


class RepeatableOperations(Service):
    """A service of operations that are safe to carry out twice (a delete of a server already
    gone, a size set again): one a dead process left `running` is simply run again."""

    KIND: ClassVar[OperationKind]

    async def run(self, operation_id: int) -> Operation:
        """Carry out an approved operation once."""
        raise NotImplementedError

    async def _finished(
        self,
        running: Operation,
        state: OperationState,
        text: str,
        detail: JsonDict,
        *,
        when_done: Callable[[UnitOfWork, datetime], Awaitable[None]] | None = None,
    ) -> Operation:
        """Record how a run ended (see `finish_operation`), with `when_done` in the same unit
        when it succeeded."""
        now = self._clock()
        async with self._uow() as uow:
            finished = await finish_operation(
                uow,
                running,
                expected=[OS.RUNNING],
                state=state,
                result=text,
                now=now,
                detail=detail,
            )
            if when_done is not None and state is OS.DONE:
                await when_done(uow, now)
            await uow.commit()
        return finished or replace(running, state=state, result=text)

    async def resume_stale(self, *, older_than_s: float = 600) -> list[Operation]:
        """Put operations still running `older_than_s` after their decision (far longer than
        one run with its lock waits) back to approved, and run each again."""
        now = self._clock()
        finished: list[Operation] = []
        for operation in await stale_running(
            self._uow, self.KIND, now=now, older_than_s=older_than_s
        ):
            async with self._uow() as uow:
                again = await uow.operations.transition(
                    operation.id, expected=[OS.RUNNING], new=OS.APPROVED, now=now
                )
                await uow.commit()
            if again is not None:
                logger.warning("%s was left running; running it again", operation.human_id)
                finished.append(await self.run(operation.id))
        return finished


def state_text(state: OperationState) -> str:
    """An open state in words: `waiting for approval`, `approved`, `running`, `being built`."""
    return {
        OS.PENDING_APPROVAL: "waiting for approval",
        OS.APPROVED: "approved",
        OS.RUNNING: "running",
        OS.BUILDING: "being built",
    }.get(state, state.value.replace("_", " "))


async def get_operation(uow_factory: UowFactory, operation_id: int) -> Operation:
    """The operation; UnknownOperationError if there is none."""
    async with uow_factory() as uow:
        operation = await uow.operations.get(operation_id)
    if operation is None:
        raise UnknownOperationError(operation_id)
    return operation


async def claim_approved(
    uow_factory: UowFactory,
    operation_id: int,
    *,
    now: datetime,
    change: OperationChange | None = None,
) -> Operation:
    """Move an approved operation to `running` (with `change`) and commit it: the intent, which
    only one runner gets past.

    Raises AlreadyDecidedError (naming who decided) unless it was approved.
    """
    async with uow_factory() as uow:
        running = await uow.operations.transition(
            operation_id, expected=[OS.APPROVED], new=OS.RUNNING, now=now, change=change
        )
        if running is None:
            current = await uow.operations.get(operation_id)
            if current is None:
                raise UnknownOperationError(operation_id)
            raise AlreadyDecidedError(decided_text(current))
        await uow.commit()
    return running


def decided_text(operation: Operation) -> str:
    """Why an operation can no longer be decided or run, naming who decided it."""
    who = operation.decided_by
    if operation.state is OS.REJECTED:
        return f"{operation.human_id} was already rejected by {who}."
    if operation.state is OS.EXPIRED:
        return f"{operation.human_id} expired before anyone decided."
    if operation.state is OS.PENDING_APPROVAL:
        return f"{operation.human_id} is still waiting for approval; approve it first."
    if operation.state is OS.APPROVED:
        return f"{operation.human_id} was already approved by {who}."
    if operation.state in (OS.RUNNING, OS.BUILDING):
        return f"{operation.human_id} was approved by {who} and is being carried out."
    done = "done" if operation.state is OS.DONE else "failed"
    by = f"approved by {who}, " if who else ""
    return f"{operation.human_id} was already {by}{done}: {operation.result or ''}".rstrip(": ")
