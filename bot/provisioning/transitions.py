"""State moves shared by the request lifecycle, the engine and the server operations.

Each move is one compare-and-set in its own unit of work (or in the caller's), written together
with its outbox event, so a move and its notification are committed or lost together. A
server's created, installing and built milestones are written once per panel server, however
many workers or retries reach them. Audit entries written outside a larger unit go through
`Moves.audit`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.provisioning.events import (
    INSTANCE_BUILD_STARTED,
    INSTANCE_BUILT,
    INSTANCE_CREATED,
    Event,
    InstanceCancelled,
    InstanceEvent,
    describe,
)
from bot.provisioning.listing import ServerListing
from bot.provisioning.model import EventRecord, InstanceRecord, InstanceState, JsonDict
from bot.provisioning.ports import (
    RELEASE,
    UNSET,
    InstanceChange,
    NewAudit,
    NewEvent,
    UnitOfWork,
    Unset,
)
from bot.virtfusion import VirtFusionClient

__all__ = [
    "Clock",
    "Context",
    "Moves",
    "Service",
    "Sleep",
    "UowFactory",
    "cancel_planned",
    "emit",
    "emit_fleet",
    "emit_request",
    "log_milestone",
]

UowFactory = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

S = InstanceState

# Milestones have a logger of their own: `LOG_LEVEL=INFO` shows one line per milestone, and an
# operator can quiet them alone.
milestones = logging.getLogger("bot.milestones")


def log_milestone(record: EventRecord, *, server_id: int | None = None) -> None:
    """One readable INFO line per event written (`events.describe`), with the request or
    operation id (and server id) as log fields."""
    fields: dict[str, object] = {}
    if record.request_id is not None:
        fields["request_id"] = f"VF-{record.request_id}"
    if record.operation_id is not None:
        fields["operation_id"] = f"OP-{record.operation_id}"
    if server_id is not None:
        fields["server_id"] = server_id
    milestones.info("%s", describe(record), extra=fields)


# Milestones a panel server passes once: a second one (a worker that lost its lease, a build
# answer that arrived after tracking saw the build) is not written again.
_ONCE_PER_SERVER = frozenset({INSTANCE_CREATED, INSTANCE_BUILD_STARTED, INSTANCE_BUILT})


async def emit(
    uow: UnitOfWork, instance: InstanceRecord, event: InstanceEvent, now: datetime
) -> None:
    """Write a server milestone in the caller's unit (the server's name is filled in).

    Created, installing and built are written once per panel server: the caller's
    compare-and-set has locked the row, so two writers of one milestone take turns here.
    """
    if event.KIND in _ONCE_PER_SERVER:
        earlier = await uow.events.list_for_instance(instance.request_id, instance.id, [event.KIND])
        if any(e.payload.get("server_id") == event.server_id for e in earlier):
            return
    payload = {**event.to_json(), "name": instance.name}
    new = NewEvent(event.KIND, payload, request_id=instance.request_id, instance_id=instance.id)
    record = await uow.events.add(new, now=now)
    log_milestone(record, server_id=event.server_id or instance.server_id)


async def emit_request(uow: UnitOfWork, request_id: int, event: Event, now: datetime) -> None:
    """Write a request-level event in the caller's unit."""
    new = NewEvent(event.KIND, event.to_json(), request_id=request_id)
    log_milestone(await uow.events.add(new, now=now))


async def emit_fleet(uow: UnitOfWork, event: Event, now: datetime) -> None:
    """Write an event of the fleet's stream (an alert, a report) in the caller's unit."""
    log_milestone(await uow.events.add(NewEvent(event.KIND, event.to_json()), now=now))


async def cancel_planned(uow: UnitOfWork, request_id: int, now: datetime) -> None:
    """Cancel the request's servers that were not created yet, in the caller's unit."""
    for instance in await uow.instances.list_for_request(request_id):
        if instance.state is S.PLANNED:
            changed = await uow.instances.transition(
                instance.id,
                expected=[S.PLANNED],
                new=S.CANCELLED,
                now=now,
                change=InstanceChange(finished_at=now),
            )
            if changed is not None:
                await emit(uow, changed, InstanceCancelled(), now)


