"""Capacity and traffic alerts and the daily report, on the sandbox panel: each said once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.provisioning.events import CapacityAlert, DailyReport, TrafficAlert, parse_event
from bot.provisioning.fleet.alerts import CapacityWatch, TrafficWatch, read_usage
from bot.provisioning.fleet.jobs import FleetJobs
from bot.provisioning.fleet.model import (
    ExpiringServer,
    GroupUsage,
    Resource,
    Threshold,
    parse_capacity_alert,
    parse_percent,
)
from bot.provisioning.fleet.report import DailyReports, report_slot
from bot.provisioning.model import EventRecord, InstanceState, RequestState
from bot.provisioning.ports import InstanceChange
from bot.provisioning.transitions import Context, Moves
from bot.sandbox import ScriptedFault
from bot.store.sql import Database
from bot.virtfusion import VirtFusionError
from tests.databases import PG_URL
from tests.provisioning.conftest import Harness, two_groups

GIB = 1024**3


def _to(h: Harness, when: datetime) -> None:
    h.clock.advance((when - h.clock()).total_seconds())


def _ctx(h: Harness) -> Context:
    moves = Moves(h.store.uow, h.clock, "fleet-test")
    return Context(h.client, h.store.uow, h.clock, moves, owner_user_id=1, sleep=h.sleeps)


async def _fleet_events(h: Harness) -> list[EventRecord]:
    async with h.uow() as uow:
        claimed = await uow.events.claim_next(
            subscriber="probe", worker="probe", now=h.clock(), lease_s=1, limit=100, per_stream=100
        )  # rolled back: nothing is marked
    return [e for e in claimed if e.request_id is None and e.operation_id is None]


# -- thresholds ----------------------------------------------------------------------------------


def test_capacity_alert_setting_is_read_and_checked() -> None:
    memory, disk, ipv4 = parse_capacity_alert("memory<10%, disk < 500GB ,ipv4<5")
    assert memory == Threshold(Resource.MEMORY, 10, percent=True)
    assert disk == Threshold(Resource.DISK, 500)
    assert ipv4 == Threshold(Resource.IPV4, 5)
    assert parse_capacity_alert("memory<2gb")[0].amount == 2048
    assert (memory.text(), disk.text(), ipv4.text()) == (
        "memory < 10 %",
        "disk < 500 GB",
        "ipv4 < 5",
    )
    assert parse_capacity_alert("off") == ()
    for bad, says in (
        ("memory>10%", "write resource<amount"),
        ("cpu<10%", "not memory, disk or ipv4"),
        ("ipv4<5%", "number of free addresses"),
        ("memory<0%", "from 1 to 100"),
        ("disk<5mb", "takes % or gb, tb"),
        ("memory<1%,memory<2%", "given twice"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_capacity_alert(bad)
    assert parse_percent("80%") == 80 and parse_percent(" 95 ") == 95
    assert parse_percent("off") is None
    with pytest.raises(ValueError, match="percentage"):
        parse_percent("eighty")


def test_a_percentage_of_nothing_cannot_be_told() -> None:
    empty = GroupUsage(group_id=1, name="x")
    assert Threshold(Resource.MEMORY, 10, percent=True).low(empty) is None
    assert Threshold(Resource.IPV4, 5).low(empty) is True


# -- capacity ------------------------------------------------------------------------------------


async def test_capacity_alerts_once_when_crossing_and_once_when_recovering(
    harness: Harness,
) -> None:
    watch = CapacityWatch(_ctx(harness), parse_capacity_alert("memory<10%,ipv4<5"))
    usage = await read_usage(harness.client)
    assert [g.name for g in usage] == ["Prague", "Amsterdam", "Frankfurt"]
    prague = usage[0]
    assert (prague.hypervisors, prague.memory_total_mb, prague.ipv4_free) == (2, 40960, 100)
    assert await watch.check() == 0  # all above: marked ok, nothing said
    assert await _fleet_events(harness) == []

    # Amsterdam runs out of addresses: one alert, and none on the next ticks.
    harness.panel.hypervisors[3].ipv4_pool.addresses[3:] = []
    assert await watch.check() == 1
    assert await watch.check() == 0
    (event,) = await _fleet_events(harness)
    alert = parse_event(event)
    assert isinstance(alert, CapacityAlert)
    assert (alert.group.name, alert.group.ipv4_free) == ("Amsterdam", 3)
    assert [(c.resource, c.low, c.threshold) for c in alert.changes] == [("ipv4", True, "ipv4 < 5")]

    # Addresses come back: one recovery, then quiet again.
    harness.panel.hypervisors[3].ipv4_pool.addresses.extend(["198.51.100.200", "198.51.100.201"])
    assert await watch.check() == 1
    assert await watch.check() == 0
    recovered = parse_event((await _fleet_events(harness))[-1])
    assert isinstance(recovered, CapacityAlert) and not recovered.changes[0].low


async def test_a_group_first_seen_low_alerts_and_resources_change_together(
    harness: Harness,
) -> None:
    watch = CapacityWatch(_ctx(harness), parse_capacity_alert("memory<10%,disk<10%"))
    low = GroupUsage(
        group_id=9,
        name="Edge",
        hypervisors=1,
        memory_free_mb=512,
        memory_total_mb=16384,
        disk_free_gb=20,
        disk_total_gb=1000,
    )
    assert await watch.check([low]) == 1
    (event,) = await _fleet_events(harness)
    alert = parse_event(event)
    assert isinstance(alert, CapacityAlert)
    assert [(c.resource, c.low) for c in alert.changes] == [("memory", True), ("disk", True)]
    assert await watch.check([low]) == 0
    # Memory recovers while disk stays low: only memory is said.
    better = low.model_copy(update={"memory_free_mb": 8192})
    assert await watch.check([better]) == 1
    alert = parse_event((await _fleet_events(harness))[-1])
    assert isinstance(alert, CapacityAlert)
    assert [(c.resource, c.low) for c in alert.changes] == [("memory", False)]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)
async def test_replicas_checking_at_once_alert_once(harness: Harness) -> None:
    thresholds = parse_capacity_alert("ipv4<5")
    watches = [CapacityWatch(_ctx(harness), thresholds) for _ in range(3)]
    await watches[0].check()
    harness.panel.hypervisors[1].ipv4_pool.addresses[:] = []
    harness.panel.hypervisors[2].ipv4_pool.addresses[2:] = []
    assert sum(await asyncio.gather(*(w.check() for w in watches))) == 1
    assert len(await _fleet_events(harness)) == 1


# -- traffic -------------------------------------------------------------------------------------


async def _built(harness: Harness, count: int = 2) -> list[int]:
    record = await harness.submit_json(two_groups(count, public_ip=False))
    assert (await harness.run_until_done(record.id)).state is RequestState.COMPLETED
    _, instances = await harness.requests.get(record.id)
    return [i.server_id for i in instances if i.server_id is not None]


async def test_traffic_alerts_once_per_server_per_period(harness: Harness) -> None:
    first, second = await _built(harness)
    watch = TrafficWatch(_ctx(harness), 80)
    assert await watch.check() == 0  # the demo traffic is far below
    harness.panel.servers[first].traffic_bytes = 850 * GIB  # of 1000 GB: 85 %
    harness.panel.servers[second].traffic_gb = 0  # unlimited: never alerted
    harness.panel.servers[second].traffic_bytes = 5000 * GIB
    harness.panel.reset_log()
    assert await watch.check() == 1
    (event,) = await _fleet_events(harness)
    alert = parse_event(event)
    assert isinstance(alert, TrafficAlert)
    assert (alert.server_id, alert.requester, alert.limit_gb) == (first, "U_REQUESTER", 1000)
    assert alert.used_percent == pytest.approx(85)
    assert alert.period_start == datetime(2025, 1, 1, tzinfo=UTC)
    # Next ticks: nothing said, and the alerted server is not even asked until the period ends.
    harness.panel.reset_log()
    assert await watch.check() == 0
    assert harness.panel.count("GET", rf"/servers/{first}/traffic") == 0
    assert harness.panel.count("GET", rf"/servers/{second}/traffic") == 1
    # A new period: alerted again if still above.
    _to(harness, datetime(2025, 2, 1, 0, 0, 1, tzinfo=UTC))
    assert await watch.check() == 1
    assert await watch.check() == 0


async def test_traffic_replicas_alert_once_and_skip_a_server_gone(harness: Harness) -> None:
    first, second = await _built(harness)
    del harness.panel.servers[first]  # deleted on the panel behind vfbot's back: skipped
    harness.panel.servers[second].traffic_bytes = 990 * GIB
    watches = [TrafficWatch(_ctx(harness), 80) for _ in range(3)]
    assert sum(await asyncio.gather(*(w.check() for w in watches))) == 1
    assert len(await _fleet_events(harness)) == 1


# -- the daily report ----------------------------------------------------------------------------


def test_report_slot_is_the_latest_report_time_in_the_zone() -> None:
    zone = ZoneInfo("Europe/Prague")  # UTC+1 in January
    at = time(9, 0)
    before = datetime(2025, 1, 10, 7, 59, tzinfo=UTC)
    after = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
    assert report_slot(before, at, zone) == datetime(2025, 1, 9, 9, 0, tzinfo=zone)
    assert report_slot(after, at, zone) == datetime(2025, 1, 10, 9, 0, tzinfo=zone)


async def test_daily_report_is_written_once_per_day(harness: Harness) -> None:
    await _built(harness, 1)
    async with harness.uow() as uow:  # a build that failed just now
        record = await harness.submit_json(two_groups(1, name="bad", public_ip=False))
        (instance,) = await uow.instances.list_for_request(record.id)
        await uow.instances.transition(
            instance.id,
            expected=[InstanceState.PLANNED],
            new=InstanceState.FAILED,
            now=harness.clock(),
            change=InstanceChange(error="No <hypervisor> left", finished_at=harness.clock()),
        )
        await uow.commit()
    soon = ExpiringServer(name="web-1", request_human_id="VF-1", requester="U1")

    async def expiring(start: datetime, end: datetime) -> list[ExpiringServer]:
        assert end - start == timedelta(days=1)
        return [soon]

    zone = ZoneInfo("UTC")
    reports = DailyReports(_ctx(harness), at=time(9, 0), zone=zone, expiring=expiring)
    assert await reports.post_due() is True  # the clock is just past 09:00 on 6 January
    assert await reports.post_due() is False  # the next ticks: written already
    (event,) = await _fleet_events(harness)
    report = parse_event(event)
    assert isinstance(report, DailyReport)
    assert report.slot == datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    assert report.since == datetime(2025, 1, 5, 9, 0, tzinfo=UTC)
    assert report.servers == {"built": 1, "failed": 1}
    assert report.expiring == [soon]
    # The build failed after 09:00: tomorrow's report has it (each failure is in one report).
    assert (report.failed, report.failed_total) == ([], 0)
    assert [g.name for g in report.capacity] == ["Prague", "Amsterdam", "Frankfurt"]
    # Without an expiry source the report says it cannot tell (None, not an empty list).
    _to(harness, datetime(2025, 1, 7, 9, 0, 5, tzinfo=UTC))
    later = DailyReports(_ctx(harness), at=time(9, 0), zone=zone)
    assert await later.post_due() is True
    report = parse_event((await _fleet_events(harness))[-1])
    assert isinstance(report, DailyReport)
    assert (report.since, report.failed_total, report.expiring) == (
        datetime(2025, 1, 6, 9, 0, tzinfo=UTC),
        1,
        None,
    )
    assert [(f.name, f.error) for f in report.failed] == [("bad-prg", "No <hypervisor> left")]


async def test_a_report_more_than_an_hour_late_is_skipped(harness: Harness) -> None:
    """A replica started long after the report time does not post that day's report."""
    late = DailyReports(_ctx(harness), at=time(7, 59), zone=ZoneInfo("UTC"))
    assert await late.post_due() is False  # the clock is at 09:00: 61 minutes late
    in_time = DailyReports(_ctx(harness), at=time(8, 0), zone=ZoneInfo("UTC"))
    assert await in_time.post_due() is True
    assert len(await _fleet_events(harness)) == 1


