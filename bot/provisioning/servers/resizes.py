"""Resizing a server: another package, or new memory and CPU; asked for, decided (approval when
the policy wants it for the new size), then run, and audited. No Slack or SQL.

Like a delete it is an operation with its own outbox stream, so its approval message follows it.
Unlike a delete it changes a server that keeps running, so the result says whether a restart is
needed to apply it: the panel holds such changes as pending actions that `require` a restart
(docs/virtfusion-api.md); with none pending, the API does not say, and the result says that.
Running a resize twice sets the same values twice, so one left running by a dead process is run
again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot.provisioning.errors import (
    InvalidValueError,
    ServerBuildingError,
    ServerLockedError,
    describe_panel_error,
)
from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    JsonDict,
    Operation,
    OperationKind,
    OperationState,
)
from bot.provisioning.request import RequestLimits
from bot.provisioning.servers.locks import LockWait
from bot.provisioning.servers.model import ResolvedServer
from bot.provisioning.servers.operations import (
    Asked,
    RepeatableOperations,
    claim_approved,
    record_operation,
)
from bot.provisioning.servers.resolve import gone
from bot.provisioning.transitions import Context
from bot.virtfusion import (
    PACKAGE_FLAGS,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    VirtFusionError,
)

__all__ = ["ResizePlan", "ResizeService", "Sizes", "package_flags"]

logger = logging.getLogger("bot.provisioning.servers")

OS = OperationState


def package_flags() -> dict[str, bool]:
    """The flags of a package change: everything follows the package except the backup plan,
    which is `backup-plan`'s to set (the spec gives no defaults, so all eleven are sent)."""
    return {flag: flag != "backupPlan" for flag in PACKAGE_FLAGS}


@dataclass(frozen=True)
class Sizes:
    """A server's size: memory, CPU cores and disk."""

    memory_mb: int
    cpu_cores: int
    disk_gb: int


@dataclass(frozen=True)
class ResizePlan:
    """A resize decided before it is asked for: the server, its sizes before and after."""

    server: ResolvedServer
    before: Sizes
    after: Sizes
    package_id: int | None = None
    package_name: str = ""

    def describe(self) -> str:
        """`package Medium (id 2): memory 1,024 → 4,096 MB, CPU 1 → 2 cores, disk 25 → 80 GB`."""
        old, new = self.before, self.after
        parts = [
            f"{what} {was:,} → {will:,}{unit}"
            for what, was, will, unit in (
                ("memory", old.memory_mb, new.memory_mb, " MB"),
                ("CPU", old.cpu_cores, new.cpu_cores, " cores"),
                ("disk", old.disk_gb, new.disk_gb, " GB"),
            )
            if will != was
        ]
        sizes = ", ".join(parts) or "no size change"
        if self.package_id is None:
            return sizes
        return f"package {self.package_name or self.package_id} (id {self.package_id}): {sizes}"

    def params(self) -> JsonDict:
        """What the operation stores to carry the resize out later."""
        if self.package_id is not None:
            return {"package_id": self.package_id, "summary": self.describe()}
        old, new = self.before, self.after
        return {
            "memory_mb": new.memory_mb if new.memory_mb != old.memory_mb else None,
            "cpu_cores": new.cpu_cores if new.cpu_cores != old.cpu_cores else None,
            "summary": self.describe(),
        }


