"""Rebuilding a server (reinstalling its OS): asked for, decided, sent exactly once, then followed
to built or failed with milestones on the operation's own outbox stream. No Slack or SQL.

A rebuild is `POST /servers/{id}/build` on a built server, the very call that builds a new one,
and like that one it is never sent twice: not for a double click (one operation per server is
open at a time), not by two replicas (running it is a compare-and-set from approved), not after
a crash. The intent (`running`, with the time and the server's `built` before) is committed
before the call; a process that dies after it leaves the operation running, and it is settled
by reading the server, never by sending again. The panel's answer keeps the old `built`
(the spec's example), so a rebuild counts as finished when the server is complete again and the
answer showed it queued, or `built` changed.

The answer carries the new root password (`settings.decryptedPassword`). It is never stored,
logged or audited: when the server has no SSH key it is handed, once, to whoever runs the
rebuild for the person who asked; with keys it is dropped.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from bot.provisioning.errors import (
    AlreadyDecidedError,
    BuildInProgressError,
    InvalidValueError,
    ServerBuildingError,
    ServerLockedError,
    describe_panel_error,
)
from bot.provisioning.events import OperationStarted
from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    JsonDict,
    Operation,
    OperationKind,
    OperationState,
)
from bot.provisioning.plan import match_template
from bot.provisioning.ports import InstanceChange, NewAudit, OperationChange
from bot.provisioning.servers.locks import LockWait
from bot.provisioning.servers.model import RebuildRun, ResolvedServer
from bot.provisioning.servers.operations import (
    Asked,
    claim_approved,
    decided_text,
    emit_operation,
    finish_operation,
    get_operation,
    record_operation,
)
from bot.provisioning.servers.resolve import gone
from bot.provisioning.transitions import Context, Service
from bot.virtfusion import (
    AmbiguousResultError,
    BuildPhase,
    BuildServerBody,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    Server,
    VirtFusionError,
)

__all__ = ["RebuildParams", "RebuildService", "rebuild_outcome"]

logger = logging.getLogger("bot.provisioning.servers")

OS = OperationState
_BUSY = (BuildPhase.QUEUED, BuildPhase.BUILDING)


class RebuildParams(BaseModel):
    """What a rebuild operation stores: the build body's parts and what tracking needs.

    `answer` is the phase the panel's answer showed ("" before sending, "unknown" when the
    answer was lost); `previous_built` is the server's `built` read just before sending.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    template_id: int
    template: str
    ssh_key_ids: list[int] = []
    name: str | None = None
    hostname: str | None = None
    ipv6: bool = False
    memory_mb: int = 0  # the server's size, for VF_REQUIRE_APPROVAL's thresholds
    disk_gb: int = 0
    previous_built: datetime | None = None
    sent_at: datetime | None = None
    answer: str = ""

    @classmethod
    def of(cls, operation: Operation) -> RebuildParams:
        return cls.model_validate(operation.params)

    def to_json(self) -> JsonDict:
        return self.model_dump(mode="json")

    def body(self) -> BuildServerBody:
        """The build body: the same fields a first build sends."""
        return BuildServerBody(
            operating_system_id=self.template_id,
            name=self.name,
            hostname=self.hostname,
            ssh_key_ids=list(self.ssh_key_ids) or None,
            ipv6=True if self.ipv6 else None,
        )

    def what(self) -> str:
        """`Ubuntu 24.04, 1 SSH key kept` for messages."""
        keys = len(self.ssh_key_ids)
        kept = f"{keys} SSH key{'s' if keys != 1 else ''} kept" if keys else "no SSH key"
        return f"{self.template}, {kept}"


def rebuild_outcome(
    params: RebuildParams, server: Server, *, now: datetime, timeout_s: float, grace_s: float
) -> tuple[OperationState, str] | None:
    """Where a sent rebuild stands from the server's state: done or failed with a sentence, or
    None while it is still under way."""
    sent = params.sent_at or now
    elapsed = (now - sent).total_seconds()
    phase = server.phase
    if phase is BuildPhase.FAILED:
        signal = server.failure_signal
        return OS.FAILED, f"the panel reports that the OS installation failed ({signal})"
    if phase is BuildPhase.COMPLETE:
        if params.answer in (BuildPhase.QUEUED, BuildPhase.BUILDING) or (
            server.built is not None and server.built != params.previous_built
        ):
            took = f"{max(elapsed, 0):.0f} s" if elapsed < 90 else f"{elapsed / 60:.0f} min"
            return OS.DONE, f"rebuilt with {params.template} in {took}"
        if params.answer == "unknown" and elapsed >= grace_s:
            return OS.FAILED, (
                "the panel's answer to the rebuild was lost and the server still shows its "
                "previous build, so nothing was changed; ask again if it is still wanted"
            )
    if elapsed >= timeout_s:
        return OS.FAILED, (
            f"the rebuild did not finish within {timeout_s / 60:g} minutes (VF_BUILD_TIMEOUT); "
            f"last phase {phase.value}"
        )
    return None


