"""The provisioning workflow: submit, decide, then create → build → track, exactly once.

Every step follows one pattern: a short unit of work records the intent (and leases the row to
this worker), the panel is called with no database session open, and a second unit of work
records the result together with its outbox event. The panel has no idempotency key, so:

- `POST /servers` is never repeated once it may have reached the panel. An ambiguous create
  (timeout, 5xx, dropped connection, or a worker that died mid-call) puts the instance in
  `create_unknown`, and reconciliation adopts the owner's unnamed, unbuilt server that matches
  it, or creates again only after `create_grace_s` with nothing to adopt.
- Reconciliation runs only when no create call of ours is in flight, so it never adopts a server
  whose creator has yet to record it; `instances.server_id` is unique, so two workers can never
  adopt the same server.
- A server is built only while its `commissionStatus` is 0; an ambiguous build is settled by
  reading the server again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.provisioning import events
from bot.provisioning.audit import write_audit
from bot.provisioning.errors import AlreadyDecidedError, UnknownRequestError
from bot.provisioning.plan import Plan, ServerPlan
from bot.provisioning.request import ProvisionRequest, request_to_json
from bot.store import (
    TERMINAL_INSTANCE_STATES,
    TERMINAL_REQUEST_STATES,
    InstanceRecord,
    InstanceState,
    NewInstance,
    RequestRecord,
    RequestState,
    ServerAlreadyClaimedError,
    UnitOfWork,
)
from bot.virtfusion import (
    AmbiguousResultError,
    ApiError,
    BuildPhase,
    BuildServerBody,
    ConnectError,
    CreateServerBody,
    InvalidRequestError,
    LockedError,
    NotFoundError,
    RateLimitedError,
    Server,
    VirtFusionClient,
    VirtFusionError,
)

__all__ = ["EngineConfig", "ProvisioningService", "TickReport"]

logger = logging.getLogger("bot.provisioning")

UowFactory = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]

S = InstanceState
R = RequestState


@dataclass(frozen=True)
class EngineConfig:
    """How the engine paces itself; times in seconds."""

    owner_user_id: int
    worker_id: str = field(default_factory=lambda: f"vfbot-{uuid.uuid4().hex[:8]}")
    concurrency: int = 4
    lease_s: float = 300.0  # longer than one create call with all its retries
    poll_interval_s: float = 10.0
    build_timeout_s: float = 1200.0
    create_grace_s: float = 120.0
    clock_skew_s: float = 300.0  # tolerance between our clock and the panel's `created`
    retry_backoff_s: float = 30.0
    max_create_attempts: int = 3
    cleanup_failed: bool = False
    batch: int = 200


@dataclass
class TickReport:
    """What one engine tick did; for logs and tests."""

    created: int = 0
    adopted: int = 0
    recreated: int = 0
    builds_started: int = 0
    built: int = 0
    failed: int = 0
    deleted: int = 0
    finished_requests: list[int] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return any((self.created, self.adopted, self.builds_started, self.built, self.failed))


class ProvisioningService:
    """Submits requests and moves their servers through the panel; safe to run in replicas."""

    def __init__(
        self,
        client: VirtFusionClient,
        uow: UowFactory,
        config: EngineConfig,
        clock: Clock,
    ) -> None:
        self._client = client
        self._uow = uow
        self._config = config
        self._clock = clock
        self._worker = config.worker_id
        self._slots = asyncio.Semaphore(max(1, config.concurrency))

    # -- requests -------------------------------------------------------------------------------

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
        slack_channel: str | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Store a planned request once per `key`; True when it was new.

        A request that needs no approval starts running at once.
        """
        now = self._clock()
        state = R.PENDING_APPROVAL if approval_required else R.RUNNING
        expires = now + timedelta(seconds=approval_ttl_s) if approval_ttl_s else None
        async with self._uow() as uow:
            record, created = await uow.requests.add_or_get(
                key=key,
                requester=requester,
                source=source,
                project_name=request.project_name,
                payload=request_to_json(request),
                plan=plan.model_dump(mode="json"),
                state=state,
                now=now,
                expires_at=expires if approval_required else None,
                slack_channel=slack_channel,
            )
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
            payload = {
                "requester": requester,
                "servers": len(plan.servers),
                "approval_required": approval_required,
            }
            await uow.events.add(
                request_id=record.id, kind=events.REQUEST_SUBMITTED, payload=payload, now=now
            )
            if not approval_required:
                await uow.events.add(
                    request_id=record.id, kind=events.REQUEST_STARTED, payload={}, now=now
                )
            await uow.audit.add(
                at=now,
                actor=requester,
                action="request.submit",
                target=record.human_id,
                result=state.value,
                detail={"source": source, "servers": len(plan.servers)},
            )
            await uow.commit()
        return record, True

    @property
    def worker_id(self) -> str:
        return self._worker

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

    async def remember_slack_event(self, event_id: str) -> bool:
        """True the first time a Slack event id is seen; False for a repeated delivery."""
        now = self._clock()
        async with self._uow() as uow:
            first = await uow.slack_events.remember(event_id, now)
            await uow.commit()
        return first

    async def forget_slack_events(self, older_than_s: float) -> int:
        now = self._clock()
        async with self._uow() as uow:
            removed = await uow.slack_events.forget_older_than(
                now - timedelta(seconds=older_than_s)
            )
            await uow.commit()
        return removed

    async def has_work(self) -> bool:
        """True while any request is running or any server is in flight."""
        async with self._uow() as uow:
            running = await uow.requests.list_by_state([R.RUNNING])
            in_flight = await uow.instances.list_in_flight()
        return bool(running or in_flight)

    async def get(self, request_id: int) -> tuple[RequestRecord, list[InstanceRecord]]:
        """A request and its instances; UnknownRequestError if there is none."""
        async with self._uow() as uow:
            record = await uow.requests.get(request_id)
            if record is None:
                raise UnknownRequestError.for_id(request_id)
            return record, await uow.instances.list_for_request(request_id)

    async def approve(self, request_id: int, *, actor: str) -> RequestRecord:
        """Approve a pending request (first decision wins); it starts running."""
        return await self._decide(
            request_id, actor=actor, new=R.RUNNING, kind=events.REQUEST_APPROVED, note=None
        )

    async def reject(self, request_id: int, *, actor: str, reason: str | None) -> RequestRecord:
        """Reject a pending request; nothing is created."""
        return await self._decide(
            request_id, actor=actor, new=R.REJECTED, kind=events.REQUEST_REJECTED, note=reason
        )

    async def _decide(
        self, request_id: int, *, actor: str, new: RequestState, kind: str, note: str | None
    ) -> RequestRecord:
        now = self._clock()
        async with self._uow() as uow:
            record = await uow.requests.transition(
                request_id,
                expected=[R.PENDING_APPROVAL],
                new=new,
                now=now,
                decided_by=actor,
                decided_at=now,
                decision_note=note,
            )
            if record is None:
                current = await uow.requests.get(request_id)
                if current is None:
                    raise UnknownRequestError.for_id(request_id)
                raise AlreadyDecidedError(_decided_text(current))
            if new is not R.RUNNING:
                await self._cancel_planned(uow, request_id, now)
            await uow.events.add(
                request_id=request_id,
                kind=kind,
                payload={"by": actor, "reason": note or ""},
                now=now,
            )
            if new is R.RUNNING:
                await uow.events.add(
                    request_id=request_id, kind=events.REQUEST_STARTED, payload={}, now=now
                )
            await uow.audit.add(
                at=now,
                actor=actor,
                action=kind,
                target=record.human_id,
                result="ok",
                detail={"reason": note} if note else None,
            )
            await uow.commit()
        return record

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
                await self._cancel_planned(uow, record.id, now)
                await uow.events.add(
                    request_id=record.id, kind=events.REQUEST_EXPIRED, payload={}, now=now
                )
                await uow.audit.add(
                    at=now,
                    actor="vfbot",
                    action="request.expire",
                    target=record.human_id,
                    result="expired",
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
                decided_by=actor,
                decided_at=now,
                cancel_requested=True,
            )
            if record is not None:
                await self._cancel_planned(uow, request_id, now)
            else:
                record = await uow.requests.transition(
                    request_id,
                    expected=[R.RUNNING, R.APPROVED],
                    new=R.RUNNING,
                    now=now,
                    cancel_requested=True,
                    delete_on_cancel=delete_servers,
                )
            if record is None:
                current = await uow.requests.get(request_id)
                if current is None:
                    raise UnknownRequestError.for_id(request_id)
                raise AlreadyDecidedError(_decided_text(current))
            await uow.events.add(
                request_id=request_id,
                kind=events.REQUEST_CANCEL_REQUESTED,
                payload={"by": actor, "delete_servers": delete_servers},
                now=now,
            )
            await uow.audit.add(
                at=now,
                actor=actor,
                action="request.cancel",
                target=record.human_id,
                result="ok",
                detail={"delete_servers": delete_servers},
            )
            await uow.commit()
        return record

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
        async with self._uow() as uow:
            changed = await uow.requests.transition(
                request_id, expected=[R.PARTIALLY_FAILED, R.FAILED], new=R.RUNNING, now=now
            )
            if changed is None:
                raise AlreadyDecidedError(f"{record.human_id} is already being retried.")
            retried = []
            for instance in failed:
                again = await uow.instances.transition(
                    instance.id,
                    expected=[S.FAILED],
                    new=S.PLANNED,
                    now=now,
                    server_id=None,
                    hypervisor_id=None,
                    ipv4=[],
                    error=None,
                    attempts=0,
                    intent_at=None,
                    build_started_at=None,
                    finished_at=None,
                    next_check_at=None,
                    lease_owner=None,
                    lease_until=None,
                )
                if again is not None:
                    retried.append(again)
            await uow.events.add(
                request_id=request_id,
                kind=events.REQUEST_RETRIED,
                payload={"by": actor, "servers": [i.name for i in retried]},
                now=now,
            )
            await uow.audit.add(
                at=now,
                actor=actor,
                action="request.retry_failed",
                target=record.human_id,
                result="ok",
                detail={"servers": [i.name for i in retried]},
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
            moved = await self._move(
                instance,
                S.FAILED,
                S.DELETED,
                event=events.INSTANCE_DELETED,
                finished=True,
                leased=False,
                payload={"server_id": instance.server_id, "by": actor},
            )
            if moved is not None:
                cleaned.append(moved)
        await self.audit(
            actor,
            "request.cleanup",
            record.human_id,
            "ok",
            {"servers": [i.name for i in cleaned]},
        )
        return cleaned

    async def audit(
        self,
        actor: str,
        action: str,
        target: str,
        result: str,
        detail: dict[str, object] | None = None,
    ) -> None:
        """Write one audit entry (refusals, day-2 actions) in its own transaction."""
        await write_audit(
            self._uow,
            at=self._clock(),
            actor=actor,
            action=action,
            target=target,
            result=result,
            detail=detail,
        )

    async def set_slack_message(
        self, request_id: int, *, channel: str, ts: str, notice_ts: str | None = None
    ) -> None:
        """Remember where the request's root message (and notice) live in Slack."""
        fields: dict[str, object] = {"slack_channel": channel, "slack_ts": ts}
        if notice_ts is not None:
            fields["slack_notice_ts"] = notice_ts
        async with self._uow() as uow:
            await uow.requests.update(request_id, now=self._clock(), **fields)
            await uow.commit()

    async def _cancel_planned(self, uow: UnitOfWork, request_id: int, now: datetime) -> None:
        for instance in await uow.instances.list_for_request(request_id):
            if instance.state is S.PLANNED:
                changed = await uow.instances.transition(
                    instance.id, expected=[S.PLANNED], new=S.CANCELLED, now=now, finished_at=now
                )
                if changed is not None:
                    await self._event(uow, changed, events.INSTANCE_CANCELLED, now, {})

    # -- the engine tick ------------------------------------------------------------------------

    async def run_once(self) -> TickReport:
        """One pass of the engine over everything due; each instance is isolated from others."""
        report = TickReport()
        await self.expire_due()
        await self._settle_cancelled(report)
        await self._reconcile(report)
        await self._create_due(report)
        await self._build_due(report)
        await self._track(report)
        await self._finish_requests(report)
        return report

    async def _claim(
        self,
        states: Collection[InstanceState],
        *,
        limit: int | None = None,
        request_states: Collection[RequestState] | None = (R.RUNNING,),
        lease_s: float | None = None,
    ) -> list[InstanceRecord]:
        async with self._uow() as uow:
            claimed = await uow.instances.claim(
                worker=self._worker,
                states=states,
                now=self._clock(),
                lease_s=lease_s or self._config.lease_s,
                limit=limit or self._config.batch,
                request_states=request_states,
            )
            await uow.commit()
        return claimed

    async def _release(self, instance: InstanceRecord, *, after_s: float | None = None) -> None:
        now = self._clock()
        when = now + timedelta(seconds=after_s) if after_s else None
        async with self._uow() as uow:
            await uow.instances.release(
                instance.id, worker=self._worker, next_check_at=when, now=now
            )
            await uow.commit()

    async def _isolated(
        self, instance: InstanceRecord, step: Callable[[InstanceRecord], Awaitable[None]]
    ) -> None:
        """Run one instance's step so that its failure cannot stop the others (an error edge)."""
        async with self._slots:
            try:
                await step(instance)
            except VirtFusionError as error:
                logger.warning("%s: panel error, will retry: %s", instance.name, error)
                await self._release(instance, after_s=self._config.retry_backoff_s)
            except Exception:
                reference = uuid.uuid4().hex[:8]
                logger.exception("%s: step failed (reference %s)", instance.name, reference)
                await self._release(instance, after_s=self._config.retry_backoff_s)

    async def _run_all(
        self, instances: Sequence[InstanceRecord], step: Callable[[InstanceRecord], Awaitable[None]]
    ) -> None:
        await asyncio.gather(*(self._isolated(i, step) for i in instances))

    # -- create ---------------------------------------------------------------------------------

    async def _create_due(self, report: TickReport) -> None:
        await self._run_due(
            S.PLANNED, lambda i: self._create_one(i, report), limit=self._config.concurrency * 4
        )

    async def _run_due(
        self,
        state: InstanceState,
        step: Callable[[InstanceRecord], Awaitable[None]],
        *,
        limit: int | None = None,
    ) -> None:
        """Claim due rows in `state` and run `step` on each, in parallel up to the concurrency
        cap; rows of requests being cancelled are handed back untouched."""
        due = await self._claim([state], limit=limit)
        if not due:
            return
        cancelled = await self._cancel_requested_ids({i.request_id for i in due})

        async def guarded(instance: InstanceRecord) -> None:
            if instance.request_id in cancelled:
                await self._release(instance)
                return
            await step(instance)

        await self._run_all(due, guarded)

    async def _create_one(self, instance: InstanceRecord, report: TickReport) -> None:
        plan = ServerPlan.model_validate(instance.spec)
        now = self._clock()
        async with self._uow() as uow:  # the intent, committed before the panel call
            started = await uow.instances.transition(
                instance.id,
                expected=[S.PLANNED],
                new=S.CREATING,
                now=now,
                worker=self._worker,
                intent_at=now,
                attempts=instance.attempts + 1,
                error=None,
            )
            if started is None:
                return
            await uow.commit()
        try:
            server = await self._client.create_server(
                CreateServerBody.model_validate(plan.create_body)
            )
        except AmbiguousResultError as error:
            logger.warning("%s: create outcome unknown, will reconcile: %s", instance.name, error)
            await self._move(started, S.CREATING, S.CREATE_UNKNOWN, error=str(error))
            return
        except InvalidRequestError as error:
            await self._fail(
                started,
                S.CREATING,
                f"the panel refused to create it: {error.detail or error}",
                stage="create",
            )
            report.failed += 1
            return
        except (ConnectError, RateLimitedError, ApiError) as error:
            # Provably not created (no connection, 429) or refused outright (401/403/404...).
            if started.attempts >= self._config.max_create_attempts:
                await self._fail(
                    started, S.CREATING, f"could not create it: {error}", stage="create"
                )
                report.failed += 1
            else:
                await self._move(
                    started,
                    S.CREATING,
                    S.PLANNED,
                    error=str(error),
                    next_check_at=self._clock() + timedelta(seconds=self._config.retry_backoff_s),
                )
            return
        except VirtFusionError as error:  # anything else after sending: treat as ambiguous
            await self._move(started, S.CREATING, S.CREATE_UNKNOWN, error=str(error))
            return
        try:
            recorded = await self._record_created(
                started, server, expected=S.CREATING, reconciled=False
            )
        except ServerAlreadyClaimedError:
            # Panels never reuse server ids: another row holding this id means the database
            # was used with another panel. Stop here rather than create more servers.
            logger.error(
                "%s: the panel returned server %d, which this database already records for "
                "another server; was DATABASE_URL used with another panel?",
                instance.name,
                server.id,
            )
            await self._fail(
                started,
                S.CREATING,
                f"the panel created server {server.id}, but this database already records "
                "that id for another server (was it used with another panel?); the new server "
                "is left on the panel for an operator to check",
                stage="create",
            )
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

    async def _record_created(
        self, instance: InstanceRecord, server: Server, *, expected: InstanceState, reconciled: bool
    ) -> bool:
        """Record the panel server on the instance; False when the row moved on without us.

        Raises ServerAlreadyClaimedError when another instance already holds that server id.
        """
        now = self._clock()
        plan = ServerPlan.model_validate(instance.spec)
        async with self._uow() as uow:
            changed = await uow.instances.transition(
                instance.id,
                expected=[expected],
                new=S.CREATED,
                now=now,
                worker=self._worker,
                server_id=server.id,
                hypervisor_id=server.hypervisor_id,
                group_id=plan.group_id,
                ipv4=list(server.ipv4),
                error=None,
                lease_owner=None,
                lease_until=None,
                next_check_at=None,
            )
            if changed is None:
                return False
            hypervisor = server.hypervisor.name if server.hypervisor else ""
            await self._event(
                uow,
                changed,
                events.INSTANCE_CREATED,
                now,
                {
                    "server_id": server.id,
                    "group": plan.group_name,
                    "hypervisor_id": server.hypervisor_id,
                    "hypervisor": hypervisor,
                    "ipv4": list(server.ipv4),
                    "reconciled": reconciled,
                },
            )
            await uow.commit()
        return True

    # -- reconcile ambiguous creates --------------------------------------------------------------

    async def _reconcile(self, report: TickReport) -> None:
        # A `creating` row whose lease expired belongs to a worker that died mid-call.
        for stale in await self._claim([S.CREATING], request_states=None):
            await self._move(stale, S.CREATING, S.CREATE_UNKNOWN, error="worker stopped mid-create")
        unknown = await self._claim([S.CREATE_UNKNOWN], request_states=None)
        if not unknown:
            return
        servers = await self._client.user_servers(self._config.owner_user_id)
        async with self._uow() as uow:
            in_flight = await uow.instances.list_by_states([S.CREATING])
            claimed = await uow.instances.claimed_server_ids()
        if in_flight:  # a create of ours may still answer with one of these servers: wait
            for instance in unknown:
                await self._release(instance, after_s=self._config.poll_interval_s)
            return
        candidates = [s for s in servers if s.id not in claimed and _adoptable(s)]
        created_at: dict[int, datetime | None] = {}
        for instance in sorted(unknown, key=lambda i: (i.intent_at or self._clock(), i.id)):
            plan = ServerPlan.model_validate(instance.spec)
            match = None
            for server in candidates:
                if not _same_size(server, plan):
                    continue
                if server.id not in created_at:
                    created_at[server.id] = (await self._client.server(server.id)).created
                created = created_at[server.id]
                intent = instance.intent_at or self._clock()
                if created is None or created >= intent - timedelta(
                    seconds=self._config.clock_skew_s
                ):
                    match = server
                    break
            if match is not None:
                candidates.remove(match)
                try:
                    adopted = await self._record_created(
                        instance, match, expected=S.CREATE_UNKNOWN, reconciled=True
                    )
                except ServerAlreadyClaimedError:  # another replica adopted it just now
                    await self._release(instance)
                    continue
                if adopted:
                    report.adopted += 1
                    logger.info(
                        "%s: adopted server %d after an ambiguous create", instance.name, match.id
                    )
                continue
            waited = (self._clock() - (instance.intent_at or self._clock())).total_seconds()
            if waited >= self._config.create_grace_s:
                logger.info(
                    "%s: no server appeared within %.0f s; creating again", instance.name, waited
                )
                await self._move(instance, S.CREATE_UNKNOWN, S.PLANNED, error=None)
                report.recreated += 1
            else:
                await self._release(
                    instance,
                    after_s=min(self._config.poll_interval_s, self._config.create_grace_s - waited),
                )

    # -- build ----------------------------------------------------------------------------------

    async def _build_due(self, report: TickReport) -> None:
        await self._run_due(S.CREATED, lambda i: self._build_one(i, report))

    async def _build_one(self, instance: InstanceRecord, report: TickReport) -> None:
        if instance.server_id is None:
            raise RuntimeError(f"instance {instance.id} is created without a server id")
        plan = ServerPlan.model_validate(instance.spec)
        try:
            server = await self._client.server(instance.server_id)
        except NotFoundError:
            await self._fail(
                instance,
                S.CREATED,
                f"server {instance.server_id} was deleted on the panel before it was built",
                stage="build",
            )
            report.failed += 1
            return
        now = self._clock()
        if server.phase is not BuildPhase.ALLOCATED:
            # The build was already issued (we crashed after calling it): just follow it.
            async with self._uow() as uow:
                changed = await uow.instances.transition(
                    instance.id,
                    expected=[S.CREATED],
                    new=S.BUILDING,
                    now=now,
                    worker=self._worker,
                    build_started_at=instance.build_started_at or now,
                    lease_owner=None,
                    lease_until=None,
                )
                if changed is not None:
                    await self._event(
                        uow,
                        changed,
                        events.INSTANCE_BUILD_STARTED,
                        now,
                        {"server_id": server.id, "os": plan.os_label},
                    )
                await uow.commit()
            return
        async with self._uow() as uow:  # the intent, committed before the panel call
            started = await uow.instances.transition(
                instance.id,
                expected=[S.CREATED],
                new=S.BUILDING,
                now=now,
                worker=self._worker,
                build_started_at=now,
            )
            if started is None:
                return
            await uow.commit()
        try:
            await self._client.build_server(
                instance.server_id, BuildServerBody.model_validate(plan.build_body)
            )
        except AmbiguousResultError as error:
            logger.warning(
                "%s: build outcome unknown; tracking will read the server: %s", instance.name, error
            )
            await self._release(started)
            return
        except InvalidRequestError as error:
            await self._fail(
                started,
                S.BUILDING,
                f"the panel refused to build it: {error.detail or error}",
                stage="build",
            )
            report.failed += 1
            return
        except (ConnectError, RateLimitedError, LockedError, ApiError) as error:
            await self._move(
                started,
                S.BUILDING,
                S.CREATED,
                error=str(error),
                next_check_at=self._clock() + timedelta(seconds=self._config.retry_backoff_s),
            )
            return
        now = self._clock()
        async with self._uow() as uow:
            changed = await uow.instances.update(
                started.id, now=now, worker=self._worker, lease_owner=None, lease_until=None
            )
            if changed is not None:
                await self._event(
                    uow,
                    changed,
                    events.INSTANCE_BUILD_STARTED,
                    now,
                    {"server_id": instance.server_id, "os": plan.os_label},
                )
            await uow.commit()
        report.builds_started += 1

    # -- track ----------------------------------------------------------------------------------

    async def _track(self, report: TickReport) -> None:
        """Read every building server in one call per owner; per-server GETs only as fallback."""
        building = await self._claim(
            [S.BUILDING], request_states=None, lease_s=self._config.poll_interval_s * 3
        )
        if not building:
            return
        listing = {s.id: s for s in await self._client.user_servers(self._config.owner_user_id)}
        for instance in building:
            server = listing.get(instance.server_id or -1)
            if server is None and instance.server_id is not None:
                try:
                    server = await self._client.server(instance.server_id)
                except NotFoundError:
                    await self._fail(
                        instance,
                        S.BUILDING,
                        f"server {instance.server_id} was deleted on the panel during its build",
                        stage="build",
                    )
                    report.failed += 1
                    continue
            if server is None:
                await self._release(instance)
                continue
            await self._follow(instance, server, report)

    async def _follow(self, instance: InstanceRecord, server: Server, report: TickReport) -> None:
        now = self._clock()
        started = instance.build_started_at or now
        elapsed = (now - started).total_seconds()
        plan = ServerPlan.model_validate(instance.spec)
        phase = server.phase
        if phase is BuildPhase.COMPLETE:
            async with self._uow() as uow:
                changed = await uow.instances.transition(
                    instance.id,
                    expected=[S.BUILDING],
                    new=S.BUILT,
                    now=now,
                    worker=self._worker,
                    ipv4=list(server.ipv4),
                    os_name=server.os_name or plan.os_label,
                    hypervisor_id=server.hypervisor_id or instance.hypervisor_id,
                    finished_at=now,
                    error=None,
                    lease_owner=None,
                    lease_until=None,
                )
                if changed is not None:
                    await self._event(
                        uow,
                        changed,
                        events.INSTANCE_BUILT,
                        now,
                        {
                            "server_id": server.id,
                            "ipv4": list(server.ipv4),
                            "os": server.os_name or plan.os_label,
                            "seconds": round(elapsed),
                        },
                    )
                await uow.commit()
            report.built += 1
        elif phase is BuildPhase.FAILED:
            await self._fail(
                instance,
                S.BUILDING,
                "the panel reports that the OS installation failed (buildFailed)",
                stage="build",
                server_id=server.id,
            )
            report.failed += 1
        elif phase is BuildPhase.ALLOCATED and elapsed >= self._config.create_grace_s:
            # An ambiguous build that never reached the panel: the server is still unbuilt.
            await self._move(
                instance, S.BUILDING, S.CREATED, error="the build did not start; retrying"
            )
        elif elapsed >= self._config.build_timeout_s:
            minutes = self._config.build_timeout_s / 60
            await self._fail(
                instance,
                S.BUILDING,
                f"the build did not finish within {minutes:g} minutes (VF_BUILD_TIMEOUT); "
                f"last phase {phase.value}",
                stage="build",
                server_id=server.id,
            )
            report.failed += 1
        else:
            await self._release(instance)

    # -- cancel and finish ------------------------------------------------------------------------

    async def _cancel_requested_ids(self, request_ids: set[int]) -> set[int]:
        async with self._uow() as uow:
            out = set()
            for request_id in request_ids:
                record = await uow.requests.get(request_id)
                if record is None or record.cancel_requested or record.state is not R.RUNNING:
                    out.add(request_id)
            return out

    async def _settle_cancelled(self, report: TickReport) -> None:
        async with self._uow() as uow:
            running = await uow.requests.list_by_state([R.RUNNING])
        for record in running:
            if not record.cancel_requested:
                continue
            async with self._uow() as uow:
                await self._cancel_planned(uow, record.id, self._clock())
                await uow.commit()
                instances = await uow.instances.list_for_request(record.id)
            for instance in instances:
                if instance.state not in (S.CREATED, S.BUILT) or instance.lease_owner:
                    continue
                if record.delete_on_cancel and instance.server_id is not None:
                    await self._client.delete_server(instance.server_id)
                    await self._move(
                        instance,
                        instance.state,
                        S.DELETED,
                        event=events.INSTANCE_DELETED,
                        finished=True,
                        leased=False,
                        payload={
                            "server_id": instance.server_id,
                            "by": record.decided_by or "cancel",
                        },
                    )
                    report.deleted += 1
                elif instance.state is S.CREATED:
                    await self._move(
                        instance,
                        S.CREATED,
                        S.CANCELLED,
                        event=events.INSTANCE_CANCELLED,
                        finished=True,
                        leased=False,
                        payload={"server_id": instance.server_id, "kept": True},
                    )

    async def _finish_requests(self, report: TickReport) -> None:
        async with self._uow() as uow:
            running = await uow.requests.list_by_state([R.RUNNING])
        for record in running:
            now = self._clock()
            async with self._uow() as uow:
                instances = await uow.instances.list_for_request(record.id)
                if not instances or any(i.state not in TERMINAL_INSTANCE_STATES for i in instances):
                    continue
                if (
                    record.cancel_requested
                    and record.delete_on_cancel
                    and any(i.state is S.BUILT for i in instances)
                ):
                    continue  # built servers still to delete
                counts: dict[str, object] = {
                    state.value: sum(1 for i in instances if i.state is state) for state in S
                }
                built = sum(1 for i in instances if i.state is S.BUILT)
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
                await uow.events.add(
                    request_id=record.id,
                    kind=events.REQUEST_FINISHED,
                    payload={"state": final.value, **{k: v for k, v in counts.items() if v}},
                    now=now,
                )
                await uow.audit.add(
                    at=now,
                    actor="vfbot",
                    action="request.finish",
                    target=record.human_id,
                    result=final.value,
                    detail=counts,
                )
                await uow.commit()
            report.finished_requests.append(record.id)

    # -- helpers --------------------------------------------------------------------------------

    async def _move(
        self,
        instance: InstanceRecord,
        expected: InstanceState,
        new: InstanceState,
        *,
        error: str | None = None,
        next_check_at: datetime | None = None,
        event: str | None = None,
        finished: bool = False,
        payload: dict[str, object] | None = None,
        leased: bool = True,
    ) -> InstanceRecord | None:
        """A state change with the lease released, plus its event when there is one.

        `leased` rows must still be leased to this worker; a worker that lost its lease (it
        expired and another took over) changes nothing.
        """
        now = self._clock()
        fields: dict[str, object] = {
            "lease_owner": None,
            "lease_until": None,
            "next_check_at": next_check_at,
        }
        if error is not None or new in (S.CREATED, S.PLANNED):
            fields["error"] = error
        if finished:
            fields["finished_at"] = now
        async with self._uow() as uow:
            changed = await uow.instances.transition(
                instance.id,
                expected=[expected],
                new=new,
                now=now,
                worker=self._worker if leased else None,
                **fields,
            )
            if changed is not None and event is not None:
                await self._event(uow, changed, event, now, payload or {})
            await uow.commit()
        return changed

    async def _fail(
        self,
        instance: InstanceRecord,
        expected: InstanceState,
        reason: str,
        *,
        stage: str,
        server_id: int | None = None,
    ) -> None:
        server_id = server_id or instance.server_id
        deleted = False
        if self._config.cleanup_failed and server_id is not None and stage == "build":
            try:
                await self._client.delete_server(server_id)
                deleted = True
            except VirtFusionError as error:
                logger.warning(
                    "%s: could not delete failed server %s: %s", instance.name, server_id, error
                )
        if deleted:
            reason += f"; server {server_id} was deleted (VF_CLEANUP_FAILED)"
        await self._move(
            instance,
            expected,
            S.FAILED,
            error=reason,
            event=events.INSTANCE_FAILED,
            finished=True,
            payload={"server_id": server_id, "error": reason, "stage": stage, "deleted": deleted},
        )

    async def _event(
        self,
        uow: UnitOfWork,
        instance: InstanceRecord,
        kind: str,
        now: datetime,
        payload: dict[str, object],
    ) -> None:
        await uow.events.add(
            request_id=instance.request_id,
            instance_id=instance.id,
            kind=kind,
            payload={"name": instance.name, **payload},
            now=now,
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


def _decided_text(record: RequestRecord) -> str:
    if record.decided_by and record.state in (R.RUNNING, R.COMPLETED, R.PARTIALLY_FAILED, R.FAILED):
        return f"{record.human_id} was already approved by {record.decided_by}."
    if record.decided_by and record.state is R.REJECTED:
        return f"{record.human_id} was already rejected by {record.decided_by}."
    return (
        f"{record.human_id} is {record.state.value.replace('_', ' ')}; there is nothing to decide."
    )