async def test_daily_report_goes_out_without_the_panel(harness: Harness) -> None:
    harness.panel.faults.script = [ScriptedFault("GET", "/compute/hypervisors/groups", "503", 99)]
    reports = DailyReports(_ctx(harness), at=time(9, 0), zone=ZoneInfo("UTC"))
    assert await reports.post_due() is True
    report = parse_event((await _fleet_events(harness))[-1])
    assert isinstance(report, DailyReport)
    assert report.capacity == [] and report.capacity_error


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_two_workers_on_postgresql_write_one_report(harness: Harness) -> None:
    """Two replicas (each with its own engine and connections) on one PostgreSQL database, two
    report jobs each, fire at once: one report."""
    assert isinstance(harness.store, Database)
    other = Database(PG_URL, schema=harness.store.schema)
    await other.start()
    try:
        moves = Moves(other.uow, harness.clock, "worker-2")
        ctx2 = Context(harness.client, other.uow, harness.clock, moves, 1, harness.sleeps)
        zone = ZoneInfo("UTC")
        replicas = [
            *(DailyReports(_ctx(harness), at=time(9, 0), zone=zone) for _ in range(2)),
            *(DailyReports(ctx2, at=time(9, 0), zone=zone) for _ in range(2)),
        ]
        written = await asyncio.gather(*(r.post_due() for r in replicas))
        assert sorted(written) == [False, False, False, True]
        assert len(await _fleet_events(harness)) == 1
        harness.clock.advance(900)  # the next firing, on either worker: nothing more
        assert not any(await asyncio.gather(*(r.post_due() for r in replicas)))
        assert len(await _fleet_events(harness)) == 1
    finally:
        await other.stop()


