"""Build created servers: commit the intent, call `POST /servers/{id}/build` once.

A server is built only while its `commissionStatus` is 0. An unclear build answer is settled by
asking the panel: at once when the panel answered (a 5xx), or by tracking when no answer came
(the panel may still be working on it). Until the panel shows the build under way, the row is
`building` with a note in `error` (`BUILD_REQUESTED` or why it is unclear); tracking clears the
note and writes the "installing" milestone when it sees the build, if nobody has yet.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from bot.provisioning.engine.context import EngineContext, TickReport, clock_text
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
    PanelError,
    RateLimitedError,
    VirtFusionError,
)

__all__ = ["BUILD_REQUESTED", "build_one", "confirmed", "start_build"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState

BUILD_REQUESTED = "build requested; waiting for the panel's answer"


def confirmed(instance: InstanceRecord) -> tuple[InstanceChange, InstanceBuildStarted]:
    """The change and milestone of a build the panel shows under way (lease released)."""
    change = replace(RELEASE, error=None, next_check_at=None)
    return change, InstanceBuildStarted(server_id=instance.server_id, os=instance.plan.os_label)


async def build_one(ctx: EngineContext, instance: InstanceRecord, report: TickReport) -> None:
    """Build one leased created server (or follow a build a crash left under way)."""
    server = await ctx.read_server(instance, S.CREATED, report, "before it was built")
    if server is None:
        return
    if server.phase is not BuildPhase.ALLOCATED:
        # The build was already issued (we crashed after calling it): just follow it.
        change, started_event = confirmed(instance)
        since = replace(change, build_started_at=instance.build_started_at or ctx.clock())
        await ctx.moves.step(instance, S.CREATED, S.BUILDING, since, started_event)
        return
    intent = InstanceChange(build_started_at=ctx.clock(), error=BUILD_REQUESTED)
    started = await ctx.moves.step(instance, S.CREATED, S.BUILDING, intent)
    if started is not None:
        await start_build(ctx, started, server.id, report)


async def start_build(
    ctx: EngineContext, started: InstanceRecord, server_id: int, report: TickReport
) -> None:
    """Call the build on a leased row whose intent (`building`) is committed; record it."""
    try:
        await ctx.client.build_server(server_id, started.plan.build_body)
    except AmbiguousResultError as error:
        await _unclear(ctx, started, server_id, error, report)
        return
    except InvalidRequestError as error:
        reason = f"the panel refused to build it: {error.detail or error}"
        await ctx.fail(started, S.BUILDING, reason, stage="build")
        report.failed += 1
        return
    except (ConnectError, RateLimitedError, LockedError, ApiError) as error:
        await _again_later(ctx, started, f"the panel failed ({error})")
        return
    change, started_event = confirmed(started)
    if await ctx.moves.step(started, S.BUILDING, S.BUILDING, change, started_event):
        report.builds_started += 1


async def _again_later(ctx: EngineContext, started: InstanceRecord, why: str) -> None:
    backoff = ctx.config.retry_backoff_s
    again = clock_text(ctx.clock() + timedelta(seconds=backoff))
    note = f"{why}; building it again at {again}"
    await ctx.wait(started, S.BUILDING, S.CREATED, note, after_s=backoff)


async def _unclear(
    ctx: EngineContext,
    started: InstanceRecord,
    server_id: int,
    error: AmbiguousResultError,
    report: TickReport,
) -> None:
    """The build call failed after it may have reached the panel: ask the panel."""
    cause = error.cause
    if isinstance(cause, PanelError):  # the panel answered: what it did is visible now
        try:
            server = await ctx.client.server(server_id)
        except VirtFusionError as read_error:
            logger.warning("%s: could not read the server: %s", started.name, read_error)
        else:
            if server.phase is BuildPhase.ALLOCATED:
                why = f"the panel failed ({cause}) and did not build it"
                await _again_later(ctx, started, why)
                return
            change, started_event = confirmed(started)
            if await ctx.moves.step(started, S.BUILDING, S.BUILDING, change, started_event):
                report.builds_started += 1
            return
    # No answer: the panel may still be working on the call. Tracking looks each poll.
    logger.warning("%s: build outcome unknown; tracking reads the server: %s", started.name, cause)
    since = started.build_started_at or ctx.clock()
    until = clock_text(since + timedelta(seconds=ctx.config.create_grace_s))
    note = f"build answer lost ({cause}); checking the panel until {until}"
    await ctx.wait(started, S.BUILDING, S.BUILDING, note)
