"""Build created servers: commit the intent, call `POST /servers/{id}/build` once.

A server is built only while its `commissionStatus` is 0; an ambiguous build is settled by
reading the server again (`track`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from bot.provisioning.engine.context import EngineContext, TickReport
from bot.provisioning.events import InstanceBuildStarted
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import RELEASE, InstanceChange
from bot.virtfusion import (
    AmbiguousResultError,
    ApiError,
    BuildPhase,
    ConnectError,
    InvalidRequestError,
    LockedError,
    RateLimitedError,
)

__all__ = ["build_due"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState


async def build_due(ctx: EngineContext, report: TickReport) -> None:
    """Start the builds of created servers of running requests."""

    async def step(instance: InstanceRecord) -> None:
        await _build_one(ctx, instance, report)

    await ctx.run_due(S.CREATED, step)


async def _build_one(ctx: EngineContext, instance: InstanceRecord, report: TickReport) -> None:
    server = await ctx.read_server(instance, S.CREATED, report, "before it was built")
    if server is None:
        return
    plan = instance.plan
    started_event = InstanceBuildStarted(server_id=server.id, os=plan.os_label)
    if server.phase is not BuildPhase.ALLOCATED:
        # The build was already issued (we crashed after calling it): just follow it.
        since = replace(RELEASE, build_started_at=instance.build_started_at or ctx.clock())
        await ctx.moves.step(instance, S.CREATED, S.BUILDING, since, started_event)
        return
    intent = InstanceChange(build_started_at=ctx.clock())  # committed before the panel call
    started = await ctx.moves.step(instance, S.CREATED, S.BUILDING, intent)
    if started is None:
        return
    try:
        await ctx.client.build_server(server.id, plan.build_body)
    except AmbiguousResultError as error:
        logger.warning(
            "%s: build outcome unknown; tracking will read the server: %s", instance.name, error
        )
        await ctx.release(started)
        return
    except InvalidRequestError as error:
        reason = f"the panel refused to build it: {error.detail or error}"
        await ctx.fail(started, S.BUILDING, reason, stage="build")
        report.failed += 1
        return
    except (ConnectError, RateLimitedError, LockedError, ApiError) as error:
        await ctx.moves.move(
            started,
            S.BUILDING,
            S.CREATED,
            error=str(error),
            next_check_at=ctx.clock() + timedelta(seconds=ctx.config.retry_backoff_s),
        )
        return
    await ctx.moves.step(started, S.BUILDING, S.BUILDING, RELEASE, started_event)
    report.builds_started += 1
