"""Settle ambiguous creates: adopt the server the panel made, or create again after a grace.

Reconciliation runs only when no create call of ours is in flight, so it never adopts a server
whose creator has yet to record it; `instances.server_id` is unique, so two workers can never
adopt the same server.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.provisioning.engine.context import EngineContext, TickReport
from bot.provisioning.engine.create import record_created
from bot.provisioning.model import InstanceState
from bot.provisioning.plan import ServerPlan
from bot.provisioning.ports import ServerAlreadyClaimedError
from bot.virtfusion import BuildPhase, Server

__all__ = ["reconcile"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState


async def reconcile(ctx: EngineContext, report: TickReport) -> None:
    """Move creates whose worker died to `create_unknown`, then settle every such row."""
    # A `creating` row whose lease expired belongs to a worker that died mid-call.
    for stale in await ctx.claim([S.CREATING], request_states=None):
        await ctx.moves.move(stale, S.CREATING, S.CREATE_UNKNOWN, error="worker stopped mid-create")
    unknown = await ctx.claim([S.CREATE_UNKNOWN], request_states=None)
    if not unknown:
        return
    servers = await ctx.client.user_servers(ctx.config.owner_user_id)
    async with ctx.uow() as uow:
        in_flight = await uow.instances.list_by_states([S.CREATING])
        claimed = await uow.instances.claimed_server_ids()
    if in_flight:  # a create of ours may still answer with one of these servers: wait
        for instance in unknown:
            await ctx.release(instance, after_s=ctx.config.poll_interval_s)
        return
    candidates = [s for s in servers if s.id not in claimed and _adoptable(s)]
    created_at: dict[int, datetime | None] = {}
    for instance in sorted(unknown, key=lambda i: (i.intent_at or ctx.clock(), i.id)):
        intent = instance.intent_at or ctx.clock()
        match = None
        for server in candidates:
            if not _same_size(server, instance.plan):
                continue
            if server.id not in created_at:
                created_at[server.id] = (await ctx.client.server(server.id)).created
            created = created_at[server.id]
            if created is None or created >= intent - timedelta(seconds=ctx.config.clock_skew_s):
                match = server
                break
        if match is not None:
            candidates.remove(match)
            try:
                adopted = await record_created(
                    ctx, instance, match, expected=S.CREATE_UNKNOWN, reconciled=True
                )
            except ServerAlreadyClaimedError:  # another replica adopted it just now
                await ctx.release(instance)
                continue
            if adopted:
                report.adopted += 1
                logger.info(
                    "%s: adopted server %d after an ambiguous create", instance.name, match.id
                )
            continue
        waited = (ctx.clock() - intent).total_seconds()
        if waited >= ctx.config.create_grace_s:
            logger.info(
                "%s: no server appeared within %.0f s; creating again", instance.name, waited
            )
            await ctx.moves.move(instance, S.CREATE_UNKNOWN, S.PLANNED, error=None)
            report.recreated += 1
        else:
            await ctx.release(
                instance,
                after_s=min(ctx.config.poll_interval_s, ctx.config.create_grace_s - waited),
            )


def _adoptable(server: Server) -> bool:
    """What a fresh create looks like on the panel: unnamed and never built."""
    return not server.name and server.phase is BuildPhase.ALLOCATED


def _same_size(server: Server, plan: ServerPlan) -> bool:
    """The server's resources match the plan (when the listing reports them)."""
    res = server.resources
    if res is None:
        return True
    pairs = (
        (res.memory_mb, plan.memory_mb),
        (res.storage_gb, plan.disk_gb),
        (res.cpu_cores, plan.cpu_cores),
    )
    return all(have is None or have == want for have, want in pairs)