async def test_old_traffic_marks_are_pruned(harness: Harness) -> None:
    ctx = _ctx(harness)
    async with harness.uow() as uow:
        await uow.marks.put_if("traffic:1", expected=None, value="a/b", now=harness.clock())
        await uow.marks.put_if("capacity:1:ipv4", expected=None, value="low", now=harness.clock())
        await uow.commit()
    jobs = FleetJobs(harness.store.uow, traffic=TrafficWatch(ctx, 80))
    assert await FleetJobs(harness.store.uow).prune(harness.clock() + timedelta(days=200)) == 0
    assert await jobs.prune(harness.clock() + timedelta(days=99)) == 0
    assert await jobs.prune(harness.clock() + timedelta(days=101)) == 1
    async with harness.uow() as uow:
        assert await uow.marks.get_many(["traffic:1", "capacity:1:ipv4"]) == {
            "capacity:1:ipv4": "low"
        }


async def test_a_panel_error_skips_one_server_and_a_panel_down_is_raised(
    harness: Harness,
) -> None:
    first, second = await _built(harness)
    for server_id in (first, second):
        harness.panel.servers[server_id].traffic_bytes = 990 * GIB
    broken = ScriptedFault("GET", rf"^/servers/{first}/traffic$", "500", 99)
    harness.panel.faults.script = [broken]
    watch = TrafficWatch(_ctx(harness), 80)
    assert await watch.check() == 1  # the other server is still checked
    harness.panel.faults.script = [ScriptedFault("GET", r"/traffic$", "500", 99)]
    with pytest.raises(VirtFusionError):
        await watch.check()  # only the first is left to ask, and it fails: said by the ticker
