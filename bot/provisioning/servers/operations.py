"""What every day-2 operation (delete, rebuild, resize) shares: recording it with its approval,
writing its events on the operation's own outbox stream, and finishing it; no Slack or SQL.

One operation per server may be open at a time (waiting for approval, approved, running or a
rebuild being built), so a second delete, rebuild or resize of the same server is refused with
the one that is open. Every write is a compare-and-set in the caller's unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.provisioning.errors import OperationPendingError
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
from bot.provisioning.transitions import UowFactory

__all__ = [
    "Asked",
    "emit_operation",
    "finish_operation",
    "record_operation",
    "rerun_stale",
    "stale_running",
    "state_text",
]

logger = logging.getLogger("bot.provisioning.servers")

OS = OperationState
OperationEvent = OperationRequested | OperationDecided | OperationStarted | OperationFinished


async def emit_operation(
    uow: UnitOfWork, operation: Operation, event: OperationEvent, now: datetime
) -> None:
    """Write an event on the operation's stream, in the caller's unit."""
    await uow.events.add(NewEvent(event.KIND, event.to_json(), operation_id=operation.id), now=now)


@dataclass(frozen=True, kw_only=True)
class Asked:
    """Who asks for an operation on which server, and whether it needs approval first."""

    kind: OperationKind
    server_id: int
    server_name: str
    requester: str
    approval_required: bool
    ttl_s: float
    channel: str | None = None
    request_id: int | None = None  # the create request the server came from

    def new(self, params: JsonDict, now: datetime) -> NewOperation:
        """The operation to store: waiting for approval (expiring after `ttl_s`), or approved
        at once by the requester when none is needed."""
        pending = self.approval_required
        return NewOperation(
            kind=self.kind,
            server_id=self.server_id,
            server_name=self.server_name,
            requester=self.requester,
            state=OS.PENDING_APPROVAL if pending else OS.APPROVED,
            params=params,
            expires_at=now + timedelta(seconds=self.ttl_s) if pending else None,
            request_id=self.request_id,
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


async def rerun_stale(
    uow_factory: UowFactory,
    kind: OperationKind,
    run: Callable[[int], Awaitable[Operation]],
    *,
    now: datetime,
    older_than_s: float,
) -> list[Operation]:
    """Put the stale running operations of `kind` back to approved and `run` each again: for
    kinds that are safe to repeat (a delete of a deleted server, a size set twice)."""
    finished: list[Operation] = []
    for operation in await stale_running(uow_factory, kind, now=now, older_than_s=older_than_s):
        async with uow_factory() as uow:
            again = await uow.operations.transition(
                operation.id, expected=[OS.RUNNING], new=OS.APPROVED, now=now
            )
            await uow.commit()
        if again is not None:
            logger.warning("%s was left running; running it again", operation.human_id)
            finished.append(await run(operation.id))
    return finished


def state_text(state: OperationState) -> str:
    """An open state in words: `waiting for approval`, `approved`, `running`, `being built`."""
    return {
        OS.PENDING_APPROVAL: "waiting for approval",
        OS.APPROVED: "approved",
        OS.RUNNING: "running",
        OS.BUILDING: "being built",
    }.get(state, state.value.replace("_", " "))
