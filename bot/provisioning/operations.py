"""Day-2 operations on servers (list, status, delete with approval, power, VNC…); no Slack or SQL.

Same pattern as the engine: a short unit of work records the intent, the panel is called with
no database session open, and a new unit records the outcome with its audit entry (and outbox
event). Operation state changes are compare-and-set, so the first approval (or runner) wins.
Credentials the panel returns (VNC password, wss token) stay `SecretStr` and are never logged
or audited.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar, cast, get_args

from bot.provisioning import events
from bot.provisioning.audit import write_audit
from bot.provisioning.errors import (
    AlreadyDecidedError,
    AmbiguousServerError,
    InvalidValueError,
    OperationFailedError,
    OperationPendingError,
    ServerBuildingError,
    ServerLockedError,
    UnknownOperationError,
    UnknownServerError,
)
from bot.provisioning.ops_model import (
    HypervisorGroupRow,
    Operation,
    OperationKind,
    OperationState,
    PowerResult,
    ServerDetail,
    ServerRow,
    TrafficSummary,
)
from bot.provisioning.plan import EngineDefaults
from bot.store import (
    IN_FLIGHT_INSTANCE_STATES,
    OPEN_OPERATION_STATES,
    AuditRecord,
    InstanceRecord,
    InstanceState,
    RequestRecord,
    UnitOfWork,
)
from bot.virtfusion import (
    AuthError,
    ConflictError,
    ConnectError,
    CreateServerBody,
    ForbiddenError,
    InvalidRequestError,
    LockedError,
    NotFoundError,
    PanelTimeoutError,
    PowerAction,
    Server,
    TrafficMonth,
    VirtFusionClient,
    VirtFusionError,
    VncSession,
)

__all__ = [
    "MAX_DELETE_DELAY_MIN",
    "POWER_ACTIONS",
    "OperationsService",
    "ResolvedServer",
    "check_panel",
    "explain_panel_error",
    "parse_operation_id",
]

logger = logging.getLogger("bot.provisioning.operations")

UowFactory = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

OS = OperationState
POWER_ACTIONS: tuple[str, ...] = get_args(PowerAction)
MAX_DELETE_DELAY_MIN = 43_800  # reference §2.8: `delay` is 0-43800 minutes
_OPERATION_ID = re.compile(r"(?:op-)?([1-9][0-9]{0,17})", re.IGNORECASE)


def parse_operation_id(text: str) -> int | None:
    """Return the operation id in ``"OP-7"``, ``"op-7"`` or ``"7"``, or None if it is not one."""
    match = _OPERATION_ID.fullmatch(text.strip())
    return int(match.group(1)) if match else None


def explain_panel_error(error: VirtFusionError) -> str:
    """One sentence for a person: what went wrong with the panel and what to do next."""
    if isinstance(error, AuthError):
        return (
            "The panel rejected VIRTFUSION_API_TOKEN (HTTP 401): it is missing, wrong or expired. "
            "Create a token under Configuration → API in VirtFusion and set VIRTFUSION_API_TOKEN."
        )
    if isinstance(error, ForbiddenError):
        return (
            f"The API token lacks a permission for {error.method} {error.path} (HTTP 403). "
            "Give the token read access to compute (hypervisors) and servers in VirtFusion."
        )
    if isinstance(error, ConnectError):
        return (
            f"Cannot connect to the panel at VIRTFUSION_HOST ({error}). "
            "Check the URL, DNS, firewall and that the panel is up."
        )
    if isinstance(error, PanelTimeoutError):
        return (
            f"The panel did not answer in time ({error}). "
            "Try again, or raise VIRTFUSION_TIMEOUT if the panel is slow."
        )
    return str(error)


@dataclass(frozen=True)
class ResolvedServer:
    """A server the user named, known to belong to vfbot's owner; `instance` if vfbot made it."""

    server_id: int
    name: str
    instance: InstanceRecord | None = None
    request: RequestRecord | None = None

    @property
    def label(self) -> str:
        """``server 123 (web-1)``: how audit entries and messages name it."""
        return f"server {self.server_id} ({self.name})" if self.name else f"server {self.server_id}"

    @property
    def request_human_id(self) -> str | None:
        """``VF-n`` of the request that created it, if vfbot did."""
        if self.request is not None:
            return self.request.human_id
        return f"VF-{self.instance.request_id}" if self.instance is not None else None


