"""Follow running builds: every building server is compared with one listing of the owner's
servers, at most once per poll interval (and at once for builds started since the last one),
and what changed is recorded in one transaction; a build nothing happened to costs no write.

Tracking leases nothing: each change is a compare-and-set on the row's state, so replicas that
track at the same time record each outcome once (milestones are written once per server).
Rows another worker is working on (leased) are left to it.

`track_server` is the same path for one server, at once: a webhook says a server changed, so
that server is read from the panel (never from the hint) and followed as a tick would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.provisioning.engine.build import confirmed
from bot.provisioning.engine.context import EngineContext, TickReport
from bot.provisioning.events import InstanceBuilt, InstanceEvent
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import RELEASE, InstanceChange
from bot.virtfusion import BuildPhase, NotFoundError, Server, VirtFusionError

__all__ = ["track", "track_server"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState


@dataclass(frozen=True)
class _Outcome:
    """One recorded result of a tick: a compare-and-set from `building`, with its event."""

    instance: InstanceRecord
    new: InstanceState
    change: InstanceChange
    event: InstanceEvent | None = None
    seconds: float | None = None  # how long a build that completed took


async def track(ctx: EngineContext, report: TickReport, *, force: bool = False) -> None:
    """Compare every building server with one panel listing; record what changed (`force`:
    now, even within the poll interval since the last listing)."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        rows = await uow.instances.list_by_states([S.BUILDING])
    building = [i for i in rows if i.lease_until is None or i.lease_until <= now]
    if not building or not (force or _due(ctx, building)):
        return
    try:
        servers = await ctx.listing.fetch()
    except VirtFusionError as error:
        await _note_outage(ctx, building, error)
        raise  # the tick's supervisor says it once and waits
    listing = {s.id: s for s in servers}
    if not force:  # a hint's extra listing leaves the polling rhythm alone
        # The tick's start, not the listing's: the next tick begins one poll interval after
        # this one began and must find the listing due, however long creates took before it.
        ctx.last_listing_at = min(ctx.tick_started_at or now, now)
    outcomes: list[_Outcome] = []
    for instance in building:
        server = listing.get(instance.server_id or -1)
        if server is None and instance.server_id is not None:
            server = await _read(ctx, instance, outcomes)
        if server is not None:
            outcomes += await _follow(ctx, instance, server)
    await _record(ctx, report, outcomes)


async def track_server(ctx: EngineContext, report: TickReport, server_id: int) -> bool:
    """Follow one building server now: read it from the panel (`GET /servers/{id}`) and record
    what changed, exactly as a tick would. False when no building row that no other worker
    holds has this server id (the caller then tracks everything)."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        instance = await uow.instances.get_by_server_id(server_id)
    if instance is None or instance.state is not S.BUILDING:
        return False
    if instance.lease_until is not None and instance.lease_until > now:
        return False
    outcomes: list[_Outcome] = []
    server = await _read(ctx, instance, outcomes)
    if server is not None:
        outcomes += await _follow(ctx, instance, server)
    await _record(ctx, report, outcomes)
    return True


async def _record(ctx: EngineContext, report: TickReport, outcomes: list[_Outcome]) -> None:
    """Record a tick's outcomes in one transaction, each a compare-and-set from `building`."""
    if not outcomes:
        return
    async with ctx.uow() as uow:
        for outcome in outcomes:
            o = outcome
            moved = await ctx.moves.step(
                o.instance, S.BUILDING, o.new, o.change, o.event, leased=False, uow=uow
            )
            if moved is not None:
                report.built += outcome.new is S.BUILT
                report.failed += outcome.new is S.FAILED
                if outcome.seconds is not None:
                    report.build_seconds.append(outcome.seconds)
        await uow.commit()


async def _note_outage(
    ctx: EngineContext, building: list[InstanceRecord], error: VirtFusionError
) -> None:
    """Say on each building server that tracking cannot read the panel (once per outage: a
    row with a note keeps it). The next listing that works clears the notes (and writes the
    "installing" milestone, if a build was not yet confirmed)."""
    poll = ctx.config.poll_interval_s
    note = f"the panel's list of servers failed ({error}); asking again every {poll:g} s"
    quiet = [i for i in building if i.error is None]
    if not quiet:
        return
    change = InstanceChange(error=note)
    async with ctx.uow() as uow:
        for instance in quiet:
            await ctx.moves.step(instance, S.BUILDING, S.BUILDING, change, leased=False, uow=uow)
        await uow.commit()