def _int(params: JsonDict, key: str) -> int | None:
    value = params.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ResizeService(RepeatableOperations):
    """Package changes and memory/CPU changes, with approval; safe to run in replicas."""

    KIND = OperationKind.RESIZE

    def __init__(self, ctx: Context, *, locks: LockWait, limits: RequestLimits) -> None:
        super().__init__(ctx)
        self._locks = locks
        self._limits = limits

    async def plan(
        self,
        resolved: ResolvedServer,
        *,
        package_id: int | None = None,
        memory_mb: int | None = None,
        cpu_cores: int | None = None,
    ) -> ResizePlan:
        """Check the new size against the limits (VF_MIN/MAX_MEMORY_MB, VF_MAX_CPU) and the
        server as the panel shows it.

        Raises InvalidValueError (nothing to change, out of range, unknown package) and
        ServerBuildingError while a request still builds the server.
        """
        if package_id is None and memory_mb is None and cpu_cores is None:
            raise InvalidValueError("Say what to change: a package id, or memory (MB) and/or CPU.")
        if package_id is not None and (memory_mb is not None or cpu_cores is not None):
            raise InvalidValueError("Give either a package or memory/CPU, not both.")
        instance = resolved.instance
        if instance is not None and instance.state in IN_FLIGHT_INSTANCE_STATES:
            raise ServerBuildingError(resolved.label, instance.request_id)
        try:
            server = await self._client.server(resolved.server_id)
        except NotFoundError as error:
            raise gone(resolved) from error
        res = server.resources
        current = (
            Sizes(res.memory_mb or 0, res.cpu_cores or 0, res.storage_gb or 0)
            if res
            else Sizes(0, 0, 0)
        )
        plan = ResizePlan(resolved, before=current, after=current)
        if package_id is not None:
            return await self._package_plan(plan, package_id)
        low, high = self._limits.memory_mb
        if memory_mb is not None and not low <= memory_mb <= high:
            raise InvalidValueError(f"memory must be between {low} and {high} MB; got {memory_mb}.")
        cpu_low, cpu_high = self._limits.cpu
        if cpu_cores is not None and not cpu_low <= cpu_cores <= cpu_high:
            raise InvalidValueError(
                f"cpu must be between {cpu_low} and {cpu_high}; got {cpu_cores}."
            )
        after = replace(
            current,
            memory_mb=current.memory_mb if memory_mb is None else memory_mb,
            cpu_cores=current.cpu_cores if cpu_cores is None else cpu_cores,
        )
        if after == current:
            raise InvalidValueError(
                f"{resolved.label} already has {current.memory_mb:,} MB memory and "
                f"{current.cpu_cores} CPU cores; nothing to change."
            )
        return replace(plan, after=after)

    async def _package_plan(self, plan: ResizePlan, package_id: int) -> ResizePlan:
        try:
            package = await self._client.package(package_id)
        except NotFoundError:
            raise InvalidValueError(f"There is no package {package_id} on the panel.") from None
        # The panel never shrinks the primary disk ("It either matches or is lower").
        before = plan.before
        after = Sizes(
            package.memory_mb or before.memory_mb,
            package.cpu_cores or before.cpu_cores,
            max(package.storage_gb or 0, before.disk_gb),
        )
        return replace(plan, package_id=package.id, package_name=package.name, after=after)

    async def request(
        self,
        plan: ResizePlan,
        *,
        requester: str,
        approval_required: bool,
        ttl_s: float,
        channel: str | None = None,
    ) -> Operation:
        """Record the resize: waiting for approval, or approved at once.

        Raises OperationPendingError when another operation on the server is open.
        """
        now = self._clock()
        asked = Asked(
            requester=requester, approval_required=approval_required, ttl_s=ttl_s, channel=channel
        )
        new = asked.new(OperationKind.RESIZE, plan.server, plan.params(), now)
        async with self._uow() as uow:
            operation = await record_operation(
                uow, new, now=now, target=plan.server.label, detail={"change": plan.describe()}
            )
            await uow.commit()
        return operation

    async def run(self, operation_id: int) -> Operation:
        """Carry out an approved resize; returns it done (saying whether a restart is needed)
        or failed (the panel's words, which name the field).

        Raises AlreadyDecidedError unless it is approved.
        """
        running = await claim_approved(self._uow, operation_id, now=self._clock())
        try:
            changed = await self._change(running)
        except ServerLockedError as error:
            return await self._finish(running, OS.FAILED, f"Not resized: {error}.")
        except NotFoundError:
            return await self._finish(running, OS.FAILED, "Not resized: the server is gone.")
        except (InvalidRequestError, ConflictError) as error:
            words = error.detail or str(error)
            return await self._finish(
                running, OS.FAILED, f"Not resized: the panel refused: {words}."
            )
        except VirtFusionError as error:
            return await self._finish(
                running, OS.FAILED, f"Not resized: {describe_panel_error(error)}."
            )
        return await self._finish(running, OS.DONE, changed + await self._restart_note(running))

    async def _change(self, running: Operation) -> str:
        """Send the change; returns what was done in words."""
        params, server_id = running.params, running.server_id
        summary = str(params.get("summary") or "resized")
        package_id = _int(params, "package_id")
        if package_id is not None:
            result = await self._locks.call(
                server_id,
                lambda: self._client.change_package(server_id, package_id, package_flags()),
                self._sleep,
            )
            kept = f" Not changed: {'; '.join(result.info)}." if result.info else ""
            return f"{running.target}: {summary}.{kept}"
        memory, cores = _int(params, "memory_mb"), _int(params, "cpu_cores")
        if memory is not None:
            await self._locks.call(
                server_id, lambda: self._client.modify_memory(server_id, memory), self._sleep
            )
        if cores is not None:
            await self._locks.call(
                server_id, lambda: self._client.modify_cpu_cores(server_id, cores), self._sleep
            )
        return f"{running.target}: {summary}."

    async def _restart_note(self, running: Operation) -> str:
        try:
            _, extras = await self._client.server_extras(running.server_id)
        except VirtFusionError as error:
            logger.info("%s: cannot read pending changes: %s", running.human_id, error)
            return " Whether a restart is needed could not be read; restart to be sure."
        waiting = extras.restart_needed()
        if waiting:
            return f" A restart applies it (waiting on the panel: {', '.join(waiting)})."
        return (
            " The panel holds no change for a restart; the API does not say whether this "
            "applies without one."
        )

    async def _finish(self, running: Operation, state: OperationState, text: str) -> Operation:
        if state is OS.FAILED:
            logger.warning("%s: resize of %s failed: %s", running.human_id, running.target, text)
        detail: JsonDict = {"change": str(running.params.get("summary") or "")}
        self._ctx.listing.forget()  # the next list shows the new size
        return await self._finished(running, state, text, detail)
