"""Settle ambiguous creates: adopt the server the panel made, or create again after a grace.

A server is adopted only when it matches everything the create body fixed: it belongs to the
owner, sits on a hypervisor of the planned group, has the planned memory, storage and CPU, is
unnamed and never built, was created within the create call's window, and is not recorded on
another row. What is recorded is what the panel reports (its hypervisor and that hypervisor's
group). Reconciliation runs only when no create call of ours is in flight, so it never adopts
a server whose creator has yet to record it; `instances.server_id` is unique, so two workers
can never adopt the same server.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.provisioning.engine.context import EngineContext, TickReport, clock_text
from bot.provisioning.engine.create import record_created
from bot.provisioning.model import InstanceRecord, InstanceState
from bot.provisioning.ports import ServerAlreadyClaimedError
from bot.virtfusion import BuildPhase, Server, VirtFusionError

__all__ = ["reconcile"]

logger = logging.getLogger("bot.provisioning.engine")

S = InstanceState


async def reconcile(ctx: EngineContext, report: TickReport) -> None:
    """Move creates whose worker died to `create_unknown`, then settle every such row."""
    # A `creating` row whose lease expired belongs to a worker that died mid-call.
    for stale in await ctx.claim([S.CREATING], request_states=None):
        intent = stale.intent_at or ctx.clock()
        until = clock_text(intent + timedelta(seconds=ctx.config.create_grace_s))
        note = f"worker stopped mid-create; looking for the server on the panel until {until}"
        await ctx.wait(stale, S.CREATING, S.CREATE_UNKNOWN, note)
    unknown = await ctx.claim([S.CREATE_UNKNOWN], request_states=None)
    if not unknown:
        return
    try:
        await _settle(ctx, unknown, report)
    except VirtFusionError as error:
        logger.warning("could not look for servers of unclear creates: %s", error)
        for instance in unknown:  # released on every way out: nobody waits for our lease
            await ctx.release(instance, after_s=ctx.config.poll_interval_s)


async def _settle(ctx: EngineContext, unknown: list[InstanceRecord], report: TickReport) -> None:
    servers = await ctx.client.user_servers(ctx.config.owner_user_id)
    async with ctx.uow() as uow:
        in_flight = await uow.instances.list_by_states([S.CREATING])
        claimed = await uow.instances.claimed_server_ids()
    if in_flight:  # a create of ours may still answer with one of these servers: wait
        for instance in unknown:
            await ctx.release(instance, after_s=ctx.config.poll_interval_s)
        return
    candidates = [s for s in servers if s.id not in claimed and _fresh(s)]
    full: dict[int, Server] = {}
    pending = sorted(unknown, key=lambda i: (i.intent_at or ctx.clock(), i.id))
    for index, instance in enumerate(pending):
        try:
            match = await _match(ctx, instance, candidates, full)
        except VirtFusionError:
            for rest in pending[index:]:
                await ctx.release(rest, after_s=ctx.config.poll_interval_s)
            raise
        if match is not None:
            server, group = match
            candidates.remove(server)
            await _adopt(ctx, instance, full.get(server.id, server), group, report)
            continue
        intent = instance.intent_at or ctx.clock()
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


async def _adopt(
    ctx: EngineContext,
    instance: InstanceRecord,
    server: Server,
    group: tuple[int, str],
    report: TickReport,
) -> None:
    try:
        adopted = await record_created(
            ctx, instance, server, expected=S.CREATE_UNKNOWN, reconciled=True, group=group
        )
    except ServerAlreadyClaimedError:  # another replica adopted it just now
        await ctx.release(instance)
        return
    if adopted is not None:
        report.adopted += 1
        logger.info("%s: adopted server %d after an ambiguous create", instance.name, server.id)


async def _match(
    ctx: EngineContext,
    instance: InstanceRecord,
    candidates: list[Server],
    full: dict[int, Server],
) -> tuple[Server, tuple[int, str]] | None:
    """The first candidate that everything the create body fixed agrees with, and its group.

    A listing row that lacks a field (the per-user list has no `created`) is completed by
    reading the server itself, once per server.
    """
    plan = instance.plan
    body = plan.create_body
    intent = instance.intent_at or ctx.clock()
    skew = timedelta(seconds=ctx.config.clock_skew_s)
    # The call cannot outlive its lease (VF_LEASE is longer than a create with its retries).
    window = (intent - skew, intent + timedelta(seconds=ctx.config.lease_s) + skew)
    for row in candidates:
        if not _same_owner(row, body.user_id) or not _same_size(row, instance):
            continue
        server = full.get(row.id)
        if server is None:
            server = full[row.id] = await ctx.client.server(row.id)
        if not (_fresh(server) and _same_owner(server, body.user_id)):
            continue
        if not _same_size(server, instance) or not _within(server.created, window):
            continue
        group = await ctx.group_of(server.hypervisor_id or row.hypervisor_id)
        if group is None or group[0] != plan.group_id:
            continue
        return row, group
    return None


def _fresh(server: Server) -> bool:
    """What a fresh create looks like on the panel: unnamed and never built."""
    return not server.name and server.phase is BuildPhase.ALLOCATED


def _same_owner(server: Server, user_id: int) -> bool:
    return server.owner_id is None or server.owner_id == user_id


def _same_size(server: Server, instance: InstanceRecord) -> bool:
    """The server's memory, storage and CPU are the planned ones (where the answer has them;
    the server object always does)."""
    plan = instance.plan
    res = server.resources
    if res is None:
        return True
    pairs = (
        (res.memory_mb, plan.memory_mb),
        (res.storage_gb, plan.disk_gb),
        (res.cpu_cores, plan.cpu_cores),
    )
    return all(have is None or have == want for have, want in pairs)


def _within(created: datetime | None, window: tuple[datetime, datetime]) -> bool:
    return created is not None and window[0] <= created <= window[1]
