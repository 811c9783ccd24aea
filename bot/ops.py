"""What a long-running process (`vfbot serve`, `vfbot worker`) shows its operators: metrics,
liveness and readiness, refreshed in the background and served over HTTP; no domain logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from bot.health import LoopWatch, Probe, Readiness, health_routes
from bot.metrics import Metrics, StoreSource, metrics_route

__all__ = ["Ops", "listen"]

logger = logging.getLogger("bot.ops")

Sleep = Callable[[float], Awaitable[None]]


class Ops:
    """One process's metrics, readiness and liveness, and the background tasks behind them."""

    def __init__(
        self,
        store: StoreSource | None,
        probes: Mapping[str, Probe],
        *,
        refresh_every_s: float = 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.metrics = Metrics(store)
        self.readiness = Readiness(probes, report=self.metrics.set_dependency)
        self.liveness = LoopWatch(report=self.metrics.loop_lag.set)
        self._refresh_every_s = refresh_every_s
        self._sleep = sleep
        self._tasks: list[asyncio.Task[None]] = []

    def routes(self) -> list[web.RouteDef]:
        """`/healthz`, `/readyz` and `/metrics`."""
        return [*health_routes(self.readiness, self.liveness), metrics_route(self.metrics)]

    async def start(self, *, background: bool = True) -> None:
        """Check every dependency once (so `/readyz` means something from the start), then keep
        the checks fresh and the heartbeat going in the background (tests that drive the
        process by hand pass `background=False` and call `readiness.refresh` themselves)."""
        await self.readiness.refresh(force=True)
        if background and not self._tasks:
            self._tasks = [
                asyncio.create_task(self._refresh_forever(), name="vfbot-readiness"),
                asyncio.create_task(self.liveness.run(), name="vfbot-liveness"),
            ]

    async def _refresh_forever(self) -> None:
        while True:
            await self._sleep(self._refresh_every_s)
            await self.readiness.refresh()

    def stopping(self) -> None:
        """From now on `/readyz` answers 503: the load balancer stops sending new work."""
        self.readiness.stop()

    async def stop(self) -> None:
        """End the background tasks; idempotent."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def listen(
    routes: Iterable[web.RouteDef] | web.Application, host: str, port: int
) -> tuple[web.AppRunner, int]:
    """Serve `routes` (or a whole application) on host:port (0: any free port); returns the
    runner, to `cleanup()` on stop, and the port bound."""
    app = routes if isinstance(routes, web.Application) else web.Application()
    if not isinstance(routes, web.Application):
        app.router.add_routes(list(routes))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port