class Moves:
    """Instance moves and audit entries, each in a unit of its own."""

    def __init__(self, uow: UowFactory, clock: Clock, worker: str) -> None:
        self._uow = uow
        self._clock = clock
        self.worker = worker

    async def step(
        self,
        instance: InstanceRecord,
        expected: InstanceState,
        new: InstanceState,
        change: InstanceChange,
        event: InstanceEvent | None = None,
        *,
        leased: bool = True,
        uow: UnitOfWork | None = None,
    ) -> InstanceRecord | None:
        """One compare-and-set with `change`, plus its event, in a unit of its own (or in the
        caller's `uow`, which commits: a tick records many results in one transaction); None
        when the row moved on (or, for `leased` rows, this worker lost the lease).

        Raises ServerAlreadyClaimedError when `change.server_id` is another instance's.
        """
        if uow is None:
            async with self._uow() as own:
                changed = await self.step(
                    instance, expected, new, change, event, leased=leased, uow=own
                )
                await own.commit()
            return changed
        now = self._clock()
        changed = await uow.instances.transition(
            instance.id,
            expected=[expected],
            new=new,
            now=now,
            worker=self.worker if leased else None,
            change=change,
        )
        if changed is not None and event is not None:
            await emit(uow, changed, event, now)
        return changed

    async def move(
        self,
        instance: InstanceRecord,
        expected: InstanceState,
        new: InstanceState,
        *,
        error: str | Unset | None = UNSET,
        next_check_at: datetime | None = None,
        event: InstanceEvent | None = None,
        finished: bool = False,
        leased: bool = True,
    ) -> InstanceRecord | None:
        """`step` with the lease released (see there); moving back to planned or created
        clears the error unless one is given."""
        change = self.released(new, error=error, next_check_at=next_check_at, finished=finished)
        return await self.step(instance, expected, new, change, event, leased=leased)

    def released(
        self,
        new: InstanceState,
        *,
        error: str | Unset | None = UNSET,
        next_check_at: datetime | None = None,
        finished: bool = False,
    ) -> InstanceChange:
        """The change of a `move` to `new`: lease released, next check and error set."""
        if error is UNSET and new in (S.CREATED, S.PLANNED):
            error = None
        return dataclasses.replace(
            RELEASE,
            next_check_at=next_check_at,
            error=error,
            finished_at=self._clock() if finished else UNSET,
        )

    async def audit(
        self,
        actor: str,
        action: str,
        target: str,
        result: str,
        detail: JsonDict | None = None,
    ) -> None:
        """Write one audit entry (refusals, day-2 actions, decisions) and commit it."""
        async with self._uow() as uow:
            await uow.audit.add(NewAudit(actor, action, target, result, detail), at=self._clock())
            await uow.commit()


@dataclass(frozen=True)
class Context:
    """What every domain service works with, built once by the composition root: the panel,
    the store, the clock, the shared moves, the VirtFusion user that owns vfbot's servers, and
    how to wait (injected, so tests never sleep)."""

    client: VirtFusionClient
    uow: UowFactory
    clock: Clock
    moves: Moves
    owner_user_id: int
    sleep: Sleep = field(default=asyncio.sleep)
    # The owner's panel listing, one per context: every service built on it shares it.
    listing: ServerListing = field(init=False)

    def __post_init__(self) -> None:
        listing = ServerListing(self.client, self.owner_user_id, self.clock)
        object.__setattr__(self, "listing", listing)  # frozen: set once, here


class Service:
    """Base of the domain services: the context's parts under short private names."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._client, self._uow, self._clock = ctx.client, ctx.uow, ctx.clock
        self._moves, self._owner, self._sleep = ctx.moves, ctx.owner_user_id, ctx.sleep
