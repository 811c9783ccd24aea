"""The end of requests: carry out cancellations, and finish requests whose servers all ended."""

from __future__ import annotations

from bot.provisioning.engine.context import EngineContext, TickReport
from bot.provisioning.events import InstanceCancelled, InstanceDeleted, RequestFinished
from bot.provisioning.model import TERMINAL_INSTANCE_STATES, InstanceState, RequestState
from bot.provisioning.ports import NewAudit
from bot.provisioning.transitions import cancel_planned, emit_request

__all__ = ["finish_requests", "settle_cancelled"]

S = InstanceState
R = RequestState


async def settle_cancelled(ctx: EngineContext, report: TickReport) -> None:
    """For running requests being cancelled: cancel what is planned, delete or keep the rest."""
    async with ctx.uow() as uow:
        running = await uow.requests.list_by_state([R.RUNNING])
    for record in running:
        if not record.cancel_requested:
            continue
        async with ctx.uow() as uow:
            await cancel_planned(uow, record.id, ctx.clock())
            await uow.commit()
            instances = await uow.instances.list_for_request(record.id)
        for instance in instances:
            if instance.state not in (S.CREATED, S.BUILT) or instance.lease_owner:
                continue
            if record.delete_on_cancel and instance.server_id is not None:
                await ctx.client.delete_server(instance.server_id)
                deleted = InstanceDeleted(
                    server_id=instance.server_id, by=record.decided_by or "cancel"
                )
                await ctx.moves.move(
                    instance, instance.state, S.DELETED, event=deleted, finished=True, leased=False
                )
                report.deleted += 1
            elif instance.state is S.CREATED:
                kept = InstanceCancelled(server_id=instance.server_id, kept=True)
                await ctx.moves.move(
                    instance, S.CREATED, S.CANCELLED, event=kept, finished=True, leased=False
                )


async def finish_requests(ctx: EngineContext, report: TickReport) -> None:
    """Move running requests whose servers all ended to their final state, once."""
    async with ctx.uow() as uow:
        running = await uow.requests.list_by_state([R.RUNNING])
        open_counts = await uow.instances.unfinished_counts([r.id for r in running])
    for record in running:
        if open_counts.get(record.id):
            continue  # servers still in flight: nothing to read yet
        now = ctx.clock()
        async with ctx.uow() as uow:
            instances = await uow.instances.list_for_request(record.id)
            if not instances or any(i.state not in TERMINAL_INSTANCE_STATES for i in instances):
                continue
            if (
                record.cancel_requested
                and record.delete_on_cancel
                and any(i.state is S.BUILT for i in instances)
            ):
                continue  # built servers still to delete
            counts: dict[str, int] = {
                state.value: sum(1 for i in instances if i.state is state) for state in S
            }
            built = counts[S.BUILT.value]
            if record.cancel_requested:
                final = R.CANCELLED
            elif built == len(instances):
                final = R.COMPLETED
            elif built:
                final = R.PARTIALLY_FAILED
            else:
                final = R.FAILED
            changed = await uow.requests.transition(
                record.id, expected=[R.RUNNING], new=final, now=now
            )
            if changed is None:
                continue
            nonzero = {k: v for k, v in counts.items() if v}
            finished = RequestFinished.model_validate({"state": final.value, **nonzero})
            await emit_request(uow, record.id, finished, now)
            await uow.audit.add(
                NewAudit("vfbot", "request.finish", record.human_id, final.value, dict(counts)),
                at=now,
            )
            await uow.commit()
        report.finished_requests.append(record.id)
