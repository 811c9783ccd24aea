"""Capacity and traffic alerts: each said once, by whichever replica moves its mark first.

Capacity: every enabled hypervisor group's free memory, disk and IPv4 against the thresholds
(`VF_CAPACITY_ALERT`). The mark `capacity:<group>:<resource>` holds `low` or `ok`; a move from
one to the other writes one `CapacityAlert` (crossed, or recovered) in the same transaction.
A group first seen above its thresholds is marked `ok` silently; first seen below, it alerts.

Traffic: every built vfbot server's traffic this period (`GET /servers/{id}/traffic`, the same
month `/vf traffic` shows) against `VF_TRAFFIC_ALERT` percent of its limit. The mark
`traffic:<server>` names the period last alerted, so a server is alerted once per period and
not even asked again until that period ends. A limit of 0 (unlimited) never alerts. vfbot reads
`total` as bytes and `limit` as GB of 1024³ bytes (the spec states neither unit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.provisioning.events import CapacityAlert, TrafficAlert
from bot.provisioning.fleet.model import CapacityChange, GroupUsage, Threshold
from bot.provisioning.model import InstanceRecord, InstanceState, RequestRecord
from bot.provisioning.servers.inventory import current_month
from bot.provisioning.servers.model import TrafficSummary
from bot.provisioning.transitions import Context, Service, emit_fleet
from bot.virtfusion import NotFoundError, VirtFusionClient, VirtFusionError

__all__ = ["CapacityWatch", "TrafficWatch", "read_usage"]

logger = logging.getLogger("bot.provisioning.fleet")

LOW, OK = "low", "ok"


async def read_usage(client: VirtFusionClient) -> list[GroupUsage]:
    """Every enabled group's capacity, by group id: one list call, one resources call each."""
    groups = sorted([g async for g in client.groups() if g.enabled], key=lambda g: g.id)
    usage = []
    for group in groups:
        rows = [r async for r in client.group_resources(group.id) if r.eligible]
        usage.append(
            GroupUsage(
                group_id=group.id,
                name=group.name or group.label or f"group {group.id}",
                hypervisors=len(rows),
                memory_free_mb=sum(r.memory_mb.free for r in rows),
                memory_total_mb=sum(r.memory_mb.max for r in rows),
                disk_free_gb=sum(r.storage_gb.free for r in rows),
                disk_total_gb=sum(r.storage_gb.max for r in rows),
                ipv4_free=sum(r.ipv4_free for r in rows),
            )
        )
    return usage


def _capacity_key(group_id: int, threshold: Threshold) -> str:
    return f"capacity:{group_id}:{threshold.resource.value}"


@dataclass(frozen=True, slots=True)
class _Move:
    key: str
    expected: str | None
    value: str
    threshold: Threshold


class CapacityWatch(Service):
    """Capacity alerts for every enabled hypervisor group."""

    def __init__(self, ctx: Context, thresholds: Sequence[Threshold]) -> None:
        super().__init__(ctx)
        self.thresholds = tuple(thresholds)

    async def check(self, usage: list[GroupUsage] | None = None) -> int:
        """Compare each group with the thresholds (`usage`, or read from the panel now) and
        write an alert for each group whose marks this replica moved; returns how many."""
        if not self.thresholds:
            return 0
        groups = await read_usage(self._client) if usage is None else usage
        keys = [_capacity_key(g.group_id, t) for g in groups for t in self.thresholds]
        async with self._uow() as uow:
            marks = await uow.marks.get_many(keys)
        alerts = 0
        for group in groups:
            moves = []
            for threshold in self.thresholds:
                low = threshold.low(group)
                key = _capacity_key(group.group_id, threshold)
                value = None if low is None else LOW if low else OK
                if value is not None and marks.get(key) != value:
                    moves.append(_Move(key, marks.get(key), value, threshold))
            if moves and await self._move(group, moves):
                alerts += 1
        return alerts

    async def _move(self, group: GroupUsage, moves: list[_Move]) -> bool:
        """Move the group's marks and write what changed, in one transaction."""
        now = self._clock()
        async with self._uow() as uow:
            changes = []
            for move in moves:
                moved = await uow.marks.put_if(
                    move.key, expected=move.expected, value=move.value, now=now
                )
                # First seen above the threshold: nothing to say.
                if moved and (move.expected is not None or move.value == LOW):
                    changes.append(
                        CapacityChange(
                            resource=move.threshold.resource.value,
                            low=move.value == LOW,
                            threshold=move.threshold.text(),
                        )
                    )
            if changes:
                await emit_fleet(uow, CapacityAlert(group=group, changes=changes), now)
            await uow.commit()
        return bool(changes)


