"""Prometheus metrics: every family vfbot exports on `/metrics`, and what fills each one.

Instrumentation stays at the edges, out of the domain's logic: the panel client tells an observer
about every HTTP attempt (`Metrics.observe_panel`), a Bolt middleware times acknowledgements
(`bot.slack.timing`), the composition root times engine ticks (`Metrics.observe_tick`), and the
counts of requests, servers, leases and the outbox are read from the store when Prometheus
scrapes, one short query each under a timeout, so `/metrics` answers even when the database
does not (`vfbot_store_up` is then 0 and the counts keep their last values).

docs/operations.md lists every family with suggested alert rules.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

import prometheus_client
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from bot import __version__
from bot.provisioning.engine import TickReport
from bot.provisioning.model import InstanceState, RequestState
from bot.provisioning.ports import UnitOfWork

__all__ = ["Metrics", "StoreSource", "endpoint_template", "metrics_route"]

logger = logging.getLogger("bot.metrics")

_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")

# Seconds. Slack's deadline is 3 s; panel calls have a 30 s timeout by default; builds take
# minutes (VF_BUILD_TIMEOUT is 20 minutes by default).
_ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
_PANEL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BUILD_BUCKETS = (30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600)


def endpoint_template(path: str) -> str:
    """The panel path with its ids as ``{id}``: ``/servers/12/build`` → ``/servers/{id}/build``
    (one label value per endpoint, whatever the ids)."""
    return _ID_SEGMENT.sub("/{id}", path)


@dataclass(frozen=True)
class StoreSource:
    """Where the scrape-time counts come from: the store, the clock, the outbox subscribers this
    process delivers to, and the engine's worker id (whose leases count as held here)."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    subscribers: Collection[str]
    worker: str
    timeout_s: float = 2.0


