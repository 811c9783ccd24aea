"""Create planned servers: commit the intent, call `POST /servers` once, record the answer.

`POST /servers` is never repeated once it may have reached the panel: an ambiguous answer moves
the server to `create_unknown`, which `reconcile` settles. A server the panel created is built
at once: its answer says it is `allocated`, so the build intent is committed with the result.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from bot.provisioning.engine.build import BUILD_REQUESTED, start_build
from bot.provisioning.engine.context import EngineContext, TickReport, clock_text
from bot.provisioning.events import InstanceCreated
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import RELEASE, InstanceChange, ServerAlreadyClaimedError
from bot.virtfusion import (
    AmbiguousResultError,
    ApiError,
    BuildPhase,
    ConnectError,
    InvalidRequestError,
    RateLimitedError,
    Server,
    VirtFusionError,
)

__all__ = ["create_one", "record_created"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState


async def create_one(ctx: EngineContext, instance: InstanceRecord, report: TickReport) -> None:
    """Create one leased planned server, then start its build."""
    now = ctx.clock()  # the intent, committed before the panel call
    intent = InstanceChange(intent_at=now, attempts=instance.attempts + 1, error=None)
    started = await ctx.moves.step(instance, S.PLANNED, S.CREATING, intent)
    if started is None:
        return
    try:
        server = await ctx.client.create_server(instance.plan.create_body)
    except InvalidRequestError as error:
        reason = f"the panel refused to create it: {error.detail or error}"
        await ctx.fail(started, S.CREATING, reason, stage="create")
        report.failed += 1
        return
    except (ConnectError, RateLimitedError, ApiError) as error:
        # Provably not created (no connection, 429) or refused outright (401/403/404...).
        if started.attempts >= ctx.config.max_create_attempts:
            await ctx.fail(started, S.CREATING, f"could not create it: {error}", stage="create")
            report.failed += 1
        else:
            backoff = ctx.config.retry_backoff_s
            again = clock_text(ctx.clock() + timedelta(seconds=backoff))
            note = f"the panel failed ({error}); creating it again at {again}"
            await ctx.wait(started, S.CREATING, S.PLANNED, note, after_s=backoff)
        return
    except VirtFusionError as error:  # anything after sending (timeout, 5xx): ambiguous
        await _create_unknown(ctx, started, error)
        return
    await _record_and_build(ctx, started, server, report)


async def _create_unknown(ctx: EngineContext, started: InstanceRecord, error: Exception) -> None:
    cause = error.cause if isinstance(error, AmbiguousResultError) else error
    logger.warning("%s: create outcome unknown, will reconcile: %s", started.name, cause)
    intent = started.intent_at or ctx.clock()
    until = clock_text(intent + timedelta(seconds=ctx.config.create_grace_s))
    note = f"create answer lost ({cause}); looking for the server on the panel until {until}"
    await ctx.wait(started, S.CREATING, S.CREATE_UNKNOWN, note)


async def _record_and_build(
    ctx: EngineContext, started: InstanceRecord, server: Server, report: TickReport
) -> None:
    try:
        building = await record_created(ctx, started, server, expected=S.CREATING, reconciled=False)
    except ServerAlreadyClaimedError:
        # Panels never reuse server ids: another row holding this id means the database
        # was used with another panel. Stop here rather than create more servers.
        logger.error(
            "%s: the panel returned server %d, which this database already records for "
            "another server; was DATABASE_URL used with another panel?",
            started.name,
            server.id,
        )
        reason = (
            f"the panel created server {server.id}, but this database already records "
            "that id for another server (was it used with another panel?); the new server "
            "is left on the panel for an operator to check"
        )
        await ctx.fail(started, S.CREATING, reason, stage="create")
        report.failed += 1
        return
    if building is None:  # our lease ran out mid-call and another worker moved the row on
        logger.warning(
            "%s: created server %d after losing the lease; reconciliation will adopt it",
            started.name,
            server.id,
        )
        return
    report.created += 1
    if building.state is S.BUILDING:
        await start_build(ctx, building, server.id, report)


async def record_created(
    ctx: EngineContext,
    instance: InstanceRecord,
    server: Server,
    *,
    expected: InstanceState,
    reconciled: bool,
    group: tuple[int, str] | None = None,
) -> InstanceRecord | None:
    """Record the panel server on the instance, in the group the panel reports (`group`, or
    looked up from its hypervisor); None when the row moved on without us.

    A fresh create the panel reports `allocated` also gets its build intent in the same
    transaction, and keeps its lease for the build (state `building`); otherwise the row is
    released in `created`. Raises ServerAlreadyClaimedError when another instance already
    holds that server id.
    """
    plan = instance.plan
    if group is None:
        try:
            group = await ctx.group_of(server.hypervisor_id)
        except VirtFusionError as error:  # the create body named the group: the panel used it
            logger.warning("%s: could not read the hypervisor's group: %s", instance.name, error)
        group = group or (plan.group_id, plan.group_name)
    build_now = not reconciled and server.phase is BuildPhase.ALLOCATED
    change = InstanceChange(
        server_id=server.id,
        hypervisor_id=server.hypervisor_id,
        group_id=group[0],
        ipv4=list(server.ipv4),
        error=None,
        next_check_at=None,
    )
    if not build_now:
        change = replace(change, lease_owner=RELEASE.lease_owner, lease_until=RELEASE.lease_until)
    created = InstanceCreated(
        server_id=server.id,
        group=group[1] or str(group[0]),
        hypervisor_id=server.hypervisor_id,
        hypervisor=server.hypervisor.name if server.hypervisor else "",
        ipv4=list(server.ipv4),
        reconciled=reconciled,
    )
    async with ctx.uow() as uow:
        recorded = await ctx.moves.step(instance, expected, S.CREATED, change, created, uow=uow)
        if recorded is not None and build_now:
            intent = InstanceChange(build_started_at=ctx.clock(), error=BUILD_REQUESTED)
            building = await ctx.moves.step(recorded, S.CREATED, S.BUILDING, intent, uow=uow)
            recorded = building or recorded
        await uow.commit()
    return recorded
