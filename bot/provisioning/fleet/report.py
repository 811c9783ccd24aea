"""The daily report: written once per slot, however many replicas' schedulers fire it.

Every replica's cron trigger calls `DailyReports.post_due` at `VF_DAILY_REPORT` in
`VF_TIMEZONE`. The mark `daily-report` holds the last report's slot; a replica that finds it
older than today's slot gathers the report, then moves the mark from the value it read to the
new slot and writes the `DailyReport` event in the same transaction. Replicas that read the same
value find it moved and drop what they gathered. "Failed since the last report" counts builds
that failed after the previous slot up to this one (the first report: the 24 hours before it).

What expires in the next 24 hours comes from `expiring`, a function the composition root
passes in; without it the report says this vfbot cannot tell.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.provisioning.events import DailyReport
from bot.provisioning.fleet.alerts import read_usage
from bot.provisioning.fleet.model import ExpiringServer, FailedBuild
from bot.provisioning.model import InstanceState
from bot.provisioning.transitions import Context, Service, emit_fleet
from bot.virtfusion import VirtFusionError

__all__ = ["FAILED_SHOWN", "LATE_MAX", "MARK", "DailyReports", "ExpiringSource", "report_slot"]

logger = logging.getLogger("bot.provisioning.fleet")

MARK = "daily-report"

LATE_MAX = timedelta(hours=1)
"""How late a report still goes out (a replica started after the report time); later, that
day's report is skipped."""

FAILED_SHOWN = 20
"""Failed builds listed by name in one report (the newest); the rest are counted."""

ExpiringSource = Callable[[datetime, datetime], Awaitable[list[ExpiringServer]]]
"""The servers whose lifetime ends between the two times (aware, UTC), soonest first."""


def report_slot(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The latest report time at or before `now`: `at` o'clock in `zone`, today or yesterday."""
    local = now.astimezone(zone)
    slot = datetime.combine(local.date(), at, tzinfo=zone)
    if slot > local:
        slot = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=zone)
    return slot


class DailyReports(Service):
    """Gathers and writes the daily report."""

    def __init__(
        self,
        ctx: Context,
        *,
        at: time,
        zone: ZoneInfo,
        expiring: ExpiringSource | None = None,
    ) -> None:
        super().__init__(ctx)
        self.at, self.zone, self._expiring = at, zone, expiring

    async def post_due(self) -> bool:
        """Write the report of the latest slot unless it is written already or the slot is
        more than `LATE_MAX` ago; True if this call wrote it."""
        slot = report_slot(self._clock(), self.at, self.zone)
        if self._clock() - slot > LATE_MAX:
            return False
        async with self._uow() as uow:
            last = (await uow.marks.get_many([MARK])).get(MARK)
        previous = _parse(last)
        if previous is not None and previous >= slot:
            logger.info("daily report of %s: written already", f"{slot:%Y-%m-%d %H:%M %Z}")
            return False
        report = await self.gather(slot, since=previous or slot - timedelta(days=1))
        now = self._clock()
        async with self._uow() as uow:
            if not await uow.marks.put_if(MARK, expected=last, value=slot.isoformat(), now=now):
                logger.info(
                    "daily report of %s: another replica wrote it", f"{slot:%Y-%m-%d %H:%M %Z}"
                )
                return False
            await emit_fleet(uow, report, now)
            await uow.commit()
        return True

    async def gather(self, slot: datetime, *, since: datetime) -> DailyReport:
        """The report of `slot`: servers by state, expiring within a day, builds failed after
        `since` up to `slot` (so each failure is in exactly one report), and capacity (the
        report still goes out when the panel cannot be read)."""
        now = self._clock()
        async with self._uow() as uow:
            counts = await uow.instances.count_by_state()
            failed = [
                i
                for i in await uow.instances.list_by_states([InstanceState.FAILED])
                if i.finished_at is not None and since < i.finished_at <= slot
            ]
        failed.sort(key=lambda i: (i.finished_at, i.id), reverse=True)
        expiring = None
        if self._expiring is not None:
            expiring = await self._expiring(now, now + timedelta(days=1))
        try:
            capacity, capacity_error = await read_usage(self._client), ""
        except VirtFusionError as error:
            logger.warning("daily report: could not read capacity: %s", error)
            capacity, capacity_error = [], _first_line(error)
        return DailyReport(
            slot=slot,
            timezone=self.zone.key,
            since=since,
            servers={state.value: n for state, n in sorted(counts.items()) if n},
            expiring=expiring,
            failed=[
                FailedBuild(
                    name=i.name,
                    request_human_id=i.human_request_id,
                    error=i.error or "",
                    failed_at=i.finished_at,
                )
                for i in failed[:FAILED_SHOWN]
            ],
            failed_total=len(failed),
            capacity=capacity,
            capacity_error=capacity_error,
        )


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:  # not one of ours: the next report replaces it
        return None


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines and lines[0] else type(error).__name__