def _period(month_start: datetime | None, month_end: datetime | None) -> str:
    """The mark's value for a traffic period: `start/end`, ISO 8601 (either may be empty)."""
    return "/".join(t.isoformat() if t is not None else "" for t in (month_start, month_end))


def _alerted_until(mark: str | None) -> datetime | None:
    """The end of the period a `traffic:` mark names, if it has one."""
    end = (mark or "").partition("/")[2]
    try:
        return datetime.fromisoformat(end) if end else None
    except ValueError:
        return None


class TrafficWatch(Service):
    """Traffic alerts for the servers vfbot built."""

    def __init__(self, ctx: Context, percent: float) -> None:
        super().__init__(ctx)
        self.percent = percent

    async def check(self) -> int:
        """Read the traffic of each built server not yet alerted this period; alert the ones
        at or above the threshold. Returns how many alerts this replica wrote.

        A server the panel no longer has is skipped; other panel errors skip that server this
        time, unless every server failed (then the error is raised: the panel is down)."""
        async with self._uow() as uow:
            built = [
                i
                for i in await uow.instances.list_by_states([InstanceState.BUILT])
                if i.server_id is not None
            ]
            requests = await uow.requests.get_many({i.request_id for i in built})
            marks = await uow.marks.get_many([f"traffic:{i.server_id}" for i in built])
        alerts, failures, asked = 0, 0, 0
        last_error: VirtFusionError | None = None
        for instance in built:
            mark = marks.get(f"traffic:{instance.server_id}")
            until = _alerted_until(mark)
            if until is not None and self._clock() <= until:
                continue  # alerted this period already
            asked += 1
            try:
                summary = await self._traffic(instance)
            except NotFoundError:
                continue
            except VirtFusionError as error:
                failures, last_error = failures + 1, error
                logger.debug("traffic of server %s: %s", instance.server_id, error)
                continue
            if summary is None:
                continue
            if await self._alert(instance, requests.get(instance.request_id), summary, mark):
                alerts += 1
        if last_error is not None:
            if failures == asked:
                raise last_error
            logger.warning("could not read the traffic of %d server(s) this time", failures)
        return alerts

    async def _traffic(self, instance: InstanceRecord) -> TrafficSummary | None:
        server_id = instance.server_id or 0
        month = current_month(await self._client.traffic(server_id), self._clock())
        return TrafficSummary.of(server_id, instance.name, month) if month is not None else None

    async def _alert(
        self,
        instance: InstanceRecord,
        request: RequestRecord | None,
        summary: TrafficSummary,
        mark: str | None,
    ) -> bool:
        used = summary.used_percent  # None: a limit of 0, unlimited
        if used is None or used < self.percent:
            return False
        period = _period(summary.month_start, summary.month_end)
        if mark == period:
            return False  # alerted this period (whose end is unknown or has passed)
        alert = TrafficAlert(
            server_id=summary.server_id,
            name=instance.name,
            request_human_id=instance.human_request_id,
            requester=request.requester if request is not None else "",
            total_bytes=summary.total_bytes,
            limit_gb=summary.limit_gb,
            used_percent=used,
            threshold_percent=self.percent,
            period_start=summary.month_start,
            period_end=summary.month_end,
        )
        now = self._clock()
        async with self._uow() as uow:
            key = f"traffic:{summary.server_id}"
            if not await uow.marks.put_if(key, expected=mark, value=period, now=now):
                return False  # another replica said it
            await emit_fleet(uow, alert, now)
            await uow.commit()
        return True
