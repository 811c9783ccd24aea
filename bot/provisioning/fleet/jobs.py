"""The alert channel's jobs together, as the composition root builds them from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.provisioning.fleet.alerts import CapacityWatch, TrafficWatch
from bot.provisioning.fleet.report import DailyReports
from bot.provisioning.transitions import UowFactory

__all__ = ["TRAFFIC_MARKS_KEPT", "FleetJobs"]

TRAFFIC_MARKS_KEPT = timedelta(days=100)
"""How long a server's "alerted this period" mark is kept: longer than any monthly period."""


@dataclass(frozen=True)
class FleetJobs:
    """Capacity and traffic alerts and the daily report; a job left None is switched off."""

    uow: UowFactory
    capacity: CapacityWatch | None = None
    traffic: TrafficWatch | None = None
    reports: DailyReports | None = None

    @property
    def alerting(self) -> bool:
        return self.capacity is not None or self.traffic is not None

    async def alerts(self) -> int:
        """One round of capacity, then traffic checks; returns how many alerts were written."""
        said = 0
        if self.capacity is not None:
            said += await self.capacity.check()
        if self.traffic is not None:
            said += await self.traffic.check()
        return said

    async def report(self) -> bool:
        """Write the daily report if it is due and no replica wrote it yet."""
        return self.reports is not None and await self.reports.post_due()

    async def prune(self, now: datetime) -> int:
        """Forget traffic marks older than `TRAFFIC_MARKS_KEPT` (their periods are over); with
        traffic alerts off, nothing (no write at all)."""
        if self.traffic is None:
            return 0
        async with self.uow() as uow:
            pruned = await uow.marks.prune("traffic:", before=now - TRAFFIC_MARKS_KEPT)
            await uow.commit()
        return pruned
