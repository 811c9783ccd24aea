"""Create planned servers: commit the intent, call `POST /servers` once, record the answer.

`POST /servers` is never repeated once it may have reached the panel: an ambiguous answer moves
the server to `create_unknown`, which `reconcile` settles. A server the panel created is built
at once: its answer says it is `allocated`, so the build intent is committed with the result.

Failover: a 422 creates nothing (the spec's only documented refusal of `POST /servers`), so a
server refused with one has its plan moved to the next group of its list (`fallback_groups`)
and goes back to `planned`, with an `instance.failed_over` milestone, in one transaction. Only
a 422 does this: after an ambiguous answer the server may exist, so reconciliation comes first.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from bot.provisioning.engine.build import BUILD_REQUESTED, start_build
from bot.provisioning.engine.context import EngineContext, TickReport, clock_text
from bot.provisioning.events import InstanceCreated, InstanceFailedOver
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.placement import PassedOver, no_group_left
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
        await _refused(ctx, started, error.detail or str(error), report)
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


async def _refused(
    ctx: EngineContext, started: InstanceRecord, words: str, report: TickReport
) -> None:
    """The panel refused the create (422, nothing created): the next group, or fail naming
    every group tried."""
    plan = started.plan
    lacked = f"the panel refused it: “{words}”"
    if plan.fallback_groups:
        moved = plan.failed_over(lacked)
        logger.info(
            "%s: group %s refused the create (%s); trying group %s",
            started.name,
            plan.group_name,
            words,
            moved.group_name,
        )
        event = InstanceFailedOver(
            from_group=plan.group_name, to_group=moved.group_name, reason=words
        )
        change = replace(
            ctx.moves.released(S.PLANNED), spec=moved.model_dump(mode="json"), attempts=0
        )
        if await ctx.moves.step(started, S.CREATING, S.PLANNED, change, event) is not None:
            report.failed_over += 1
        return
    if plan.passed_over:
        here = PassedOver(
            group_id=plan.group_id, group_name=plan.group_name, reason=lacked, stage="create"
        )
        reason = no_group_left(started.name, [*plan.passed_over, here])
    else:
        reason = f"the panel refused to create it: {words}"
    await ctx.fail(started, S.CREATING, reason, stage="create")
    report.failed += 1


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
