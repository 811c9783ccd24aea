"""Create planned servers: commit the intent, call `POST /servers` once, record the answer.

`POST /servers` is never repeated once it may have reached the panel: an ambiguous answer moves
the server to `create_unknown`, which `reconcile` settles.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from bot.provisioning.engine.context import EngineContext, TickReport
from bot.provisioning.events import InstanceCreated
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import RELEASE, InstanceChange, ServerAlreadyClaimedError
from bot.virtfusion import (
    AmbiguousResultError,
    ApiError,
    ConnectError,
    InvalidRequestError,
    RateLimitedError,
    Server,
    VirtFusionError,
)

__all__ = ["create_due", "record_created"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState


async def create_due(ctx: EngineContext, report: TickReport) -> None:
    """Create the due planned servers of running requests (a few per tick)."""

    async def step(instance: InstanceRecord) -> None:
        await _create_one(ctx, instance, report)

    await ctx.run_due(S.PLANNED, step, limit=ctx.config.concurrency * 4)


async def _create_one(ctx: EngineContext, instance: InstanceRecord, report: TickReport) -> None:
    now = ctx.clock()  # the intent, committed before the panel call
    intent = InstanceChange(intent_at=now, attempts=instance.attempts + 1, error=None)
    started = await ctx.moves.step(instance, S.PLANNED, S.CREATING, intent)
    if started is None:
        return
    try:
        server = await ctx.client.create_server(instance.plan.create_body)
    except AmbiguousResultError as error:
        logger.warning("%s: create outcome unknown, will reconcile: %s", instance.name, error)
        await ctx.moves.move(started, S.CREATING, S.CREATE_UNKNOWN, error=str(error))
        return
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
            await ctx.moves.move(
                started,
                S.CREATING,
                S.PLANNED,
                error=str(error),
                next_check_at=ctx.clock() + timedelta(seconds=ctx.config.retry_backoff_s),
            )
        return
    except VirtFusionError as error:  # anything else after sending: treat as ambiguous
        await ctx.moves.move(started, S.CREATING, S.CREATE_UNKNOWN, error=str(error))
        return
    try:
        recorded = await record_created(ctx, started, server, expected=S.CREATING, reconciled=False)
    except ServerAlreadyClaimedError:
        # Panels never reuse server ids: another row holding this id means the database
        # was used with another panel. Stop here rather than create more servers.
        logger.error(
            "%s: the panel returned server %d, which this database already records for "
            "another server; was DATABASE_URL used with another panel?",
            instance.name,
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
    if recorded:
        report.created += 1
    else:  # our lease ran out mid-call and another worker moved the row on
        logger.warning(
            "%s: created server %d after losing the lease; reconciliation will adopt it",
            instance.name,
            server.id,
        )


async def record_created(
    ctx: EngineContext,
    instance: InstanceRecord,
    server: Server,
    *,
    expected: InstanceState,
    reconciled: bool,
) -> bool:
    """Record the panel server on the instance; False when the row moved on without us.

    Raises ServerAlreadyClaimedError when another instance already holds that server id.
    """
    plan = instance.plan
    change = replace(
        RELEASE,
        server_id=server.id,
        hypervisor_id=server.hypervisor_id,
        group_id=plan.group_id,
        ipv4=list(server.ipv4),
        error=None,
        next_check_at=None,
    )
    created = InstanceCreated(
        server_id=server.id,
        group=plan.group_name,
        hypervisor_id=server.hypervisor_id,
        hypervisor=server.hypervisor.name if server.hypervisor else "",
        ipv4=list(server.ipv4),
        reconciled=reconciled,
    )
    return await ctx.moves.step(instance, expected, S.CREATED, change, created) is not None
