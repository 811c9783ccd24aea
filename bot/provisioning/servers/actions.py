"""Changing a server in place: suspend, power, VNC, backup plan, owner, CPU throttle; audited.

Each action is one panel call with a busy server (423) waited out (`LockWait`), then one audit
entry. Credentials the panel returns (VNC password, wss token) stay `SecretStr` and are never
logged or audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast, get_args

from bot.provisioning.errors import (
    InvalidValueError,
    OperationFailedError,
    ServerLockedError,
)
from bot.provisioning.model import JsonDict
from bot.provisioning.servers.locks import LockWait
from bot.provisioning.servers.model import PowerResult, ResolvedServer
from bot.provisioning.servers.resolve import gone
from bot.provisioning.transitions import Context, Service
from bot.virtfusion import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PowerAction,
    VirtFusionError,
    VncSession,
)

__all__ = ["POWER_ACTIONS", "ServerActions"]

T = TypeVar("T")

POWER_ACTIONS: tuple[str, ...] = get_args(PowerAction)


class ServerActions(Service):
    """Day-2 changes on one resolved server; each is audited (ok, refused or failed)."""

    def __init__(
        self,
        ctx: Context,
        *,
        locks: LockWait,
        queue_poll_s: float = 2,
        queue_timeout_s: float = 120,
    ) -> None:
        super().__init__(ctx)
        self._locks = locks
        self._queue_poll_s = max(queue_poll_s, 0.001)
        self._queue_timeout_s = queue_timeout_s

    async def suspend(self, resolved: ResolvedServer, *, actor: str) -> str:
        """Suspend the server (`POST /servers/{id}/suspend`)."""
        await self._act(
            resolved,
            actor,
            "server.suspend",
            lambda: self._client.suspend_server(resolved.server_id),
        )
        return f"{resolved.label} is suspended."

    async def unsuspend(self, resolved: ResolvedServer, *, actor: str) -> str:
        """Lift a suspension (`POST /servers/{id}/unsuspend`)."""
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
        detail: JsonDict = {"action": action, "queue_id": queue_id}
        if result.error:
            detail["error"] = result.error
        await self._moves.audit(actor, "server.power", resolved.label, outcome, detail)
        return result

    async def _follow(self, resolved: ResolvedServer, action: str, queue_id: int) -> PowerResult:
        waited = 0.0
        while True:
            task = await self._client.queue_task(queue_id)
            if task.done or waited >= self._queue_timeout_s:
                return PowerResult(
                    server_id=resolved.server_id,
                    name=resolved.name,
                    action=action,
                    queue_id=queue_id,
                    finished=task.done,
                    failed=task.done and task.failed,
                    error=task.error if task.done else "",
                )
            await self._sleep(self._queue_poll_s)
            waited += self._queue_poll_s

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

    async def _act(
        self,
        resolved: ResolvedServer,
        actor: str,
        action: str,
        call: Callable[[], Awaitable[T]],
        *,
        detail: JsonDict | None = None,
        audit_ok: bool = True,
    ) -> T:
        """Run one panel change with 423 waited out; audit how it went; map refusals."""
        target = resolved.label

        async def audit(result: str, error: str | None = None) -> None:
            extra = {"error": error} if error is not None else {}
            await self._moves.audit(actor, action, target, result, {**(detail or {}), **extra})

        try:
            outcome = await self._locks.call(resolved.server_id, call, self._sleep)
        except ServerLockedError:
            await audit("failed", "423")
            raise
        except NotFoundError as error:
            await audit("failed", "404")
            raise gone(resolved) from error
        except (InvalidRequestError, ConflictError) as error:
            words = error.detail or str(error)
            await audit("refused", words)
            raise OperationFailedError(f"The panel refused to change {target}: {words}") from error
        except VirtFusionError as error:
            await audit("failed", type(error).__name__)
            raise
        self._ctx.listing.forget()  # the next list shows the change
        if audit_ok:
            await self._moves.audit(actor, action, target, "ok", detail)
        return outcome
