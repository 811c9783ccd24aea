"""The request lifecycle: submit, decide (approve, reject, expire), cancel, retry, clean up, read.

Every decision is a compare-and-set, so the first one wins and later ones raise
`AlreadyDecidedError` naming who decided. The engine (``bot.provisioning.engine``) carries out
running requests; this module never calls the panel except to delete what failed servers left.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from datetime import timedelta

from bot.provisioning.errors import AlreadyDecidedError, UnknownRequestError
from bot.provisioning.events import (
    InstanceDeleted,
    RequestApproved,
    RequestCancelRequested,
    RequestExpired,
    RequestRejected,
    RequestRetried,
    RequestStarted,
    RequestSubmitted,
)
from bot.provisioning.model import (
    TERMINAL_REQUEST_STATES,
    InstanceRecord,
    InstanceState,
    JsonDict,
    NewInstance,
    RequestRecord,
    RequestState,
)
from bot.provisioning.plan import Plan
from bot.provisioning.ports import (
    RELEASE,
    InstanceChange,
    NewAudit,
    NewRequest,
    RequestChange,
    UnitOfWork,
)
from bot.provisioning.request import ProvisionRequest, request_to_json
from bot.provisioning.transitions import Context, Service, cancel_planned, emit_request

__all__ = ["RequestService"]

logger = logging.getLogger("bot.provisioning.requests")

S = InstanceState
R = RequestState

_DECIDED_STATES = (R.RUNNING, R.COMPLETED, R.PARTIALLY_FAILED, R.FAILED)


class RequestService(Service):
    """Requests from submission to their end; safe to run in replicas."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)

    # -- submit and read ------------------------------------------------------------------------

    async def submit(
        self,
        *,
        key: str,
        requester: str,
        source: str,
        request: ProvisionRequest,
        plan: Plan,
        approval_required: bool,
        approval_ttl_s: float | None = None,
        channel: str | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Store a planned request once per `key`; True when it was new.

        A request that needs no approval starts running at once.
        """
        now = self._clock()
        state = R.PENDING_APPROVAL if approval_required else R.RUNNING
        expires = now + timedelta(seconds=approval_ttl_s) if approval_ttl_s else None
        async with self._uow() as uow:
            new = NewRequest(
                key=key,
                requester=requester,
                source=source,
                project_name=request.project_name,
                payload=request_to_json(request),
                plan=plan.model_dump(mode="json"),
                state=state,
                expires_at=expires if approval_required else None,
                channel=channel,
            )
            record, created = await uow.requests.add_or_get(new, now=now)
            if not created:
                return record, False
            await uow.instances.add_many(
                record.id,
                [
                    NewInstance(position=i, name=s.name, spec=s.model_dump(mode="json"))
                    for i, s in enumerate(plan.servers)
                ],
                now,
            )
            submitted = RequestSubmitted(
                requester=requester,
                servers=len(plan.servers),
                approval_required=approval_required,
            )
            await emit_request(uow, record.id, submitted, now)
            if not approval_required:
                await emit_request(uow, record.id, RequestStarted(), now)
            await uow.audit.add(
                NewAudit(
                    requester,
                    "request.submit",
                    record.human_id,
                    state.value,
                    {"source": source, "servers": len(plan.servers)},
                ),
                at=now,
            )
            await uow.commit()
        return record, True

    async def recent(self, *, limit: int = 20, requester: str | None = None) -> list[RequestRecord]:
        """Newest requests first."""
        async with self._uow() as uow:
            return await uow.requests.list_recent(requester=requester, limit=limit)

    async def by_state(self, states: Collection[RequestState]) -> list[RequestRecord]:
        """Requests in any of `states`."""
        async with self._uow() as uow:
            return await uow.requests.list_by_state(states)

    async def find_by_key(self, key: str) -> RequestRecord | None:
        """The request submitted under this idempotency key, if any."""
        async with self._uow() as uow:
            return await uow.requests.get_by_key(key)

    async def get(self, request_id: int) -> tuple[RequestRecord, list[InstanceRecord]]:
        """A request and its instances; UnknownRequestError if there is none."""
        async with self._uow() as uow:
            record = await uow.requests.get(request_id)
            if record is None:
                raise UnknownRequestError(request_id)
            return record, await uow.instances.list_for_request(request_id)

    async def has_work(self) -> bool:
        """True while any request is running or any server is in flight."""
        async with self._uow() as uow:
            running = await uow.requests.list_by_state([R.RUNNING])
            in_flight = await uow.instances.list_in_flight()
        return bool(running or in_flight)

    # -- decisions ------------------------------------------------------------------------------

    async def approve(self, request_id: int, *, actor: str) -> RequestRecord:
        """Approve a pending request (first decision wins); it starts running."""
        return await self._decide(request_id, actor=actor, new=R.RUNNING, note=None)

    async def reject(self, request_id: int, *, actor: str, reason: str | None) -> RequestRecord:
        """Reject a pending request; nothing is created."""
        return await self._decide(request_id, actor=actor, new=R.REJECTED, note=reason)

    async def _decide(
        self, request_id: int, *, actor: str, new: RequestState, note: str | None
    ) -> RequestRecord:
        now = self._clock()
        approved = new is R.RUNNING
        event = (
            RequestApproved(by=actor, reason=note or "")
            if approved
            else RequestRejected(by=actor, reason=note or "")
        )
        async with self._uow() as uow:
            record = await uow.requests.transition(
                request_id,
                expected=[R.PENDING_APPROVAL],
                new=new,
                now=now,
                change=RequestChange(decided_by=actor, decided_at=now, decision_note=note),
            )
            if record is None:
                raise await self._not_decidable(uow, request_id)
            if not approved:
                await cancel_planned(uow, request_id, now)
            await emit_request(uow, request_id, event, now)
            if approved:
                await emit_request(uow, request_id, RequestStarted(), now)
            await uow.audit.add(
                NewAudit(
                    actor, event.KIND, record.human_id, "ok", {"reason": note} if note else None
                ),
                at=now,
            )
            await uow.commit()
        return record

    @staticmethod
    async def _not_decidable(uow: UnitOfWork, request_id: int) -> Exception:
        current = await uow.requests.get(request_id)
        if current is None:
            return UnknownRequestError(request_id)
        return AlreadyDecidedError(decided_text(current))

    async def expire_due(self) -> list[RequestRecord]:
        """Expire pending requests whose approval window has passed."""
        now = self._clock()
        expired: list[RequestRecord] = []
        async with self._uow() as uow:
            due = await uow.requests.list_expired(now)
        for candidate in due:
            async with self._uow() as uow:
                record = await uow.requests.transition(
                    candidate.id, expected=[R.PENDING_APPROVAL], new=R.EXPIRED, now=now
                )
                if record is None:
                    continue
                await cancel_planned(uow, record.id, now)
                await emit_request(uow, record.id, RequestExpired(), now)
                await uow.audit.add(
                    NewAudit("vfbot", "request.expire", record.human_id, "expired"), at=now
                )
                await uow.commit()
                expired.append(record)
        return expired

    async def cancel(self, request_id: int, *, actor: str, delete_servers: bool) -> RequestRecord:
        """Stop a request: nothing new is created; servers that exist are kept or deleted."""
        now = self._clock()
        async with self._uow() as uow:
            record = await uow.requests.transition(
                request_id,
                expected=[R.PENDING_APPROVAL],
                new=R.CANCELLED,
                now=now,
                change=RequestChange(decided_by=actor, decided_at=now, cancel_requested=True),
            )
            if record is not None:
                await cancel_planned(uow, request_id, now)
            else:
                record = await uow.requests.transition(
                    request_id,
                    expected=[R.RUNNING, R.APPROVED],
                    new=R.RUNNING,
                    now=now,
                    change=RequestChange(cancel_requested=True, delete_on_cancel=delete_servers),
                )
            if record is None:
                raise await self._not_decidable(uow, request_id)
            event = RequestCancelRequested(by=actor, delete_servers=delete_servers)
            await emit_request(uow, request_id, event, now)
            await uow.audit.add(
                NewAudit(
                    actor,
                    "request.cancel",
                    record.human_id,
                    "ok",
                    {"delete_servers": delete_servers},
                ),
                at=now,
            )
            await uow.commit()
        return record

    # -- after a failure ------------------------------------------------------------------------

    async def retry_failed(self, request_id: int, *, actor: str) -> list[InstanceRecord]:
        """Create the failed servers of a finished request again; leftovers are deleted first.

        Idempotent: a second call finds the request running again and raises
        AlreadyDecidedError.
        """
        record, instances = await self.get(request_id)
        if record.state not in (R.PARTIALLY_FAILED, R.FAILED):
            raise AlreadyDecidedError(
                f"{record.human_id} is {record.state.value.replace('_', ' ')}; only a request "
                "whose servers failed can be retried."
            )
        failed = [i for i in instances if i.state is S.FAILED]
        for instance in failed:  # a failed build leaves a server behind: remove it first
            if instance.server_id is not None:
                await self._client.delete_server(instance.server_id)
        now = self._clock()
        fresh = InstanceChange(
            server_id=None,
            hypervisor_id=None,
            ipv4=[],
            error=None,
            attempts=0,
            intent_at=None,
            build_started_at=None,
            finished_at=None,
            next_check_at=None,
            lease_owner=RELEASE.lease_owner,
            lease_until=RELEASE.lease_until,
        )
        async with self._uow() as uow:
            changed = await uow.requests.transition(
                request_id, expected=[R.PARTIALLY_FAILED, R.FAILED], new=R.RUNNING, now=now
            )
            if changed is None:
                raise AlreadyDecidedError(f"{record.human_id} is already being retried.")
            retried = []
            for instance in failed:
                change = fresh
                original = _planned_spec(record, instance)
                if original is not None:  # failover moved it: start again from its first group
                    change = dataclasses.replace(fresh, spec=original)
                again = await uow.instances.transition(
                    instance.id, expected=[S.FAILED], new=S.PLANNED, now=now, change=change
                )
                if again is not None:
                    retried.append(again)
            names = [i.name for i in retried]
            await emit_request(uow, request_id, RequestRetried(by=actor, servers=names), now)
            await uow.audit.add(
                NewAudit(actor, "request.retry_failed", record.human_id, "ok", {"servers": names}),
                at=now,
            )
            await uow.commit()
        return retried

    async def cleanup_failed(self, request_id: int, *, actor: str) -> list[InstanceRecord]:
        """Delete what failed servers left on the panel; safe to repeat (gone counts as done)."""
        record, instances = await self.get(request_id)
        if record.state not in TERMINAL_REQUEST_STATES:
            raise AlreadyDecidedError(
                f"{record.human_id} is still {record.state.value.replace('_', ' ')}; clean up "
                "after it finishes."
            )
        cleaned: list[InstanceRecord] = []
        for instance in instances:
            if instance.state is not S.FAILED:
                continue
            if instance.server_id is not None:
                await self._client.delete_server(instance.server_id)
            moved = await self._moves.move(
                instance,
                S.FAILED,
                S.DELETED,
                event=InstanceDeleted(server_id=instance.server_id, by=actor),
                finished=True,
                leased=False,
            )
            if moved is not None:
                cleaned.append(moved)
        await self._moves.audit(
            actor,
            "request.cleanup",
            record.human_id,
            "ok",
            {"servers": [i.name for i in cleaned]},
        )
        return cleaned


def decided_text(record: RequestRecord) -> str:
    """Why a request can no longer be decided, naming who decided it."""
    if record.decided_by and record.state in _DECIDED_STATES:
        return f"{record.human_id} was already approved by {record.decided_by}."
    if record.decided_by and record.state is R.REJECTED:
        return f"{record.human_id} was already rejected by {record.decided_by}."
    return (
        f"{record.human_id} is {record.state.value.replace('_', ' ')}; there is nothing to decide."
    )


def _planned_spec(record: RequestRecord, instance: InstanceRecord) -> JsonDict | None:
    """The server's plan as submitted, when group failover has changed it since; else None."""
    servers = (record.plan or {}).get("servers")
    if not isinstance(servers, list) or not 0 <= instance.position < len(servers):
        return None
    original = servers[instance.position]
    if not isinstance(original, dict) or original.get("name") != instance.name:
        return None
    return original if original != instance.spec else None