class OperationsService:
    """Day-2 actions on the owner's servers, each audited; safe to run in replicas."""

    def __init__(
        self,
        client: VirtFusionClient,
        uow: UowFactory,
        *,
        owner_user_id: int,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        lock_wait_s: float = 60,
        lock_poll_s: float = 5,
        queue_poll_s: float = 2,
        queue_timeout_s: float = 120,
        defaults: EngineDefaults | None = None,
    ) -> None:
        self._client = client
        self._uow = uow
        self._owner = owner_user_id
        self._clock = clock
        self._sleep = sleep
        self._lock_wait_s = lock_wait_s
        self._lock_poll_s = max(lock_poll_s, 0.001)
        self._queue_poll_s = max(queue_poll_s, 0.001)
        self._queue_timeout_s = queue_timeout_s
        self._defaults = defaults

    # -- naming a server ------------------------------------------------------------------------

    async def resolve(self, text: str) -> ResolvedServer:
        """Find the server named by its VirtFusion id or by the name vfbot gave it.

        Raises UnknownServerError (with close names) or AmbiguousServerError.
        """
        wanted = text.strip().lstrip("#")
        if not wanted:
            raise UnknownServerError("Name a server by its name or VirtFusion server id.")
        if wanted.isdigit():
            return await self._resolve_id(int(wanted))
        async with self._uow() as uow:
            matches = await uow.instances.find_by_name(wanted)
            if len(matches) == 1:
                request = await uow.requests.get(matches[0].request_id)
                instance = matches[0]
                resolved = ResolvedServer(instance.server_id or 0, instance.name, instance, request)
            if not matches:
                names = await self._managed_names(uow)
        if len(matches) == 1:
            await self._check_still_ours(resolved)
            return resolved
        if matches:
            raise AmbiguousServerError(
                wanted,
                [(i.name, i.server_id or 0, f"VF-{i.request_id}") for i in matches],
            )
        close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
        raise UnknownServerError(
            f"vfbot manages no server called {wanted!r}. Use its VirtFusion id, or list "
            "the servers with `/vf list`.",
            close,
        )

    async def _managed_names(self, uow: UnitOfWork) -> list[str]:
        rows, _ = await uow.instances.list_with_servers(limit=1000)
        return sorted({row.name for row in rows})

    async def _check_still_ours(self, resolved: ResolvedServer) -> None:
        """A server vfbot made may have been given away since (`/vf owner`): never act on it.

        A server that is gone from the panel passes: deleting it again counts as done.
        """
        try:
            server = await self._client.server(resolved.server_id)
        except NotFoundError:
            return
        if server.owner_id is not None and server.owner_id != self._owner:
            raise UnknownServerError(
                f"{resolved.label} now belongs to VirtFusion user {server.owner_id}, not to "
                f"vfbot's (user {self._owner}); vfbot no longer manages it."
            )

    async def _resolve_id(self, server_id: int) -> ResolvedServer:
        try:
            server = await self._client.server(server_id)
        except NotFoundError as error:
            raise UnknownServerError(
                f"There is no server {server_id} on the panel. It may have been deleted; "
                "`/vf list` or `vfbot servers` shows the servers there are."
            ) from error
        if server.owner_id != self._owner:
            raise UnknownServerError(
                f"Server {server_id} belongs to another VirtFusion user, not to vfbot's "
                f"(user {self._owner}); vfbot does not touch it."
            )
        async with self._uow() as uow:
            instance = await uow.instances.get_by_server_id(server_id)
            request = await uow.requests.get(instance.request_id) if instance else None
        name = server.name or (instance.name if instance else "") or server.hostname
        return ResolvedServer(server_id, name, instance, request)

    # -- lists and details ----------------------------------------------------------------------

    async def list_managed(
        self,
        *,
        requester: str | None = None,
        request_id: int | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[ServerRow], int]:
        """Servers vfbot created (from the database), newest first, and how many in all."""
        async with self._uow() as uow:
            instances, total = await uow.instances.list_with_servers(
                requester=requester, request_id=request_id, limit=limit, offset=offset
            )
            requests = await self._requests(uow, {i.request_id for i in instances})
        rows = [
            ServerRow(
                server_id=i.server_id or 0,
                name=i.name,
                request_human_id=f"VF-{i.request_id}",
                requester=requests[i.request_id].requester if i.request_id in requests else None,
                state=i.state.value,
                group=_instance_group(i),
                ipv4=tuple(i.ipv4),
            )
            for i in instances
        ]
        return rows, total

    async def list_owner_servers(
        self, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[ServerRow], int]:
        """Every server of vfbot's owner on the panel (newest first), with what vfbot knows."""
        servers = sorted(
            await self._client.user_servers(self._owner), key=lambda s: s.id, reverse=True
        )
        page = servers[max(offset, 0) : max(offset, 0) + max(limit, 0)]
        async with self._uow() as uow:
            known: dict[int, InstanceRecord] = {}
            for server in page:
                instance = await uow.instances.get_by_server_id(server.id)
                if instance is not None:
                    known[server.id] = instance
            requests = await self._requests(uow, {i.request_id for i in known.values()})
        rows = []
        for server in page:
            instance = known.get(server.id)
            request = requests.get(instance.request_id) if instance else None
            rows.append(
                ServerRow(
                    server_id=server.id,
                    name=server.name or (instance.name if instance else "") or "(unnamed)",
                    request_human_id=f"VF-{instance.request_id}" if instance else None,
                    requester=request.requester if request else None,
                    state=instance.state.value if instance else server.phase.value,
                    group=server.group_name or (_instance_group(instance) if instance else ""),
                    ipv4=server.ipv4 or (tuple(instance.ipv4) if instance else ()),
                    suspended=server.suspended,
                )
            )
        return rows, len(servers)

    async def enrich(self, rows: list[ServerRow]) -> list[ServerRow]:
        """Fill `suspended` from one panel call; rows the panel no longer lists keep None."""
        if not rows:
            return rows
        listing = {s.id: s for s in await self._client.user_servers(self._owner)}
        return [
            replace(row, suspended=listing[row.server_id].suspended)
            if row.server_id in listing
            else row
            for row in rows
        ]

    async def status(self, resolved: ResolvedServer, *, live: bool = False) -> ServerDetail:
        """The server as the panel reports it; `live` asks the hypervisor for the power state."""
        server = await self._read(resolved, live=live)
        res = server.resources
        instance = resolved.instance
        return ServerDetail(
            server_id=server.id,
            name=server.name or resolved.name,
            hostname=server.hostname,
            phase=server.phase.value,
            state=server.state,
            group=server.group_name,
            hypervisor=(
                server.hypervisor.name
                if server.hypervisor and server.hypervisor.name
                else str(server.hypervisor_id or "")
            ),
            ipv4=server.ipv4,
            ipv6=server.ipv6,
            memory_mb=res.memory_mb if res else None,
            disk_gb=res.storage_gb if res else None,
            cpu_cores=res.cpu_cores if res else None,
            os=server.os_name,
            suspended=server.suspended,
            running=server.running if live else None,
            request_human_id=resolved.request_human_id,
            requester=resolved.request.requester if resolved.request else None,
            built_at=server.built or (instance.finished_at if instance else None),
        )

    # -- delete, with approval ------------------------------------------------------------------

    async def request_delete(
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
            message = (
                f"VF-{instance.request_id} is still building it; cancel the request instead "
                f"(`/vf cancel VF-{instance.request_id}`)."
            )
            await self._audit(requester, "server.delete", target, "refused", {"reason": message})
            raise ServerBuildingError(f"{resolved.name} (server {resolved.server_id}): {message}")
        state = OS.PENDING_APPROVAL if approval_required else OS.APPROVED
        async with self._uow() as uow:
            open_ops = await uow.operations.list_by_states(
                OPEN_OPERATION_STATES, server_id=resolved.server_id
            )
            if open_ops:
                existing = open_ops[0]
                raise OperationPendingError(
                    f"A delete of {target} is already {_state_text(existing.state)} "
                    f"({existing.human_id}, asked by {existing.requester}).",
                    existing.id,
                )
            operation = await uow.operations.add(
                kind=OperationKind.DELETE,
                server_id=resolved.server_id,
                server_name=resolved.name,
                requester=requester,
                state=state,
                params={"delay_min": delay_min},
                now=now,
                expires_at=now + timedelta(seconds=ttl_s) if approval_required else None,
                request_id=instance.request_id if instance else None,
                slack_channel=channel,
                decided_by=None if approval_required else requester,
                decided_at=None if approval_required else now,
                decision_note=None if approval_required else "no approval required",
            )
            await uow.audit.add(
                at=now,
                actor=requester,
                action="server.delete.request",
                target=target,
                result=state.value,
                detail={"operation": operation.human_id, "delay_min": delay_min},
            )
            await uow.commit()
        return operation

    async def approve_operation(self, operation_id: int, *, actor: str) -> Operation:
        """Approve a pending operation; the first decision wins (AlreadyDecidedError after)."""
        return await self._decide(operation_id, actor=actor, new=OS.APPROVED, note=None)

    async def reject_operation(
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
                raise _unknown_operation(operation_id)
            if (
                current.state is OS.PENDING_APPROVAL
                and current.expires_at is not None
                and current.expires_at <= now
            ):
                await self._expire(uow, current, now)
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
                decided_by=actor,
                decided_at=now,
                decision_note=note,
            )
            if decided is None:
                latest = await uow.operations.get(operation_id)
                raise AlreadyDecidedError(_decided_text(latest or current))
            action = "approve" if new is OS.APPROVED else "reject"
            await uow.audit.add(
                at=now,
                actor=actor,
                action=f"server.{decided.kind.value}.{action}",
                target=_op_target(decided),
                result="ok",
                detail={"operation": decided.human_id, **({"reason": note} if note else {})},
            )
            await uow.commit()
        return decided

    async def expire_operations(self) -> list[Operation]:
        """Expire pending operations whose approval window has passed."""
        now = self._clock()
        async with self._uow() as uow:
            due = await uow.operations.list_expired(now)
        expired: list[Operation] = []
        for candidate in due:
            async with self._uow() as uow:
                changed = await self._expire(uow, candidate, now)
                await uow.commit()
            if changed is not None:
                expired.append(changed)
        return expired

    async def _expire(
        self, uow: UnitOfWork, operation: Operation, now: datetime
    ) -> Operation | None:
        changed = await uow.operations.transition(
            operation.id, expected=[OS.PENDING_APPROVAL], new=OS.EXPIRED, now=now
        )
        if changed is not None:
            await uow.audit.add(
                at=now,
                actor="vfbot",
                action=f"server.{operation.kind.value}.expire",
                target=_op_target(operation),
                result="expired",
                detail={"operation": operation.human_id},
            )
        return changed

    async def run_operation(self, operation_id: int) -> Operation:
        """Carry out an approved operation once; returns it `done` or `failed` (panel's words).

        Raises AlreadyDecidedError unless it is approved (someone else ran it, or it was
        never approved).
        """
        now = self._clock()
        async with self._uow() as uow:  # the intent: only one runner gets past this
            running = await uow.operations.transition(
                operation_id, expected=[OS.APPROVED], new=OS.RUNNING, now=now
            )
            if running is None:
                current = await uow.operations.get(operation_id)
                if current is None:
                    raise _unknown_operation(operation_id)
                raise AlreadyDecidedError(_decided_text(current))
            await uow.commit()
        delay = _int_param(running.params, "delay_min")
        target = _op_target(running)
        try:
            deleted = await self._unlocked(
                running.server_id,
                lambda: self._client.delete_server(running.server_id, delay_min=delay),
            )
        except (ServerLockedError, VirtFusionError) as error:
            reason = (
                f"the panel refused: {error.detail or error}"
                if isinstance(error, InvalidRequestError | ConflictError)
                else str(error)
                if isinstance(error, ServerLockedError)
                else explain_panel_error(error)
            )
            logger.warning("%s: delete of %s failed: %s", running.human_id, target, reason)
            return await self._finish(running, OS.FAILED, f"Not deleted: {reason}.", ok=False)
        already_gone = not deleted
        if already_gone:
            text = f"{target} was already gone from the panel; nothing left to delete."
        elif delay:
            text = f"{target} will be deleted by the panel in {delay} min."
        else:
            text = f"{target} deleted."
        return await self._finish(running, OS.DONE, text, ok=True, already_gone=already_gone)

    async def resume_stale(self, *, older_than_s: float = 600) -> list[Operation]:
        """Finish operations left `running` by a process that died mid-delete.

        A delete is safe to repeat (already gone counts as done), so an operation still running
        `older_than_s` after its decision (far longer than one run with its lock waits) is put
        back to approved and run again.
        """
        now = self._clock()
        cutoff = now - timedelta(seconds=older_than_s)
        async with self._uow() as uow:
            running = await uow.operations.list_by_states([OS.RUNNING])
        finished: list[Operation] = []
        for operation in running:
            if operation.decided_at is None or operation.decided_at > cutoff:
                continue
            async with self._uow() as uow:
                again = await uow.operations.transition(
                    operation.id, expected=[OS.RUNNING], new=OS.APPROVED, now=now
                )
                await uow.commit()
            if again is not None:
                logger.warning("%s was left running; running it again", operation.human_id)
                finished.append(await self.run_operation(operation.id))
        return finished

    async def _finish(
        self,
        running: Operation,
        state: OperationState,
        text: str,
        *,
        ok: bool,
        already_gone: bool = False,
    ) -> Operation:
        now = self._clock()
        delay = _int_param(running.params, "delay_min")
        async with self._uow() as uow:
            finished = await uow.operations.transition(
                running.id, expected=[OS.RUNNING], new=state, now=now, result=text
            )
            if ok:
                instance = await uow.instances.get_by_server_id(running.server_id)
                if instance is not None and instance.state is not InstanceState.DELETED:
                    moved = await uow.instances.transition(
                        instance.id,
                        expected=[s for s in InstanceState if s is not InstanceState.DELETED],
                        new=InstanceState.DELETED,
                        now=now,
                        finished_at=now,
                        lease_owner=None,
                        lease_until=None,
                    )
                    if moved is not None:
                        await uow.events.add(
                            request_id=moved.request_id,
                            instance_id=moved.id,
                            kind=events.INSTANCE_DELETED,
                            payload={
                                "name": moved.name,
                                "server_id": running.server_id,
                                "by": running.requester,
                                "delay_min": delay,
                                "already_gone": already_gone,
                            },
                            now=now,
                        )
            await uow.audit.add(
                at=now,
                actor=running.requester,
                action=f"server.{running.kind.value}",
                target=_op_target(running),
                result="ok" if ok else "failed",
                detail={
                    "operation": running.human_id,
                    "delay_min": delay,
                    "approved_by": running.decided_by,
                    "result": text,
                    **({"already_gone": True} if already_gone else {}),
                },
            )
            await uow.commit()
        return finished or replace(running, state=state, result=text)

    async def get_operation(self, operation_id: int) -> Operation:
        """The operation; UnknownOperationError if there is none."""
        async with self._uow() as uow:
            operation = await uow.operations.get(operation_id)
        if operation is None:
            raise _unknown_operation(operation_id)
        return operation

    async def set_operation_message(self, operation_id: int, channel: str, ts: str) -> None:
        """Remember where the operation's approval message lives in Slack."""
        async with self._uow() as uow:
            await uow.operations.update(
                operation_id, now=self._clock(), slack_channel=channel, slack_ts=ts
            )
            await uow.commit()

    async def pending_operations(self) -> list[Operation]:
        """Operations still waiting for a decision (unexpired), oldest first."""
        async with self._uow() as uow:
            return await uow.operations.list_pending(self._clock())

    # -- suspend, power, traffic, VNC, settings -------------------------------------------------

    async def suspend(self, resolved: ResolvedServer, *, actor: str) -> str:
        """Suspend the server (`POST /servers/{id}/suspend`); waits out 423 up to lock_wait_s."""
        await self._act(
            resolved,
            actor,
            "server.suspend",
            lambda: self._client.suspend_server(resolved.server_id),
        )
        return f"{resolved.label} is suspended."

    async def unsuspend(self, resolved: ResolvedServer, *, actor: str) -> str:
        """Lift a suspension (`POST /servers/{id}/unsuspend`); waits out 423 like suspend."""
        await self._act(
            resolved,
            actor,
            "server.unsuspend",
            lambda: self._client.unsuspend_server(resolved.server_id),
        )
        return f"{resolved.label} is no longer suspended."

    async def power(self, resolved: ResolvedServer, action: str, *, actor: str) -> PowerResult:
        """Queue a power action and follow its queue task until it ends or `queue_timeout_s`.

        Raises InvalidValueError for an action other than boot, shutdown, restart, poweroff.
        """
        if action not in POWER_ACTIONS:
            raise InvalidValueError(
                f"{action!r} is not a power action; use one of {', '.join(POWER_ACTIONS)}."
            )
        power_action = cast(PowerAction, action)  # checked just above
        queue_id = await self._act(
            resolved,
            actor,
            "server.power",
            lambda: self._client.power(resolved.server_id, power_action),
            detail={"action": action},
            audit_ok=False,
        )
        result = await self._follow(resolved, action, queue_id)
        outcome = "failed" if result.failed else "ok" if result.finished else "queued"
        detail: dict[str, object] = {"action": action, "queue_id": queue_id}
        if result.error:
            detail["error"] = result.error
        await self._audit(actor, "server.power", resolved.label, outcome, detail)
        return result

    async def _follow(self, resolved: ResolvedServer, action: str, queue_id: int) -> PowerResult:
        waited = 0.0
        while True:
            task = await self._client.queue_task(queue_id)
            if task.done:
                return PowerResult(
                    server_id=resolved.server_id,
                    name=resolved.name,
                    action=action,
                    queue_id=queue_id,
                    finished=True,
                    failed=task.failed,
                    error=task.error,
                )
            if waited >= self._queue_timeout_s:
                return PowerResult(
                    server_id=resolved.server_id,
                    name=resolved.name,
                    action=action,
                    queue_id=queue_id,
                    finished=False,
                    failed=False,
                )
            await self._sleep(self._queue_poll_s)
            waited += self._queue_poll_s

    async def traffic(self, resolved: ResolvedServer) -> TrafficSummary:
        """This month's traffic (the month containing now, else the latest one reported)."""
        try:
            months = await self._client.traffic(resolved.server_id)
        except NotFoundError as error:
            raise _gone(resolved) from error
        month = _current_month(months, self._clock())
        return TrafficSummary(
            server_id=resolved.server_id,
            name=resolved.name,
            month_start=month.start if month else None,
            month_end=month.end if month else None,
            rx_bytes=month.rx if month else 0,
            tx_bytes=month.tx if month else 0,
            total_bytes=month.total if month else 0,
            limit_gb=month.limit_gb if month else 0,
        )

    async def vnc(self, resolved: ResolvedServer, *, enable: bool, actor: str) -> VncSession:
        """Enable or disable VNC; the answer's password and token stay SecretStr, never audited."""
        state = "enabled" if enable else "disabled"
        return await self._act(
            resolved,
            actor,
            "server.vnc",
            lambda: self._client.set_vnc(resolved.server_id, enabled=enable),
            detail={"vnc": state},
        )

    async def set_backup_plan(
        self, resolved: ResolvedServer, plan_id: int | None, *, actor: str
    ) -> str:
        """Attach backup plan `plan_id`; None or 0 removes the server's plan."""
        plan = plan_id or 0
        if plan < 0:
            raise InvalidValueError("A backup plan id is a positive number (or none to remove).")
        await self._act(
            resolved,
            actor,
            "server.backup_plan",
            lambda: self._client.set_backup_plan(resolved.server_id, plan),
            detail={"plan_id": plan},
        )
        if plan == 0:
            return f"{resolved.label} has no backup plan now."
        return f"{resolved.label} now uses backup plan {plan}."

    async def change_owner(self, resolved: ResolvedServer, new_owner_id: int, *, actor: str) -> str:
        """Give the server to another VirtFusion user; vfbot stops listing it under its owner."""
        if new_owner_id <= 0:
            raise InvalidValueError("A VirtFusion user id is a positive number.")
        if new_owner_id == self._owner:
            raise InvalidValueError(
                f"{resolved.label} already belongs to user {new_owner_id} (vfbot's owner)."
            )
        await self._act(
            resolved,
            actor,
            "server.owner",
            lambda: self._client.change_owner(resolved.server_id, new_owner_id),
            detail={"new_owner_id": new_owner_id},
        )
        return (
            f"{resolved.label} now belongs to user {new_owner_id}; vfbot no longer lists it "
            "under its owner."
        )

    async def throttle(self, resolved: ResolvedServer, percent: int, *, actor: str) -> str:
        """Limit the server's CPU by `percent` (0-99; 0 removes the limit)."""
        if isinstance(percent, bool) or not 0 <= percent <= 99:
            raise InvalidValueError(
                f"CPU throttle must be a whole number from 0 to 99 percent, not {percent} "
                "(0 removes the limit)."
            )
        await self._act(
            resolved,
            actor,
            "server.throttle",
            lambda: self._client.set_cpu_throttle(resolved.server_id, percent),
            detail={"percent": percent},
        )
        if percent == 0:
            return f"{resolved.label} has no CPU throttle now."
        return f"{resolved.label} is CPU-throttled by {percent} %."

    # -- panel overview ---------------------------------------------------------------------------

    async def hypervisors(self) -> list[HypervisorGroupRow]:
        """Hypervisor groups with free capacity and their hypervisors' names and flags."""
        return await hypervisor_groups(self._client)

    async def check(self) -> list[tuple[str, bool, str]]:
        """The `vfbot check` steps: (label, passed, what to do); stops at the first failure."""
        return await check_panel(self._client, self._defaults)

    async def recent_audit(self, n: int = 20) -> list[AuditRecord]:
        """The newest `n` audit entries, newest first."""
        async with self._uow() as uow:
            return await uow.audit.list_recent(limit=max(n, 0))

    # -- helpers --------------------------------------------------------------------------------

    async def _read(self, resolved: ResolvedServer, *, live: bool = False) -> Server:
        try:
            return await self._client.server(resolved.server_id, remote_state=live)
        except NotFoundError as error:
            raise _gone(resolved) from error

    async def _act(
        self,
        resolved: ResolvedServer,
        actor: str,
        action: str,
        call: Callable[[], Awaitable[T]],
        *,
        detail: dict[str, object] | None = None,
        audit_ok: bool = True,
    ) -> T:
        """Run one panel change with 423 waited out; audit how it went; map refusals."""
        target = resolved.label
        try:
            result = await self._unlocked(resolved.server_id, call)
        except ServerLockedError as error:
            await self._audit(actor, action, target, "failed", {**(detail or {}), "error": "423"})
            raise error
        except NotFoundError as error:
            await self._audit(actor, action, target, "failed", {**(detail or {}), "error": "404"})
            raise _gone(resolved) from error
        except (InvalidRequestError, ConflictError) as error:
            words = error.detail or str(error)
            await self._audit(actor, action, target, "refused", {**(detail or {}), "error": words})
            raise OperationFailedError(f"The panel refused to change {target}: {words}") from error
        except VirtFusionError as error:
            await self._audit(
                actor, action, target, "failed", {**(detail or {}), "error": type(error).__name__}
            )
            raise
        if audit_ok:
            await self._audit(actor, action, target, "ok", detail)
        return result

    async def _unlocked(self, server_id: int, call: Callable[[], Awaitable[T]]) -> T:
        """Repeat `call` while the panel answers 423 (the client already tried a few times),
        for up to `lock_wait_s`; then raise ServerLockedError."""
        waited = 0.0
        while True:
            try:
                return await call()
            except LockedError as error:
                if waited >= self._lock_wait_s:
                    raise ServerLockedError(server_id, self._lock_wait_s) from error
            await self._sleep(self._lock_poll_s)
            waited += self._lock_poll_s

    async def _audit(
        self,
        actor: str,
        action: str,
        target: str,
        result: str,
        detail: dict[str, object] | None = None,
    ) -> None:
        await write_audit(
            self._uow,
            at=self._clock(),
            actor=actor,
            action=action,
            target=target,
            result=result,
            detail=detail,
        )

    @staticmethod
    async def _requests(uow: UnitOfWork, ids: set[int]) -> dict[int, RequestRecord]:
        out: dict[int, RequestRecord] = {}
        for request_id in sorted(ids):
            record = await uow.requests.get(request_id)
            if record is not None:
                out[request_id] = record
        return out


def _instance_group(instance: InstanceRecord) -> str:
    group = instance.spec.get("group_name")
    if isinstance(group, str) and group:
        return group
    return str(instance.group_id) if instance.group_id is not None else ""


def _current_month(months: list[TrafficMonth], now: datetime) -> TrafficMonth | None:
    for month in months:
        if month.start is not None and month.end is not None and month.start <= now <= month.end:
            return month
    dated = [m for m in months if m.start is not None]
    if dated:
        return max(dated, key=lambda m: m.start or now)
    return months[-1] if months else None


def _gone(resolved: ResolvedServer) -> UnknownServerError:
    return UnknownServerError(
        f"{resolved.label} no longer exists on the panel (it was deleted there)."
    )


def _int_param(params: dict[str, object], name: str) -> int:
    value = params.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _op_target(operation: Operation) -> str:
    name = operation.server_name
    return f"server {operation.server_id} ({name})" if name else f"server {operation.server_id}"


def _state_text(state: OperationState) -> str:
    return {
        OS.PENDING_APPROVAL: "waiting for approval",
        OS.APPROVED: "approved",
        OS.RUNNING: "running",
    }.get(state, state.value.replace("_", " "))


def _decided_text(operation: Operation) -> str:
    who = operation.decided_by
    if operation.state is OS.REJECTED:
        return f"{operation.human_id} was already rejected by {who}."
    if operation.state is OS.EXPIRED:
        return f"{operation.human_id} expired before anyone decided."
    if operation.state is OS.PENDING_APPROVAL:
        return f"{operation.human_id} is still waiting for approval; approve it first."
    if operation.state is OS.APPROVED:
        return f"{operation.human_id} was already approved by {who}."
    if operation.state is OS.RUNNING:
        return f"{operation.human_id} was approved by {who} and is being carried out."
    done = "done" if operation.state is OS.DONE else "failed"
    by = f"approved by {who}, " if who else ""
    return f"{operation.human_id} was already {by}{done}: {operation.result or ''}".rstrip(": ")


async def check_panel(
    client: VirtFusionClient, defaults: EngineDefaults | None
) -> list[tuple[str, bool, str]]:
    """The connection test behind `vfbot check` and `/vf check`: (label, passed, detail) per
    step, stopping at the first failure; `defaults` adds the package, group and dry-run steps."""
    results: list[tuple[str, bool, str]] = []
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("API token accepted (GET /connect)", client.connect),
        ("token can read compute resources", client.probe_compute_scope),
    ]
    if defaults is not None:
        package_id = defaults.package_id
        steps.append(
            (
                f"package {package_id} exists (VIRTFUSION_PACKAGE_ID)",
                lambda: client.package(package_id),
            )
        )
        group_id = defaults.default_group_id
        if group_id is not None:
            default_group = group_id
            steps.append(
                (
                    f"hypervisor group {group_id} exists (VIRTFUSION_HYPERVISOR_GROUP_ID)",
                    lambda: client.group(default_group),
                )
            )
    for label, step in steps:
        try:
            await step()
        except NotFoundError:
            results.append((label, False, "not found on the panel; fix the id in .env"))
            return results
        except VirtFusionError as error:
            results.append((label, False, explain_panel_error(error)))
            return results
        results.append((label, True, ""))
    if defaults is None:
        return results
    group_id = defaults.default_group_id
    if group_id is None:
        groups = [g async for g in client.groups()]
        if not groups:
            results.append(
                ("hypervisor groups", False, "the panel has no hypervisor groups; create one")
            )
            return results
        group_id = groups[0].id
        names = ", ".join(f"{g.name} ({g.id})" for g in groups)
        results.append(
            (
                "VIRTFUSION_HYPERVISOR_GROUP_ID is not set",
                True,
                f"requests must name a hypervisor_group. Groups: {names}",
            )
        )
    label = (
        f"user {defaults.user_id} can get package {defaults.package_id} servers in group "
        f"{group_id} (dry run)"
    )
    probe = CreateServerBody(
        package_id=defaults.package_id,
        user_id=defaults.user_id,
        hypervisor_group_id=group_id,
        network_profile=defaults.default_network_profile_id,
    )
    try:
        await client.validate_server(probe)
    except InvalidRequestError as error:
        results.append(
            (
                label,
                False,
                f"the panel says: {error.detail or error}. Check VIRTFUSION_USER_ID, "
                "VIRTFUSION_PACKAGE_ID, VIRTFUSION_HYPERVISOR_GROUP_ID and "
                "VIRTFUSION_NETWORK_PROFILE_ID.",
            )
        )
        return results
    except VirtFusionError as error:
        results.append((label, False, explain_panel_error(error)))
        return results
    results.append((label, True, ""))
    return results


