"""Follow running builds: one list call per tick for every building server, per-server reads only
as a fallback, and the end of each build (built, failed, timed out, never started)."""

from __future__ import annotations

from bot.provisioning.engine.context import EngineContext, TickReport
from bot.provisioning.events import InstanceBuilt
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import RELEASE, InstanceChange
from bot.virtfusion import BuildPhase, Server

__all__ = ["track"]

S = InstanceState


async def track(ctx: EngineContext, report: TickReport) -> None:
    """Read every building server in one call per owner; per-server GETs only as fallback."""
    building = await ctx.claim(
        [S.BUILDING], request_states=None, lease_s=ctx.config.poll_interval_s * 3
    )
    if not building:
        return
    listing = {s.id: s for s in await ctx.listing.fetch()}
    for instance in building:
        server = listing.get(instance.server_id or -1)
        if server is None and instance.server_id is not None:
            server = await ctx.read_server(instance, S.BUILDING, report, "during its build")
            if server is None:
                continue
        if server is None:
            await ctx.release(instance)
            continue
        await _follow(ctx, instance, server, report)


async def _follow(
    ctx: EngineContext, instance: InstanceRecord, server: Server, report: TickReport
) -> None:
    now = ctx.clock()
    started = instance.build_started_at or now
    elapsed = (now - started).total_seconds()
    phase = server.phase
    config = ctx.config
    if phase is BuildPhase.COMPLETE:
        # The listing names no OS (the spec has no OS name anywhere; `osTemplateInstallId` is
        # only on the single object), and the build asked for the planned template: name that.
        os_name = instance.plan.os_label
        change = InstanceChange(
            ipv4=list(server.ipv4),
            os_name=os_name,
            hypervisor_id=server.hypervisor_id or instance.hypervisor_id,
            finished_at=now,
            error=None,
            lease_owner=RELEASE.lease_owner,
            lease_until=RELEASE.lease_until,
        )
        built = InstanceBuilt(
            server_id=server.id, ipv4=list(server.ipv4), os=os_name, seconds=round(elapsed)
        )
        await ctx.moves.step(instance, S.BUILDING, S.BUILT, change, built)
        report.built += 1
        report.build_seconds.append(elapsed)
    elif phase is BuildPhase.FAILED:
        reason = f"the panel reports that the OS installation failed ({server.failure_signal})"
        await ctx.fail(instance, S.BUILDING, reason, stage="build", server_id=server.id)
        report.failed += 1
    elif phase is BuildPhase.ALLOCATED and elapsed >= config.create_grace_s:
        # An ambiguous build that never reached the panel: the server is still unbuilt.
        await ctx.moves.move(
            instance, S.BUILDING, S.CREATED, error="the build did not start; retrying"
        )
    elif elapsed >= config.build_timeout_s:
        minutes = config.build_timeout_s / 60
        reason = (
            f"the build did not finish within {minutes:g} minutes (VF_BUILD_TIMEOUT); "
            f"last phase {phase.value}"
        )
        await ctx.fail(instance, S.BUILDING, reason, stage="build", server_id=server.id)
        report.failed += 1
    else:
        await ctx.release(instance)
