"""Deleting a server: asked for, decided (or approved at once), then run exactly once.

Same pattern as the engine: a short unit of work records the intent, the panel is called with no
database session open, and a new unit records the outcome with its audit entry. Each step writes
an outbox event on the operation's own stream (`OperationRequested`, `OperationDecided`,
`OperationFinished`), so its Slack message follows like a request's thread does; the delete also
writes `InstanceDeleted` on the create request's stream. Changes are compare-and-set, so the
first decision (or runner) wins.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from bot.provisioning.errors import (
    AlreadyDecidedError,
    InvalidValueError,
    ServerBuildingError,
    ServerLockedError,
    UnknownOperationError,
    describe_panel_error,
)
from bot.provisioning.events import (
    InstanceDeleted,
    OperationDecided,
)
from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    InstanceState,
    JsonDict,
    Operation,
    OperationKind,
    OperationState,
)
from bot.provisioning.ports import (
    RELEASE,
    NewAudit,
    OperationChange,
    UnitOfWork,
)
from bot.provisioning.servers.locks import LockWait
from bot.provisioning.servers.model import ResolvedServer
from bot.provisioning.servers.operations import (
    Asked,
    RepeatableOperations,
    claim_approved,
    decided_text,
    emit_operation,
    get_operation,
    record_operation,
)
from bot.provisioning.transitions import Context, emit
from bot.virtfusion import (
    DELETE_DELAY_MAX_MIN,
    ConflictError,
    InvalidRequestError,
    VirtFusionError,
)

__all__ = ["MAX_DELETE_DELAY_MIN", "DeleteService", "decided_text"]

logger = logging.getLogger("bot.provisioning.servers")

OS = OperationState
MAX_DELETE_DELAY_MIN = DELETE_DELAY_MAX_MIN  # the panel's `delay` range: 0-43800 minutes


class DeleteService(RepeatableOperations):
    """Server deletes with approval; safe to run in replicas. A delete is safe to repeat
    (already gone counts as done), so one a dead process left running is run again
    (`resume_stale`)."""

    KIND = OperationKind.DELETE

    def __init__(self, ctx: Context, *, locks: LockWait) -> None:
        super().__init__(ctx)
        self._locks = locks

    async def request(
        self,
        resolved: ResolvedServer,
        *,
        requester: str,
        delay_min: int = 0,
        approval_required: bool,
        ttl_s: float,
        channel: str | None = None,
    ) -> Operation:
        """Record a delete: waiting for approval, or approved at once when none is needed.

        Raises ServerBuildingError while a request still builds the server,
        OperationPendingError when a delete of it is already open, InvalidValueError for a
        delay outside 0-43800 minutes.
        """
        now = self._clock()
        target = resolved.label
        if not 0 <= delay_min <= MAX_DELETE_DELAY_MIN:
            raise InvalidValueError(
                f"The delay must be between 0 and {MAX_DELETE_DELAY_MIN} minutes (30 days)."
            )
        instance = resolved.instance
        if instance is not None and instance.state in IN_FLIGHT_INSTANCE_STATES:
            error = ServerBuildingError(
                f"{resolved.name} (server {resolved.server_id})", instance.request_id
            )
            await self._moves.audit(
                requester, "server.delete", target, "refused", {"reason": str(error)}
            )
            raise error
        async with self._uow() as uow:
            asked = Asked(
                requester=requester,
                approval_required=approval_required,
                ttl_s=ttl_s,
                channel=channel,
            )
            new = asked.new(OperationKind.DELETE, resolved, {"delay_min": delay_min}, now)
            operation = await record_operation(
                uow, new, now=now, target=target, detail={"delay_min": delay_min}
            )
            await uow.commit()
        return operation

    async def approve(self, operation_id: int, *, actor: str) -> Operation:
        """Approve a pending operation; the first decision wins (AlreadyDecidedError after)."""
        return await self._decide(operation_id, actor=actor, new=OS.APPROVED, note=None)

    async def reject(
        self, operation_id: int, *, actor: str, reason: str | None = None
    ) -> Operation:
        """Reject a pending operation; nothing happens to the server."""
        return await self._decide(operation_id, actor=actor, new=OS.REJECTED, note=reason)

    async def _decide(
        self, operation_id: int, *, actor: str, new: OperationState, note: str | None
    ) -> Operation:
        now = self._clock()
        async with self._uow() as uow:
            current = await uow.operations.get(operation_id)
            if current is None:
                raise UnknownOperationError(operation_id)
            if (
                current.state is OS.PENDING_APPROVAL
                and current.expires_at is not None
                and current.expires_at <= now
            ):
                await _expire(uow, current, now)
                await uow.commit()
                raise AlreadyDecidedError(
                    f"{current.human_id} expired before anyone decided; ask again if it is "
                    "still wanted."
                )
            decided = await uow.operations.transition(
                operation_id,
                expected=[OS.PENDING_APPROVAL],
                new=new,
                now=now,
                change=OperationChange(decided_by=actor, decided_at=now, decision_note=note),
            )
            if decided is None:
                latest = await uow.operations.get(operation_id)
                raise AlreadyDecidedError(decided_text(latest or current))
            await emit_operation(uow, decided, OperationDecided(state=new.value, by=actor), now)
            action = "approve" if new is OS.APPROVED else "reject"
            await uow.audit.add(
                NewAudit(
                    actor,
                    f"server.{decided.kind.value}.{action}",
                    decided.target,
                    "ok",
                    {"operation": decided.human_id, **({"reason": note} if note else {})},
                ),
                at=now,
            )
            await uow.commit()
        return decided

    async def expire_due(self) -> list[Operation]:
        """Expire pending operations whose approval window has passed."""
        now = self._clock()
        async with self._uow() as uow:
            due = await uow.operations.list_expired(now)
        expired: list[Operation] = []
        for candidate in due:
            async with self._uow() as uow:
                changed = await _expire(uow, candidate, now)
                await uow.commit()
            if changed is not None:
                expired.append(changed)
        return expired

    async def run(self, operation_id: int) -> Operation:
        """Carry out an approved operation once; returns it `done` or `failed` (panel's words).

        Raises AlreadyDecidedError unless it is approved (someone else ran it, or it was
        never approved).
        """
        running = await claim_approved(self._uow, operation_id, now=self._clock())
        delay = running.delay_min
        target = running.target
        try:
            deleted = await self._locks.call(
                running.server_id,
                lambda: self._client.delete_server(running.server_id, delay_min=delay),
                self._sleep,
            )
        except ServerLockedError as error:
            return await self._fail(running, str(error))
        except (InvalidRequestError, ConflictError) as error:
            return await self._fail(running, f"the panel refused: {error.detail or error}")
        except VirtFusionError as error:
            return await self._fail(running, describe_panel_error(error))
        self._ctx.listing.forget()  # the next list shows it gone
        already_gone = not deleted
        if already_gone:
            text = f"{target} was already gone from the panel; nothing left to delete."
        elif delay:
            text = f"{target} will be deleted by the panel in {delay} min."
        else:
            text = f"{target} deleted."
        return await self._finish(running, OS.DONE, text, already_gone=already_gone)

    async def _fail(self, running: Operation, reason: str) -> Operation:
        logger.warning("%s: delete of %s failed: %s", running.human_id, running.target, reason)
        return await self._finish(running, OS.FAILED, f"Not deleted: {reason}.")

    async def _finish(
        self, running: Operation, state: OperationState, text: str, *, already_gone: bool = False
    ) -> Operation:
        detail: JsonDict = {
            "delay_min": running.delay_min,
            **({"already_gone": True} if already_gone else {}),
        }

        async def mark_deleted(uow: UnitOfWork, now: datetime) -> None:
            await _mark_instance_deleted(uow, running, now, already_gone=already_gone)

        return await self._finished(running, state, text, detail, when_done=mark_deleted)

    async def get(self, operation_id: int) -> Operation:
        """The operation (of any kind); UnknownOperationError if there is none."""
        return await get_operation(self._uow, operation_id)

    async def pending(self) -> list[Operation]:
        """Operations still waiting for a decision (unexpired), oldest first."""
        async with self._uow() as uow:
            return await uow.operations.list_pending(self._clock())


async def _mark_instance_deleted(
    uow: UnitOfWork, operation: Operation, now: datetime, *, already_gone: bool
) -> None:
    """The server vfbot made is gone: its request's thread hears so."""
    instance = await uow.instances.get_by_server_id(operation.server_id)
    if instance is None or instance.state is InstanceState.DELETED:
        return
    moved = await uow.instances.transition(
        instance.id,
        expected=[s for s in InstanceState if s is not InstanceState.DELETED],
        new=InstanceState.DELETED,
        now=now,
        change=replace(RELEASE, finished_at=now),
    )
    if moved is not None:
        event = InstanceDeleted(
            server_id=operation.server_id,
            by=operation.requester,
            delay_min=operation.delay_min,
            already_gone=already_gone,
        )
        await emit(uow, moved, event, now)


async def _expire(uow: UnitOfWork, operation: Operation, now: datetime) -> Operation | None:
    changed = await uow.operations.transition(
        operation.id, expected=[OS.PENDING_APPROVAL], new=OS.EXPIRED, now=now
    )
    if changed is not None:
        await emit_operation(uow, changed, OperationDecided(state=OS.EXPIRED.value), now)
        await uow.audit.add(
            NewAudit(
                "vfbot",
                f"server.{operation.kind.value}.expire",
                operation.target,
                "expired",
                {"operation": operation.human_id},
            ),
            at=now,
        )
    return changed