async def hypervisor_groups(client: VirtFusionClient) -> list[HypervisorGroupRow]:
    """Every hypervisor group with its free capacity and its hypervisors (behind
    `vfbot hypervisors` and `/vf hypervisors`): one list call each, one capacity call per group."""
    groups = [g async for g in client.groups()]
    hypervisors = [h async for h in client.hypervisors()]
    rows = []
    for group in groups:
        capacity = await client.group_capacity(group.id)
        members = [h for h in hypervisors if h.group_id == group.id]
        rows.append(
            HypervisorGroupRow(
                group_id=group.id,
                name=group.name,
                enabled=group.enabled,
                memory_free_mb=capacity.memory_free_mb,
                storage_free_gb=capacity.storage_free_gb,
                ipv4_free=capacity.ipv4_free,
                hypervisors=tuple(
                    h.name
                    + (" (maintenance)" if h.maintenance else "" if h.enabled else " (disabled)")
                    for h in members
                ),
                maintenance=tuple(h.name for h in members if h.maintenance),
                default=group.default,
            )
        )
    return rows


def _unknown_operation(operation_id: int) -> UnknownOperationError:
    return UnknownOperationError(
        f"There is no operation OP-{operation_id}. Check the number on the delete message, or "
        "ask for the delete again with `/vf delete`."
    )