class Metrics:
    """One process's metric families, in a registry of their own (never the global one)."""

    def __init__(self, store: StoreSource | None = None) -> None:
        # No `_created` series beside each counter (untyped in prometheus_client).
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry()
        self._store = store
        self._store_failing = False
        self._lock = asyncio.Lock()
        prometheus_client.ProcessCollector(registry=registry)
        prometheus_client.PlatformCollector(registry=registry)
        prometheus_client.GCCollector(registry=registry)
        Info("vfbot", "vfbot's version.", registry=registry).info({"version": __version__})
        self.ack_seconds = Histogram(
            "vfbot_slack_ack_duration_seconds",
            "Time from a Slack request reaching the listener to its ack(), by listener.",
            ["kind", "listener"],
            buckets=_ACK_BUCKETS,
            registry=registry,
        )
        self.panel_requests = Counter(
            "vfbot_panel_requests",
            "VirtFusion API attempts by method, endpoint template and HTTP status (or the error "
            "when no answer came).",
            ["method", "endpoint", "status"],
            registry=registry,
        )
        self.panel_seconds = Histogram(
            "vfbot_panel_request_duration_seconds",
            "Duration of one VirtFusion API attempt, by method and endpoint template.",
            ["method", "endpoint"],
            buckets=_PANEL_BUCKETS,
            registry=registry,
        )
        self.tick_seconds = Histogram(
            "vfbot_engine_tick_duration_seconds",
            "Duration of one engine tick (create, build, track and finish what is due).",
            buckets=_TICK_BUCKETS,
            registry=registry,
        )
        self.engine_outcomes = Counter(
            "vfbot_engine_outcomes",
            "Servers the engine moved on, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.webhooks = Counter(
            "vfbot_webhooks",
            "VirtFusion webhook deliveries by outcome (accepted, duplicate, unauthorized, "
            "too_large, dropped) and event (a known event name, unknown, or empty when refused).",
            ["outcome", "event"],
            registry=registry,
        )
        self.build_seconds = Histogram(
            "vfbot_build_duration_seconds",
            "Time from a server's build call to the panel reporting it built.",
            buckets=_BUILD_BUCKETS,
            registry=registry,
        )
        self.servers = Gauge(
            "vfbot_servers", "Servers (request instances) by state.", ["state"], registry=registry
        )
        self.requests = Gauge("vfbot_requests", "Requests by state.", ["state"], registry=registry)
        self.outbox_backlog = Gauge(
            "vfbot_outbox_backlog_events",
            "Events not yet delivered to a subscriber this process delivers for.",
            ["subscriber"],
            registry=registry,
        )
        self.outbox_oldest = Gauge(
            "vfbot_outbox_oldest_undelivered_age_seconds",
            "Age of the oldest event not yet delivered to the subscriber (0 when none).",
            ["subscriber"],
            registry=registry,
        )
        self.leases = Gauge(
            "vfbot_leases_held",
            "Servers this process's engine holds a lease on.",
            registry=registry,
        )
        self.store_up = Gauge(
            "vfbot_store_up",
            "1 when the last scrape could read the counts from the database, else 0.",
            registry=registry,
        )
        self.dependency_up = Gauge(
            "vfbot_dependency_up",
            "1 when the dependency answered its last readiness check, else 0.",
            ["dependency"],
            registry=registry,
        )
        self.loop_lag = Gauge(
            "vfbot_event_loop_lag_seconds",
            "How late the event loop ran its last heartbeat.",
            registry=registry,
        )
        for outcome in (
            "created",
            "adopted",
            "recreated",
            "build_started",
            "built",
            "failed",
            "failed_over",
            "expiry_warned",
            "expired",
        ):
            self.engine_outcomes.labels(outcome)
        if store is not None:
            for state in InstanceState:
                self.servers.labels(state.value)
            for request_state in RequestState:
                self.requests.labels(request_state.value)

    # -- what the edges report -------------------------------------------------------------------

    def observe_panel(self, method: str, path: str, status: str, seconds: float) -> None:
        """A `bot.virtfusion.CallObserver`: one panel attempt."""
        endpoint = endpoint_template(path)
        status = "none" if status == "-" else status
        self.panel_requests.labels(method, endpoint, status).inc()
        self.panel_seconds.labels(method, endpoint).observe(seconds)

    def observe_ack(self, kind: str, name: str, seconds: float) -> None:
        """A `bot.slack.timing.AckObserver`: one acknowledged Slack request."""
        self.ack_seconds.labels(kind, name).observe(seconds)

    def observe_tick(self, report: TickReport, seconds: float) -> None:
        """One engine tick and what it did."""
        self.tick_seconds.observe(seconds)
        for outcome, count in (
            ("created", report.created),
            ("adopted", report.adopted),
            ("recreated", report.recreated),
            ("build_started", report.builds_started),
            ("built", report.built),
            ("failed", report.failed),
            ("failed_over", report.failed_over),
            ("expiry_warned", report.warned),
            ("expired", report.expired),
        ):
            if count:
                self.engine_outcomes.labels(outcome).inc(count)
        for build_s in report.build_seconds:
            self.build_seconds.observe(build_s)

    def observe_webhook(self, outcome: str, event: str) -> None:
        """A `bot.webhook.Observe`: one webhook delivery (event names are a fixed set)."""
        self.webhooks.labels(outcome, event).inc()

    def set_dependency(self, name: str, ok: bool) -> None:
        """The result of a readiness check (`bot.health.Readiness` reports here)."""
        self.dependency_up.labels(name).set(1 if ok else 0)

    # -- the scrape ------------------------------------------------------------------------------

    async def render(self) -> bytes:
        """The exposition text, after reading the store's counts (bounded by the timeout)."""
        if self._store is not None:
            async with self._lock:  # concurrent scrapes share one reader, never pile up
                await self._refresh(self._store)
        return generate_latest(self.registry)

    async def _refresh(self, store: StoreSource) -> None:
        try:
            async with asyncio.timeout(store.timeout_s):
                await self._read(store)
        # The scrape's error edge: whatever the database raises, /metrics still answers (the
        # readiness check and the engine's own logs report the database in detail).
        except Exception as error:  # noqa: BLE001
            self.store_up.set(0)
            if not self._store_failing:
                logger.warning(
                    "/metrics could not read the counts from the database (%s); "
                    "vfbot_store_up is 0 until it can",
                    "timed out" if isinstance(error, TimeoutError) else type(error).__name__,
                )
            self._store_failing = True
            return
        self.store_up.set(1)
        self._store_failing = False

    async def _read(self, store: StoreSource) -> None:
        now = store.clock()
        async with store.uow() as uow:
            servers = await uow.instances.count_by_state()
            requests = await uow.requests.count_by_state()
            leased = await uow.instances.count_leased(store.worker, now)
            backlogs = {name: await uow.events.backlog(name) for name in store.subscribers}
        for state in InstanceState:
            self.servers.labels(state.value).set(servers.get(state, 0))
        for request_state in RequestState:
            self.requests.labels(request_state.value).set(requests.get(request_state, 0))
        self.leases.set(leased)
        for name, backlog in backlogs.items():
            self.outbox_backlog.labels(name).set(backlog.events)
            age = (now - backlog.oldest_at).total_seconds() if backlog.oldest_at else 0.0
            self.outbox_oldest.labels(name).set(max(age, 0.0))


def metrics_route(metrics: Metrics) -> web.RouteDef:
    """`GET /metrics` in Prometheus' text format."""

    async def handler(_: web.Request) -> web.Response:
        body = await metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return web.get("/metrics", handler)