def _due(ctx: EngineContext, building: list[InstanceRecord]) -> bool:
    """At most one listing per poll interval, except that builds started since the last one
    are looked at right away (a fast panel's builds are noticed at once)."""
    last = ctx.last_listing_at
    interval_s = ctx.config.poll_interval_s
    # Ticks come one interval apart, give or take the scheduler's jitter (milliseconds).
    due_after = timedelta(seconds=interval_s - min(0.5, interval_s / 10))
    if last is None or ctx.clock() - last >= due_after:
        return True
    return any(i.build_started_at is None or i.build_started_at > last for i in building)


async def _read(
    ctx: EngineContext, instance: InstanceRecord, outcomes: list[_Outcome]
) -> Server | None:
    """A server missing from the listing, read alone; a deleted one fails its row."""
    server_id = instance.server_id
    try:
        return await ctx.client.server(server_id or -1)
    except NotFoundError:
        reason = f"server {server_id} was deleted on the panel during its build"
        outcomes.append(await _failed(ctx, instance, reason, server_id, cleanup=False))
    except VirtFusionError as error:
        logger.warning("%s: could not read server %s: %s", instance.name, server_id, error)
    return None


async def _failed(
    ctx: EngineContext,
    instance: InstanceRecord,
    reason: str,
    server_id: int | None,
    *,
    cleanup: bool = True,
) -> _Outcome:
    deleted = cleanup and await ctx.cleanup(server_id, instance)
    reason, event = ctx.failure(reason, stage="build", server_id=server_id, deleted=deleted)
    change = ctx.moves.released(S.FAILED, error=reason, finished=True)
    return _Outcome(instance, S.FAILED, change, event)


async def _follow(ctx: EngineContext, instance: InstanceRecord, server: Server) -> list[_Outcome]:
    """What to record for one building server; `error` set means the build is not yet
    confirmed (its "installing" milestone is written when the panel shows it)."""
    now = ctx.clock()
    started = instance.build_started_at or now
    elapsed = (now - started).total_seconds()
    phase = server.phase
    config = ctx.config
    if phase is BuildPhase.COMPLETE:
        # The listing names no OS (the spec has no OS name anywhere; `osTemplateInstallId` is
        # only on the single object), and the build asked for the planned template: name that.
        os_name = instance.plan.os_label
        change = replace(
            RELEASE,
            ipv4=list(server.ipv4),
            os_name=os_name,
            hypervisor_id=server.hypervisor_id or instance.hypervisor_id,
            finished_at=now,
            error=None,
            expires_at=_expiry(instance, now),
        )
        built = InstanceBuilt(
            server_id=server.id, ipv4=list(server.ipv4), os=os_name, seconds=round(elapsed)
        )
        done = _Outcome(instance, S.BUILT, change, built, seconds=elapsed)
        return [*_confirm(instance), done]
    if phase is BuildPhase.FAILED:
        reason = f"the panel reports that the OS installation failed ({server.failure_signal})"
        return [*_confirm(instance), await _failed(ctx, instance, reason, server.id)]
    if phase is BuildPhase.ALLOCATED and elapsed >= config.create_grace_s:
        # An ambiguous build that never reached the panel: the server is still unbuilt.
        note = "the build did not start on the panel; building it again"
        return [_Outcome(instance, S.CREATED, ctx.moves.released(S.CREATED, error=note))]
    if elapsed >= config.build_timeout_s:
        minutes = config.build_timeout_s / 60
        reason = (
            f"the build did not finish within {minutes:g} minutes (VF_BUILD_TIMEOUT); "
            f"last phase {phase.value}"
        )
        return [*_confirm(instance), await _failed(ctx, instance, reason, server.id)]
    if phase is not BuildPhase.ALLOCATED:
        return _confirm(instance)
    return []


def _expiry(instance: InstanceRecord, built_at: datetime) -> datetime | None:
    """When the server's lifetime ends: its planned lifetime after it was built (whole
    seconds: the expiry is compared exactly, once per value)."""
    lifetime = instance.plan.lifetime_s
    if lifetime is None:
        return None
    return built_at.replace(microsecond=0) + timedelta(seconds=lifetime)


def _confirm(instance: InstanceRecord) -> list[_Outcome]:
    """The "installing" milestone of a build the panel shows, unless already confirmed."""
    if instance.error is None:
        return []
    change, event = confirmed(instance)
    return [_Outcome(instance, S.BUILDING, change, event)]
