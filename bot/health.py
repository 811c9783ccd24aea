"""Liveness (`/healthz`) and readiness (`/readyz`): what the process and its dependencies answer.

Readiness never probes on the request path: checks are refreshed in the background, each on its
own interval and under its own timeout, and `/readyz` answers from the last results at once.
A dependency marked not `required` (the panel) is reported but never makes the process unready:
while the panel is down Slack must still reach vfbot, to hear that the panel cannot be reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiohttp import web

from bot.virtfusion import VirtFusionClient, VirtFusionError

__all__ = [
    "CheckResult",
    "LoopWatch",
    "Probe",
    "Readiness",
    "ReadinessCheck",
    "database_check",
    "health_routes",
    "panel_check",
]

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]
"""A readiness probe: (ok, detail)."""


class _Pingable(Protocol):
    async def ping(self) -> bool: ...


def database_check(db: _Pingable) -> ReadinessCheck:
    """Ready while the database answers `SELECT 1`."""

    async def check() -> tuple[bool, str]:
        ok = await db.ping()
        return ok, "reachable" if ok else "cannot run SELECT 1"

    return check


def panel_check(
    client: VirtFusionClient, *, clock: Callable[[], datetime], recent_s: float = 30
) -> ReadinessCheck:
    """Up while the panel answered within `recent_s` (any call of the engine or the CLI counts);
    otherwise probe `GET /connect`."""

    async def check() -> tuple[bool, str]:
        last = client.last_success_at
        if last is not None and (clock() - last).total_seconds() < recent_s:
            return True, f"answered within {recent_s:g} s"
        try:
            await client.connect()
        except VirtFusionError as error:
            return False, str(error)
        return True, "GET /connect ok"

    return check


@dataclass(frozen=True)
class Probe:
    """One readiness check and how it runs: how often, for how long at most, and whether the
    process is unready while it fails."""

    check: ReadinessCheck
    every_s: float = 10.0
    timeout_s: float = 3.0
    required: bool = True


@dataclass(frozen=True)
class CheckResult:
    """The last answer of one probe, and when it came (monotonic seconds)."""

    ok: bool
    detail: str
    at: float


class Readiness:
    """The readiness checks of one process, refreshed in the background (`refresh`)."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        report: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._probes = dict(probes)
        self._monotonic = monotonic
        self._report = report
        self._results: dict[str, CheckResult] = {}
        self._stopping = False

    async def refresh(self, *, force: bool = False) -> None:
        """Run every probe that is due (all with `force`) at once, each under its timeout."""
        now = self._monotonic()
        due = [
            name
            for name, probe in self._probes.items()
            if force or (last := self._results.get(name)) is None or now - last.at >= probe.every_s
        ]
        results = await asyncio.gather(*(self._run(name) for name in due))
        for name, result in zip(due, results, strict=True):
            self._results[name] = result
            if self._report is not None:
                self._report(name, result.ok)

    async def _run(self, name: str) -> CheckResult:
        probe = self._probes[name]
        try:
            async with asyncio.timeout(probe.timeout_s):
                ok, detail = await probe.check()
        except TimeoutError:
            ok, detail = False, f"no answer within {probe.timeout_s:g} s"
        # A probe's error edge: the check fails (and says with what), refreshing goes on.
        except Exception as error:  # noqa: BLE001
            ok, detail = False, f"the check failed ({error.__class__.__name__})"
        return CheckResult(ok, detail, self._monotonic())

    def stop(self) -> None:
        """Report not ready from now on (shutting down: the load balancer stops sending)."""
        self._stopping = True

    def status(self) -> tuple[bool, dict[str, object]]:
        """Whether the process is ready, and the JSON body of `/readyz`."""
        now = self._monotonic()
        checks: dict[str, object] = {}
        ready = not self._stopping
        for name, probe in self._probes.items():
            result = self._results.get(name)
            if result is None:
                result = CheckResult(False, "not checked yet", now)
            ready = ready and (result.ok or not probe.required)
            checks[name] = {
                "ok": result.ok,
                "detail": result.detail,
                "required": probe.required,
                "age_s": round(now - result.at, 1),
            }
        state = "stopping" if self._stopping else "ready" if ready else "not ready"
        return ready, {"status": state, "checks": checks}


class LoopWatch:
    """Liveness: a heartbeat on the event loop. A loop that stalls (blocking code, a runaway
    coroutine) beats late, and `/healthz` says so once the last beat is `stall_s` old."""

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        stall_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        report: Callable[[float], None] | None = None,
    ) -> None:
        self._interval_s = interval_s
        self._stall_s = stall_s
        self._monotonic = monotonic
        self._sleep = sleep
        self._report = report
        self.lag_s = 0.0
        self._last_beat = monotonic()

    async def run(self) -> None:
        """Beat every `interval_s` until cancelled."""
        while True:
            started = self._monotonic()
            await self._sleep(self._interval_s)
            self.beat(self._monotonic() - started - self._interval_s)

    def beat(self, lag_s: float) -> None:
        """Record one heartbeat that came `lag_s` seconds late."""
        self.lag_s = max(lag_s, 0.0)
        self._last_beat = self._monotonic()
        if self._report is not None:
            self._report(self.lag_s)

    def status(self) -> tuple[bool, dict[str, object]]:
        """Whether the loop is live, and the JSON body of `/healthz`."""
        silent_s = self._monotonic() - self._last_beat
        alive = silent_s < self._stall_s
        body: dict[str, object] = {
            "status": "ok" if alive else "stalled",
            "loop_lag_s": round(self.lag_s, 3),
            "last_beat_s": round(silent_s, 1),
        }
        return alive, body


def health_routes(readiness: Readiness, liveness: LoopWatch) -> list[web.RouteDef]:
    """`GET /healthz` and `GET /readyz`, answered from memory (never a probe on the way)."""

    async def healthz(_: web.Request) -> web.Response:
        alive, body = liveness.status()
        return web.json_response(body, status=200 if alive else 503)

    async def readyz(_: web.Request) -> web.Response:
        ready, body = readiness.status()
        return web.json_response(body, status=200 if ready else 503)

    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]