class RebuildService(Service):
    """Rebuilds with approval, sent exactly once and followed to their end; safe in replicas."""

    def __init__(
        self,
        ctx: Context,
        *,
        locks: LockWait,
        build_timeout_s: float,
        grace_s: float,
        stale_s: float = 600,
        approved_grace_s: float = 120,
    ) -> None:
        super().__init__(ctx)
        self._locks = locks
        self._timeout_s = build_timeout_s
        self._grace_s = grace_s
        self._stale_s = stale_s
        self._approved_grace_s = approved_grace_s

    # -- asking ---------------------------------------------------------------------------------

    async def plan(self, resolved: ResolvedServer, template: str | None = None) -> RebuildParams:
        """Decide the rebuild: the template (the current one unless named; from the templates
        the panel offers this server), the SSH keys kept, name and hostname.

        Raises ServerBuildingError or BuildInProgressError while a build runs, and
        InvalidValueError for a template the server cannot have.
        """
        instance = resolved.instance
        if instance is not None and instance.state in IN_FLIGHT_INSTANCE_STATES:
            raise ServerBuildingError(resolved.label, instance.request_id)
        try:
            server, extras = await self._client.server_extras(resolved.server_id)
            templates = await self._client.server_templates(resolved.server_id)
        except NotFoundError as error:
            raise gone(resolved) from error
        if server.phase in _BUSY:
            raise BuildInProgressError(resolved.label, server.phase.value)
        wanted = template if template is not None else _current(resolved, server)
        found = match_template(wanted, templates)
        if isinstance(found, str):
            raise InvalidValueError(f"Cannot rebuild {resolved.label}: {found}.")
        keys = list(extras.ssh_key_ids)
        if not keys and instance is not None:
            keys = list(instance.plan.build_body.ssh_key_ids or [])
        return RebuildParams(
            template_id=found.id,
            template=found.label,
            ssh_key_ids=keys,
            name=server.name or resolved.name or None,
            hostname=server.hostname or None,
            ipv6=bool(server.ipv6),
            memory_mb=(server.resources.memory_mb or 0) if server.resources else 0,
            disk_gb=(server.resources.storage_gb or 0) if server.resources else 0,
            previous_built=server.built,
        )

    async def request(
        self,
        resolved: ResolvedServer,
        params: RebuildParams,
        *,
        requester: str,
        approval_required: bool,
        ttl_s: float,
        channel: str | None = None,
    ) -> Operation:
        """Record the rebuild: waiting for approval, or approved at once.

        Raises OperationPendingError when an operation on the server is open (a second click).
        """
        now = self._clock()
        asked = Asked(
            requester=requester, approval_required=approval_required, ttl_s=ttl_s, channel=channel
        )
        new = asked.new(OperationKind.REBUILD, resolved, params.to_json(), now)
        detail: JsonDict = {"template": params.template, "ssh_keys": len(params.ssh_key_ids)}
        async with self._uow() as uow:
            operation = await record_operation(
                uow, new, now=now, target=resolved.label, detail=detail
            )
            await uow.commit()
        return operation

    # -- sending, once --------------------------------------------------------------------------

    async def run(self, operation_id: int) -> RebuildRun:
        """Send an approved rebuild once and record that the panel took it (`building`), or
        why it was not sent (`failed`). The password, only without SSH keys, is in the result.

        Raises AlreadyDecidedError unless it is approved (someone else sent it, or nobody
        approved it).
        """
        current = await get_operation(self._uow, operation_id)
        if current.state is not OS.APPROVED:
            raise AlreadyDecidedError(decided_text(current))
        params = RebuildParams.of(current)
        try:
            before = await self._client.server(current.server_id)
        except NotFoundError:
            return await self._refuse(current, "the server no longer exists on the panel")
        except VirtFusionError as error:
            return await self._refuse(current, describe_panel_error(error))
        if before.phase in _BUSY:
            return await self._refuse(current, f"a build is running on the panel ({before.phase})")
        now = self._clock()
        params = params.model_copy(update={"previous_built": before.built, "sent_at": now})
        change = OperationChange(params=params.to_json())
        running = await claim_approved(self._uow, operation_id, now=now, change=change)
        return await self._send(running, params)

    async def _send(self, running: Operation, params: RebuildParams) -> RebuildRun:
        server_id = running.server_id
        try:
            server, password = await self._locks.call(
                server_id,
                lambda: self._client.rebuild_server(server_id, params.body()),
                self._sleep,
            )
        except AmbiguousResultError as error:
            logger.warning(
                "%s: rebuild answer lost; following the server: %s", running.human_id, error
            )
            started = await self._started(running, params, "unknown")
            return RebuildRun(started, None, len(params.ssh_key_ids), unclear=True)
        except ServerLockedError as error:
            return await self._not_sent(running, str(error))
        except NotFoundError:
            return await self._not_sent(running, "the server no longer exists on the panel")
        except (InvalidRequestError, ConflictError) as error:
            return await self._not_sent(running, f"the panel refused: {error.detail or error}")
        except VirtFusionError as error:  # never reached the panel, or refused it (401/403/429)
            return await self._not_sent(running, describe_panel_error(error))
        started = await self._started(running, params, server.phase.value)
        shown = password if not params.ssh_key_ids else None
        return RebuildRun(started, shown, len(params.ssh_key_ids))

    async def _started(self, running: Operation, params: RebuildParams, answer: str) -> Operation:
        """The panel took the rebuild (or may have): follow it from now on."""
        now = self._clock()
        params = params.model_copy(update={"answer": answer})
        async with self._uow() as uow:
            building = await uow.operations.transition(
                running.id,
                expected=[OS.RUNNING],
                new=OS.BUILDING,
                now=now,
                change=OperationChange(params=params.to_json()),
            )
            if building is not None:
                detail = f"OS install of {params.what()}"
                await emit_operation(uow, building, OperationStarted(detail=detail), now)
                await uow.audit.add(
                    NewAudit(
                        running.requester,
                        "server.rebuild",
                        running.target,
                        "started",
                        {"operation": running.human_id, "template": params.template},
                    ),
                    at=now,
                )
            await uow.commit()
        return building or replace(running, state=OS.BUILDING, params=params.to_json())

    async def _not_sent(self, running: Operation, reason: str) -> RebuildRun:
        text = f"Not rebuilt: {reason}; nothing was changed."
        return RebuildRun(await self._finish(running, [OS.RUNNING], OS.FAILED, text))

    async def _refuse(self, approved: Operation, reason: str) -> RebuildRun:
        """Fail an approved rebuild before anything was sent; AlreadyDecidedError when another
        runner took it meanwhile (it may be the reason the server is busy)."""
        text = f"Not rebuilt: {reason}; nothing was changed."
        failed = await self._finish(approved, [OS.APPROVED], OS.FAILED, text)
        if failed.state is not OS.FAILED or failed.result != text:
            raise AlreadyDecidedError(decided_text(await get_operation(self._uow, approved.id)))
        return RebuildRun(failed)

    # -- following --------------------------------------------------------------------------------

    async def track_due(self) -> list[Operation]:
        """Read every rebuild being built (one list call) and finish those that ended; then settle
        the rebuilds a dead process left behind. A panel that cannot be read is tried again at
        the next tick (one warning, no traceback)."""
        try:
            return await self._track() + await self._resume()
        except VirtFusionError as error:
            logger.warning("rebuilds: the panel could not be read (%s); trying again", error)
            return []

    async def _track(self) -> list[Operation]:
        async with self._uow() as uow:
            building = [
                op
                for op in await uow.operations.list_by_states([OS.BUILDING])
                if op.kind is OperationKind.REBUILD
            ]
        finished: list[Operation] = []
        if building:
            listing = {s.id: s for s in await self._client.user_servers(self._owner)}
            for operation in building:
                done = await self._follow(operation, listing.get(operation.server_id))
                if done is not None:
                    finished.append(done)
        return finished

    async def _follow(self, operation: Operation, server: Server | None) -> Operation | None:
        params = RebuildParams.of(operation)
        # Per-user rows carry no `built`; a complete one is read whole to compare it.
        if server is None or (server.phase is BuildPhase.COMPLETE and server.built is None):
            try:
                server = await self._client.server(operation.server_id)
            except NotFoundError:
                text = "Not rebuilt: the server was deleted on the panel meanwhile."
                return await self._finish(operation, [OS.BUILDING], OS.FAILED, text)
        outcome = rebuild_outcome(
            params, server, now=self._clock(), timeout_s=self._timeout_s, grace_s=self._grace_s
        )
        if outcome is None:
            return None
        state, text = outcome
        if state is OS.DONE:
            return await self._finish(
                operation, [OS.BUILDING], state, f"{operation.target}: {text}.", server=server
            )
        return await self._finish(operation, [OS.BUILDING], state, f"Rebuild failed: {text}.")

    async def _resume(self) -> list[Operation]:
        """Settle rebuilds a dead process left: running ones by reading the server (never by
        sending again), approved ones that nobody ran by running them now."""
        now = self._clock()
        settled: list[Operation] = []
        async with self._uow() as uow:
            running = await uow.operations.list_by_states([OS.RUNNING])
            approved = await uow.operations.list_by_states([OS.APPROVED])
        # Stale from the intent on: an approval can be much older than the run it led to.
        stale_before = now - timedelta(seconds=self._stale_s)
        for operation in running:
            if operation.kind is not OperationKind.REBUILD:
                continue
            sent_at = RebuildParams.of(operation).sent_at
            if sent_at is not None and sent_at <= stale_before:
                settled.append(await self._settle(operation))
        cutoff = now - timedelta(seconds=self._approved_grace_s)
        for operation in approved:
            due = operation.decided_at is not None and operation.decided_at <= cutoff
            if operation.kind is OperationKind.REBUILD and due:
                logger.warning("%s was approved but never run; running it now", operation.human_id)
                try:
                    settled.append((await self.run(operation.id)).operation)
                except AlreadyDecidedError:
                    continue  # another replica ran it just now
        return settled

    async def _settle(self, running: Operation) -> Operation:
        """A rebuild whose runner died after its intent: did the panel get it?"""
        params = RebuildParams.of(running)
        try:
            server = await self._client.server(running.server_id)
        except NotFoundError:
            text = "Not rebuilt: the server was deleted on the panel meanwhile."
            return await self._finish(running, [OS.RUNNING], OS.FAILED, text)
        changed = server.built is not None and server.built != params.previous_built
        if server.phase in _BUSY or server.phase is BuildPhase.FAILED or changed:
            logger.warning("%s: vfbot stopped after sending it; following it now", running.human_id)
            return await self._started(running, params, "unknown")
        text = (
            "Not rebuilt: vfbot stopped before the panel answered, and the server shows no "
            "rebuild; nothing was changed. Ask again if it is still wanted."
        )
        return await self._finish(running, [OS.RUNNING], OS.FAILED, text)

    # -- the end --------------------------------------------------------------------------------

    async def _finish(
        self,
        operation: Operation,
        expected: list[OperationState],
        state: OperationState,
        text: str,
        *,
        server: Server | None = None,
    ) -> Operation:
        now = self._clock()
        params = RebuildParams.of(operation)
        async with self._uow() as uow:
            finished = await finish_operation(
                uow,
                operation,
                expected=expected,
                state=state,
                result=text,
                now=now,
                detail={"template": params.template},
            )
            instance = await uow.instances.get_by_server_id(operation.server_id)
            if finished is not None and server is not None and instance is not None:
                # vfbot's record follows: the OS it now runs, its addresses.
                change = InstanceChange(os_name=params.template, ipv4=list(server.ipv4))
                await uow.instances.update(instance.id, now=now, change=change)
            await uow.commit()
        self._ctx.listing.forget()  # the next list shows the server as the panel now has it
        if finished is None:  # someone else finished it: theirs stands
            return await get_operation(self._uow, operation.id)
        if state is OS.FAILED:
            logger.warning("%s: %s", operation.human_id, text)
        return finished


def _current(resolved: ResolvedServer, server: Server) -> str:
    """The server's current template id, as text for `match_template`."""
    if server.os_template_id is None:
        raise InvalidValueError(
            f"{resolved.label} shows no OS template to reinstall; name the one to install."
        )
    return str(server.os_template_id)
