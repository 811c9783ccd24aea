"""Server lifetimes at run time: the reminder before expiry, the action at expiry, extending and
keeping; safe in replicas, exactly once per server per expiry.

The database decides who does what: a replica sends the reminder (an outbox event) only after it
claimed it with a compare-and-set on the server's row (`ExpiryStage.WARNED` for this expiry), and
takes the action only after claiming `ExpiryStage.DONE`. A delete goes through the delete path of
`/vf delete` (`DeleteService.run`): the operation is recorded, approved by vfbot, in the same
transaction as the claim, and one that a crash left approved is run by the next tick. A server
given to another VirtFusion user since (`/vf owner`) is never touched; the thread hears why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.provisioning.errors import (
    AlreadyDecidedError,
    InvalidValueError,
    OperationPendingError,
)
from bot.provisioning.events import InstanceExpired, InstanceExpiryChanged, InstanceExpiryWarning
from bot.provisioning.fleet.model import ExpiringServer
from bot.provisioning.lifetimes import ExpiryAction, LifetimePolicy
from bot.provisioning.model import (
    InstanceRecord,
    InstanceState,
    JsonDict,
    Operation,
    OperationKind,
    RequestRecord,
)
from bot.provisioning.model import OperationState as OS
from bot.provisioning.ports import ExpiryStage, InstanceChange, NewAudit, UnitOfWork
from bot.provisioning.servers.deletes import DeleteService
from bot.provisioning.servers.model import ResolvedServer
from bot.provisioning.servers.operations import Asked, record_operation
from bot.provisioning.transitions import Context, Service, emit
from bot.virtfusion import NotFoundError, VirtFusionError

__all__ = ["EXPIRY_ACTOR", "Expiring", "ExpiryService", "ExpiryTick"]

logger = logging.getLogger("bot.provisioning.servers")

EXPIRY_ACTOR = "vfbot"
"""Who the audit log and the delete operation name for what expiry does."""

_BATCH = 200  # servers looked at per tick and stage; the next tick takes the rest


@dataclass(frozen=True)
class Expiring:
    """A server with an expiry, for `/vf expiring`, the Home tab and the daily report."""

    instance: InstanceRecord
    requester: str | None

    @property
    def expires_at(self) -> datetime:
        return self.instance.expires_at or self.instance.updated_at


@dataclass
class ExpiryTick:
    """What one pass did: reminders written, actions taken."""

    warned: int = 0
    acted: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.warned or self.acted)


class ExpiryService(Service):
    """Reminders, actions at expiry, extend and keep."""

    def __init__(self, ctx: Context, *, policy: LifetimePolicy, deletes: DeleteService) -> None:
        super().__init__(ctx)
        self.policy = policy
        self._deletes = deletes

    # -- the tick -------------------------------------------------------------------------------

    async def run_due(self) -> ExpiryTick:
        """Write the reminders that are due, take the actions that are due, and run expiry
        deletes a crash left approved; each once, whichever replica gets there first."""
        tick = ExpiryTick()
        now = self._clock()
        warning = timedelta(seconds=self.policy.warning_s)
        async with self._uow() as uow:
            soon = await uow.instances.expiring(
                before=now + warning, limit=_BATCH, pending_only=True
            )
        for instance in soon:
            at = instance.expires_at
            if at is None or instance.state is not InstanceState.BUILT:
                continue
            if at <= now:
                if instance.expiry_done_for != at:
                    tick.acted += await self._act(instance, at)
            elif instance.expiry_warned_for != at:
                tick.warned += await self._warn(instance, at)
        tick.acted += await self._resume_deletes()
        return tick

    async def _warn(self, instance: InstanceRecord, at: datetime) -> int:
        now = self._clock()
        async with self._uow() as uow:
            claimed = await uow.instances.claim_expiry(
                instance.id, stage=ExpiryStage.WARNED, expires_at=at, now=now
            )
            if claimed is None:
                return 0  # another replica sent it, or the expiry changed meanwhile
            request = await uow.requests.get(instance.request_id)
            event = InstanceExpiryWarning(
                server_id=instance.server_id,
                expires_at=at,
                requester=request.requester if request else "",
                action=self.policy.action.value,
            )
            await emit(uow, claimed, event, now)
            await uow.commit()
        return 1

    async def _act(self, instance: InstanceRecord, at: datetime) -> int:
        """Claim this expiry's action, then take it (once)."""
        server_id = instance.server_id or 0
        action = self.policy.action
        try:
            untouched = await self._not_ours(server_id)
        except VirtFusionError as error:  # the next tick asks again
            logger.warning("expiry of server %s waits for the panel: %s", server_id, error)
            return 0
        now = self._clock()
        async with self._uow() as uow:
            claimed = await uow.instances.claim_expiry(
                instance.id, stage=ExpiryStage.DONE, expires_at=at, now=now
            )
            if claimed is None:
                return 0
            request = await uow.requests.get(instance.request_id)
            requester = request.requester if request else ""
            if untouched is not None:
                await self._expired(uow, claimed, "untouched", untouched, requester)
            elif action is ExpiryAction.DELETE:
                asked = Asked(requester=EXPIRY_ACTOR, approval_required=False, ttl_s=0)
                server = ResolvedServer(server_id, instance.name, instance)
                try:
                    await record_operation(
                        uow,
                        asked.new(
                            OperationKind.DELETE, server, {"delay_min": 0, "expired": True}, now
                        ),
                        now=now,
                        target=_label(instance),
                        detail={"reason": "lifetime ended", "expired_at": at.isoformat()},
                    )
                except OperationPendingError as error:  # rolled back: the next tick tries again
                    logger.info("expiry of %s waits: %s", _label(instance), error)
                    return 0
            elif action is ExpiryAction.NOTIFY:
                text = f"{_label(instance)} reached the end of its lifetime; nothing was changed."
                await self._expired(uow, claimed, "done", text, requester)
            await uow.commit()
        if untouched is None and action is ExpiryAction.SUSPEND:
            await self._suspend(claimed, requester)
        elif untouched is None and action is ExpiryAction.DELETE:
            await self._resume_deletes(server_id)
        return 1

    async def _not_ours(self, server_id: int) -> str | None:
        """Why vfbot must not touch the server (another owner now), or None. Gone counts as
        ours: the delete path says it was already gone."""
        try:
            server = await self._client.server(server_id)
        except NotFoundError:
            return None
        if server.owner_id is not None and server.owner_id != self._owner:
            return (
                f"server {server_id} now belongs to VirtFusion user {server.owner_id}, not to "
                f"vfbot's (user {self._owner}); vfbot did not touch it"
            )
        return None

    async def _suspend(self, instance: InstanceRecord, requester: str) -> None:
        server_id = instance.server_id or 0
        try:
            await self._client.suspend_server(server_id)
        except NotFoundError:
            outcome, text = "gone", f"{_label(instance)} was already gone from the panel."
        except VirtFusionError as error:
            outcome, text = "failed", f"{_label(instance)} was not suspended: {error}"
        else:
            outcome, text = "done", f"{_label(instance)} is suspended (its lifetime ended)."
        async with self._uow() as uow:
            await self._expired(uow, instance, outcome, text, requester)
            await uow.commit()

    async def _resume_deletes(self, server_id: int | None = None) -> int:
        """Run expiry deletes that are approved (just now, or left by a crash) through the
        delete path; `DeleteService.run` claims each, so one runner carries it out."""
        async with self._uow() as uow:
            approved = await uow.operations.list_by_states([OS.APPROVED], server_id=server_id)
        ran = 0
        for operation in approved:
            if operation.requester != EXPIRY_ACTOR or operation.kind is not OperationKind.DELETE:
                continue
            try:
                done = await self._deletes.run(operation.id)
            except AlreadyDecidedError:  # another runner has it
                continue
            await self._after_delete(done)
            ran += 1
        return ran

    async def _after_delete(self, done: Operation) -> None:
        async with self._uow() as uow:
            instance = await uow.instances.get_by_server_id(done.server_id)
            if instance is None:
                return
            request = await uow.requests.get(instance.request_id)
            already_gone = "already gone" in (done.result or "")
            outcome = "failed" if done.state is OS.FAILED else "gone" if already_gone else "done"
            requester = request.requester if request else ""
            await self._expired(uow, instance, outcome, done.result or "", requester)
            await uow.commit()

    async def _expired(
        self, uow: UnitOfWork, instance: InstanceRecord, outcome: str, text: str, requester: str
    ) -> None:
        """The expiry's milestone (thread and channel notice) and its audit entry."""
        now = self._clock()
        action = self.policy.action.value
        event = InstanceExpired(
            server_id=instance.server_id,
            action=action,
            outcome=outcome,
            result=text,
            requester=requester,
        )
        await emit(uow, instance, event, now)
        await uow.audit.add(
            NewAudit(
                EXPIRY_ACTOR,
                f"server.expire.{action}",
                _label(instance),
                "ok" if outcome in ("done", "gone") else outcome,
                {"request": instance.human_request_id, "result": text},
            ),
            at=now,
        )

    # -- people ---------------------------------------------------------------------------------

    async def extend(
        self, instance: InstanceRecord, seconds: float, *, actor: str, admin: bool
    ) -> InstanceRecord:
        """Push the expiry `seconds` further (from now when it has passed); beyond
        VF_MAX_LIFETIME from now only for an admin. A server that never expires is refused
        (InvalidValueError): extending must never give it an end."""
        if seconds <= 0:
            raise InvalidValueError("Extend by a duration longer than zero, e.g. 4h or 3d.")

        def later(current: datetime | None, now: datetime) -> datetime:
            if current is None:
                raise InvalidValueError(
                    f"{_label(instance)} never expires; there is nothing to extend."
                )
            new = max(current, now) + timedelta(seconds=seconds)
            too_long = self.policy.too_long((new - now).total_seconds(), admin=admin)
            if too_long is not None:
                raise InvalidValueError(f"{_label(instance)} was not extended: {too_long}.")
            return new

        return await self._set(instance, later, actor=actor, action="server.extend")

    async def keep(self, instance: InstanceRecord, *, actor: str) -> InstanceRecord:
        """Remove the expiry: the server stays until someone deletes it (admins only; the
        surface asks the policy)."""
        return await self._set(instance, lambda _, __: None, actor=actor, action="server.keep")

    async def _set(
        self,
        instance: InstanceRecord,
        new: Callable[[datetime | None, datetime], datetime | None],
        *,
        actor: str,
        action: str,
    ) -> InstanceRecord:
        """Set the expiry `new` computes from the stored one (read in the same unit)."""
        now = self._clock().replace(microsecond=0)
        async with self._uow() as uow:
            # Locked: two extends at once both count, neither is lost (read, then write).
            current = await uow.instances.get(instance.id, lock=True)
            if current is None or current.state is not InstanceState.BUILT:
                state = current.state.value if current else "gone"
                raise InvalidValueError(
                    f"{_label(instance)} is {state}; only a built server's lifetime can change."
                )
            done = current.expires_at is not None and current.expiry_done_for == current.expires_at
            if done and self.policy.action is ExpiryAction.DELETE:
                raise InvalidValueError(f"{_label(instance)} already expired and is being deleted.")
            expires_at = new(current.expires_at, now)
            changed = await uow.instances.update(
                instance.id, now=now, change=InstanceChange(expires_at=expires_at)
            )
            if changed is None:
                raise InvalidValueError(f"{_label(instance)} is no longer known to vfbot.")
            event = InstanceExpiryChanged(
                server_id=instance.server_id, expires_at=expires_at, by=actor
            )
            await emit(uow, changed, event, now)
            when = expires_at.isoformat() if expires_at else None
            detail: JsonDict = {"expires_at": when, "was": _iso(current.expires_at)}
            await uow.audit.add(NewAudit(actor, action, _label(instance), "ok", detail), at=now)
            await uow.commit()
        return changed

    async def expiring(self, *, within_s: float, requester: str | None = None) -> list[Expiring]:
        """Servers expiring within `within_s` from now (of one requester, if given), soonest
        first, with who asked for each."""
        now = self._clock()
        async with self._uow() as uow:
            found = await uow.instances.expiring(
                before=now + timedelta(seconds=within_s), requester=requester
            )
            requests = await uow.requests.get_many({i.request_id for i in found})
        return [
            Expiring(i, requests[i.request_id].requester if i.request_id in requests else None)
            for i in found
        ]

    async def expiring_between(self, after: datetime, before: datetime) -> list[ExpiringServer]:
        """The servers whose lifetime ends after `after` and by `before`, soonest first (the
        daily report's "expiring in the next 24 hours")."""
        async with self._uow() as uow:
            found = await uow.instances.expiring(before=before, limit=_BATCH)
            soon = [i for i in found if i.expires_at is not None and i.expires_at > after]
            requests = await uow.requests.get_many({i.request_id for i in soon})
        return [
            ExpiringServer(
                name=i.name,
                server_id=i.server_id,
                request_human_id=i.human_request_id,
                requester=requests[i.request_id].requester if i.request_id in requests else "",
                expires_at=i.expires_at,
            )
            for i in soon
        ]

    async def get(self, instance_id: int) -> tuple[InstanceRecord, RequestRecord | None]:
        """A server vfbot made, with its request; InvalidValueError when there is none."""
        async with self._uow() as uow:
            instance = await uow.instances.get(instance_id)
            request = await uow.requests.get(instance.request_id) if instance else None
        if instance is None:
            raise InvalidValueError("That server is no longer known to vfbot.")
        return instance, request

    async def instances_of(self, target: ResolvedServer | int) -> list[InstanceRecord]:
        """The built servers a lifetime command names: one server vfbot made, or every built
        server of request `VF-n` (an int)."""
        if isinstance(target, int):
            async with self._uow() as uow:
                found = await uow.instances.list_for_request(target)
            return [i for i in found if i.state is InstanceState.BUILT and i.expires_at is not None]
        if target.instance is None:
            raise InvalidValueError(
                f"{target.label} was not created by vfbot, so it has no lifetime; vfbot never "
                "deletes it on its own."
            )
        return [target.instance]


def _label(instance: InstanceRecord) -> str:
    return (
        f"server {instance.server_id} ({instance.name})"
        if instance.server_id is not None
        else instance.name
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
