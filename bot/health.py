"""Liveness and readiness for `/healthz` and `/readyz`: what each dependency answers now."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from bot.virtfusion import VirtFusionClient, VirtFusionError

__all__ = ["ReadinessCheck", "database_check", "panel_check"]

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
    client: VirtFusionClient,
    *,
    clock: Callable[[], datetime],
    monotonic: Callable[[], float] = time.monotonic,
    fresh_s: float = 300,
    probe_every_s: float = 30,
) -> ReadinessCheck:
    """Ready while the panel answered recently; otherwise probe `GET /connect`, at most every
    `probe_every_s` seconds."""
    probed_at = -1e9

    async def check() -> tuple[bool, str]:
        nonlocal probed_at
        last = client.last_success_at
        if last is not None and (clock() - last).total_seconds() < fresh_s:
            return True, "answered within 5 minutes"
        if monotonic() - probed_at < probe_every_s:
            return False, "no answer recently"
        probed_at = monotonic()
        try:
            await client.connect()
        except VirtFusionError as error:
            return False, str(error)
        return True, "GET /connect ok"

    return check
