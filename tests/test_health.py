"""Readiness from background checks, and liveness from the event loop's heartbeat."""

from __future__ import annotations

import asyncio
import contextlib

from bot.health import LoopWatch, Probe, Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _probe(answers: list[tuple[bool, str]], **options: object) -> Probe:
    async def check() -> tuple[bool, str]:
        return answers[0]

    return Probe(check, **options)  # type: ignore[arg-type]


async def test_not_ready_until_checked_then_from_the_last_results() -> None:
    database: list[tuple[bool, str]] = [(True, "reachable")]
    reported: list[tuple[str, bool]] = []
    clock = Clock()
    readiness = Readiness(
        {"database": _probe(database, every_s=5)},
        monotonic=clock,
        report=lambda name, ok: reported.append((name, ok)),
    )
    ready, body = readiness.status()
    assert not ready and body["checks"] == {
        "database": {"ok": False, "detail": "not checked yet", "required": True, "age_s": 0.0}
    }
    await readiness.refresh()
    assert readiness.status()[0]
    database[0] = (False, "cannot run SELECT 1")
    clock.now += 4  # not due yet: the last answer stands
    await readiness.refresh()
    ready, body = readiness.status()
    assert ready and body["checks"]["database"]["age_s"] == 4.0  # type: ignore[index]
    clock.now += 1
    await readiness.refresh()
    ready, body = readiness.status()
    assert not ready and body["status"] == "not ready"
    assert reported == [("database", True), ("database", False)]


async def test_a_down_panel_is_reported_but_keeps_the_process_ready() -> None:
    readiness = Readiness(
        {
            "database": _probe([(True, "reachable")]),
            "panel": _probe([(False, "cannot connect")], required=False),
        }
    )
    await readiness.refresh()
    ready, body = readiness.status()
    assert ready and body["status"] == "ready"
    assert body["checks"]["panel"] == {  # type: ignore[index]
        "ok": False,
        "detail": "cannot connect",
        "required": False,
        "age_s": 0.0,
    }


async def test_a_hanging_check_times_out_and_never_delays_the_answer() -> None:
    release = asyncio.Event()
    calls = 0

    async def hangs() -> tuple[bool, str]:
        nonlocal calls
        calls += 1
        if calls > 1:
            await release.wait()
        return True, "fine"

    readiness = Readiness({"slack": Probe(hangs, timeout_s=0.05)})
    await readiness.refresh()
    refreshing = asyncio.ensure_future(readiness.refresh(force=True))
    await asyncio.sleep(0)  # the second check is now waiting
    assert readiness.status()[0]  # answered from the last result meanwhile
    await refreshing
    ready, body = readiness.status()
    assert not ready
    assert body["checks"]["slack"]["detail"] == "no answer within 0.05 s"  # type: ignore[index]


async def test_a_check_that_raises_fails_with_its_error_class() -> None:
    async def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    readiness = Readiness({"slack": Probe(broken)})
    await readiness.refresh()
    ready, body = readiness.status()
    assert not ready
    assert body["checks"]["slack"]["detail"] == "the check failed (RuntimeError)"  # type: ignore[index]


async def test_stopping_is_not_ready() -> None:
    readiness = Readiness({"database": _probe([(True, "reachable")])})
    await readiness.refresh()
    readiness.stop()
    ready, body = readiness.status()
    assert not ready and body["status"] == "stopping"


def test_liveness_follows_the_heartbeat() -> None:
    clock = Clock()
    lags: list[float] = []
    watch = LoopWatch(stall_s=10, monotonic=clock, report=lags.append)
    assert watch.status()[0]
    clock.now += 1.5
    watch.beat(0.5)
    alive, body = watch.status()
    assert alive and body == {"status": "ok", "loop_lag_s": 0.5, "last_beat_s": 0.0}
    clock.now += 10  # no beat for ten seconds: the loop is stuck
    alive, body = watch.status()
    assert not alive and body["status"] == "stalled"
    assert lags == [0.5]


async def test_the_heartbeat_measures_how_late_the_loop_is() -> None:
    clock = Clock()
    slept: list[float] = []

    async def late_sleep(seconds: float) -> None:
        if slept:  # the second wait: end the test here
            raise asyncio.CancelledError
        slept.append(seconds)
        clock.now += seconds + 0.25  # the loop woke up a quarter second late

    watch = LoopWatch(interval_s=1, monotonic=clock, sleep=late_sleep)
    with contextlib.suppress(asyncio.CancelledError):
        await watch.run()
    assert slept == [1] and watch.lag_s == 0.25
