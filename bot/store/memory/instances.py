"""Instances in memory behind `InstanceRepo`: leases, compare-and-set, unique server ids."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    TERMINAL_INSTANCE_STATES,
    InstanceRecord,
    InstanceState,
    NewInstance,
    RequestState,
)
from bot.provisioning.ports import (
    RELEASE,
    Claim,
    ExpiryStage,
    ServerAlreadyClaimedError,
    ServerQuery,
    changed_fields,
)
from bot.store._base import InstanceWrites, States, Values
from bot.store._values import utc
from bot.store.memory._tables import Repo, copied

__all__ = ["MemoryInstanceRepo"]


class MemoryInstanceRepo(Repo, InstanceWrites):
    """Instances of one memory unit of work; see `bot.provisioning.ports.InstanceRepo`."""

    def _sorted(self) -> list[InstanceRecord]:
        return sorted(self._t.instances.values(), key=lambda i: i.id)

    def _live(self) -> list[InstanceRecord]:
        """Instances with a panel server that are not deleted, by id."""
        return [
            i
            for i in self._sorted()
            if i.server_id is not None and i.state is not InstanceState.DELETED
        ]

    async def add_many(
        self, request_id: int, items: Sequence[NewInstance], now: datetime
    ) -> list[InstanceRecord]:
        added = [
            self._save(
                self._t.instances,
                InstanceRecord(
                    id=self._t.new_id("instances"),
                    request_id=request_id,
                    position=item.position,
                    name=item.name,
                    state=InstanceState.PLANNED,
                    spec=item.spec,
                    server_id=None,
                    hypervisor_id=None,
                    group_id=None,
                    ipv4=[],
                    os_name=None,
                    error=None,
                    attempts=0,
                    intent_at=None,
                    build_started_at=None,
                    finished_at=None,
                    lease_owner=None,
                    lease_until=None,
                    next_check_at=None,
                    updated_at=now,
                    created_at=now,
                ),
            )
            for item in items
        ]
        return sorted(added, key=lambda r: r.position)

    async def get(self, instance_id: int, *, lock: bool = False) -> InstanceRecord | None:
        record = self._t.instances.get(instance_id)
        return None if record is None else copied(record)

    async def list_for_request(self, request_id: int) -> list[InstanceRecord]:
        rows = [i for i in self._sorted() if i.request_id == request_id]
        return [copied(i) for i in sorted(rows, key=lambda i: (i.position, i.id))]

    async def get_by_server_id(self, server_id: int) -> InstanceRecord | None:
        found = await self.get_by_server_ids([server_id])
        return found.get(server_id)

    async def get_by_server_ids(self, server_ids: Collection[int]) -> dict[int, InstanceRecord]:
        wanted = set(server_ids)
        return {
            i.server_id: copied(i)
            for i in self._t.instances.values()
            if i.server_id is not None and i.server_id in wanted
        }

    async def claimed_server_ids(self) -> set[int]:
        return {i.server_id for i in self._t.instances.values() if i.server_id is not None}

    async def find_by_name(self, name: str) -> list[InstanceRecord]:
        wanted = name.strip().lower()
        return [copied(i) for i in reversed(self._live()) if i.name.lower() == wanted]

    async def managed_names(self, *, limit: int = 1000) -> list[str]:
        return sorted({i.name for i in self._live()})[: max(limit, 0)]

    async def list_with_servers(self, query: ServerQuery) -> tuple[list[InstanceRecord], int]:
        rows = [i for i in reversed(self._sorted()) if i.server_id is not None]
        if not query.include_deleted:
            rows = [i for i in rows if i.state is not InstanceState.DELETED]
        if query.request_id is not None:
            rows = [i for i in rows if i.request_id == query.request_id]
        if query.requester is not None:
            rows = [
                i
                for i in rows
                if (r := self._t.requests.get(i.request_id)) is not None
                and r.requester == query.requester
            ]
        start = max(query.offset, 0)
        return [copied(i) for i in rows[start : start + max(query.limit, 0)]], len(rows)

    async def expiring(
        self,
        *,
        before: datetime,
        requester: str | None = None,
        limit: int = 200,
        pending_only: bool = False,
    ) -> list[InstanceRecord]:
        before = utc(before)
        rows = [
            i
            for i in self._live()
            if i.expires_at is not None
            and i.expires_at <= before
            and not (pending_only and i.expiry_done_for == i.expires_at)
            and (
                requester is None
                or (
                    (r := self._t.requests.get(i.request_id)) is not None
                    and r.requester == requester
                )
            )
        ]
        rows.sort(key=lambda i: (i.expires_at or before, i.id))
        return [copied(i) for i in rows[: max(limit, 0)]]

    async def claim_expiry(
        self, instance_id: int, /, *, stage: ExpiryStage, expires_at: datetime, now: datetime
    ) -> InstanceRecord | None:
        expires_at, now = utc(expires_at), utc(now)
        current = self._t.instances.get(instance_id)
        if (
            current is None
            or current.expires_at != expires_at
            or current.state is InstanceState.DELETED
            or getattr(current, stage.value) == expires_at
        ):
            return None
        return self._save(self._t.instances, current, {stage.value: expires_at, "updated_at": now})

    async def list_in_flight(self) -> list[InstanceRecord]:
        return await self.list_by_states(IN_FLIGHT_INSTANCE_STATES)

    async def unfinished_counts(self, request_ids: Collection[int]) -> dict[int, int]:
        counts = dict.fromkeys(request_ids, 0)
        for i in self._t.instances.values():
            if i.request_id in counts and i.state not in TERMINAL_INSTANCE_STATES:
                counts[i.request_id] += 1
        return counts

    def _matching(
        self,
        states: Collection[InstanceState],
        request_states: Collection[RequestState] | None,
    ) -> list[InstanceRecord]:
        def request_in(instance: InstanceRecord) -> bool:
            if request_states is None:
                return True
            request = self._t.requests.get(instance.request_id)
            return request is not None and request.state in request_states

        return [i for i in self._sorted() if i.state in states and request_in(i)]

    async def list_by_states(
        self,
        states: Collection[InstanceState],
        *,
        request_states: Collection[RequestState] | None = None,
    ) -> list[InstanceRecord]:
        return [copied(i) for i in self._matching(states, request_states)]

    async def count_by_state(self) -> dict[InstanceState, int]:
        return dict(Counter(i.state for i in self._t.instances.values()))

    async def count_leased(self, worker: str, now: datetime) -> int:
        now = utc(now)
        return sum(
            1
            for i in self._t.instances.values()
            if i.lease_owner == worker and i.lease_until is not None and i.lease_until > now
        )

    async def claim(self, claim: Claim) -> list[InstanceRecord]:
        now = utc(claim.now)
        due = [
            i
            for i in self._matching(claim.states, claim.request_states)
            if (i.lease_until is None or i.lease_until <= now)
            and (i.next_check_at is None or i.next_check_at <= now)
        ]
        lease = {"lease_owner": claim.worker, "lease_until": now + timedelta(seconds=claim.lease_s)}
        return [
            self._save(self._t.instances, instance, {**lease, "updated_at": now})
            for instance in due[: max(claim.limit, 0)]
        ]

    async def _write(
        self, instance_id: int, now: datetime, worker: str | None, expected: States, values: Values
    ) -> InstanceRecord | None:
        now = utc(now)  # a naive one is refused even when nothing changes, as in SQL
        current = self._t.instances.get(instance_id)
        if current is None:
            return None
        if expected is not None and current.state not in expected:
            return None
        if worker is not None and current.lease_owner != worker:
            return None
        server_id = values.get("server_id")
        if isinstance(server_id, int) and any(
            i.server_id == server_id and i.id != instance_id for i in self._t.instances.values()
        ):
            raise ServerAlreadyClaimedError(server_id)
        return self._save(self._t.instances, current, {**values, "updated_at": now})

    async def release(
        self, instance_id: int, *, worker: str, next_check_at: datetime | None, now: datetime
    ) -> None:
        now = utc(now)
        current = self._t.instances.get(instance_id)
        if current is None or current.lease_owner != worker:
            return
        changes = {"next_check_at": next_check_at, "updated_at": now}
        self._save(self._t.instances, current, {**changed_fields(RELEASE), **changes})
