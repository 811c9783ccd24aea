"""The typed VirtFusion client: endpoint methods, retry policy, rate limit; transport-agnostic.

Subclasses provide one coroutine, `_send`, that performs an `HttpRequest` and returns a
`RawResponse` or raises a `TransportError`. Everything else (what to call, how to read the answer,
when to repeat) lives here and in `_sansio`, so it is tested without sockets.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar

from aiolimiter import AsyncLimiter
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, stop_before_delay

from bot.virtfusion import _sansio as sansio
from bot.virtfusion._client_day2 import DayTwoEndpoints
from bot.virtfusion._exceptions import (
    AmbiguousResultError,
    ConnectError,
    DecodeError,
    LockedError,
    NotFoundError,
    PanelError,
    RateLimitedError,
    TransportError,
    VirtFusionError,
)
from bot.virtfusion._models import (
    BuildServerBody,
    CreateServerBody,
    GroupCapacity,
    Hypervisor,
    HypervisorGroup,
    HypervisorResources,
    OsTemplate,
    Package,
    PowerAction,
    QueueTask,
    Server,
    SshKey,
    TrafficMonth,
    VncSession,
)
from bot.virtfusion._sansio import HttpRequest, RawResponse

__all__ = ["CallObserver", "RetryPolicy", "VirtFusionClient"]

logger = logging.getLogger("bot.virtfusion")

M = TypeVar("M", bound=BaseModel)

MAX_PAGES = 10_000  # a panel that always says "next page" must not loop us forever


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for repeating safe calls: attempts, a total deadline, and backoff shapes."""

    max_attempts: int = 5
    deadline_s: float = 60.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_cap_s: float = 30.0
    locked_attempts: int = 4
    locked_wait_s: float = 3.0

    def should_retry(self, request: HttpRequest, error: BaseException, attempt: int) -> bool:
        """Decide whether `error` on attempt number `attempt` (1-based) deserves another try.

        Create and build are repeated only when the panel provably did not act: it answered
        429, or the connection was never opened.
        """
        if not isinstance(error, VirtFusionError):
            return False
        if not request.repeatable:
            return isinstance(error, RateLimitedError | ConnectError)
        if isinstance(error, LockedError):
            return attempt < self.locked_attempts
        return error.retryable

    def wait_s(self, error: BaseException | None, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before the next attempt: Retry-After when given, else jittered."""
        if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
            return min(error.retry_after_s, self.retry_after_cap_s) + rng.uniform(0, 0.25)
        if isinstance(error, LockedError):
            return self.locked_wait_s * attempt + rng.uniform(0, self.locked_wait_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)  # "equal jitter": never a zero wait


Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]
CallObserver = Callable[[str, str, str, float], None]
"""Told of every HTTP attempt: method, path (with ids), status (the HTTP code, or the error's
class name when no answer came) and seconds taken. Must not raise or block."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VirtFusionClient(abc.ABC, DayTwoEndpoints):
    """Typed access to one VirtFusion panel. Use as `async with` to release the transport.

    The day-2 endpoints (rebuild, resize, rename, password, firewall, IPv4, backups) come from
    `DayTwoEndpoints`.
    """

    def __init__(
        self,
        *,
        rate_limit_per_s: float = 10.0,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        clock: Clock = _utcnow,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        # AsyncLimiter refuses to acquire 1 unit when max_rate < 1, so slow rates widen the
        # window instead: 0.5/s is 1 request per 2 s.
        rate = max(rate_limit_per_s, 0.01)
        self._limiter = AsyncLimiter(max(rate, 1.0), max(rate, 1.0) / rate)
        self._slots = asyncio.Semaphore(max(concurrency, 1))
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not cryptography
        self.last_success_at: datetime | None = None
        self._observers: list[CallObserver] = []

    def observe(self, observer: CallObserver) -> None:
        """Tell `observer` about every attempt from now on (metrics; the client stays unaware)."""
        self._observers.append(observer)

    @abc.abstractmethod
    async def _send(self, request: HttpRequest) -> RawResponse:
        """Perform one HTTP exchange; raise ConnectError/PanelTimeoutError/TransportError."""

    async def close(self) -> None:  # optional hook: not every transport holds one
        """Release the transport; the base class holds none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the call path --------------------------------------------------------------------------

    async def _call(self, request: HttpRequest) -> object:
        """Send `request` under the retry policy; return the decoded 2xx body."""
        attempts = AsyncRetrying(
            stop=stop_after_attempt(self._retry.max_attempts)
            | stop_before_delay(self._retry.deadline_s),
            wait=self._wait,
            retry=lambda state: self._retry_decision(request, state),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in attempts:
            with attempt:
                return await self._attempt(request, attempt.retry_state.attempt_number)
        raise AssertionError(
            "unreachable: tenacity either returns or re-raises"
        )  # pragma: no cover

    def _retry_decision(self, request: HttpRequest, state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        error = state.outcome.exception()
        return error is not None and self._retry.should_retry(request, error, state.attempt_number)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome and state.outcome.failed else None
        return self._retry.wait_s(error, state.attempt_number, self._rng)

    async def _attempt(self, request: HttpRequest, attempt: int) -> object:
        started = time.monotonic()
        status: int | str = "-"
        try:
            async with self._slots, self._limiter:
                response = await self._send(request)
            status = response.status
            body = sansio.parse_response(request, response, self._clock())
        except VirtFusionError as error:
            if status == "-":
                status = type(error).__name__
            converted = self._ambiguous(request, error)
            if converted is error:
                raise
            raise converted from error
        finally:
            seconds = time.monotonic() - started
            logger.debug(
                "virtfusion %s %s -> %s in %.0f ms (attempt %d)",
                request.method,
                request.path,
                status,
                seconds * 1000,
                attempt,
            )
            for observer in self._observers:
                observer(request.method, request.path, str(status), seconds)
        self.last_success_at = self._clock()
        return body

    @staticmethod
    def _ambiguous(request: HttpRequest, error: VirtFusionError) -> VirtFusionError:
        """For create/build, failures after the request may have reached the panel are
        ambiguous: the server may exist (or be building) even though we saw an error."""
        if request.repeatable or isinstance(error, ConnectError):
            return error
        if isinstance(error, TransportError | PanelError | DecodeError):
            return AmbiguousResultError(
                f"{request.label}: the panel may have acted even though the call failed "
                f"({error}); vfbot will check the panel instead of repeating it",
                method=request.method,
                path=request.path,
                cause=error,
            )
        return error

    async def _data(self, request: HttpRequest, model: type[M]) -> M:
        return sansio.parse_data(request, await self._call(request), model)

    async def _list(self, request: HttpRequest, model: type[M]) -> list[M]:
        return sansio.parse_list(request, await self._call(request), model)

    async def _pages(self, build: Callable[[int], HttpRequest], model: type[M]) -> AsyncIterator[M]:
        """Every item of a paginated list, fetching pages of 200 as the caller iterates."""
        for page_no in range(1, MAX_PAGES + 1):
            request = build(page_no)
            page = sansio.parse_page(request, await self._call(request), model)
            for item in page.items:
                yield item
            if not page.has_next or not page.items:
                return

    # -- endpoints ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """`GET /connect`: raises unless the panel accepts the token (any 2xx body will do)."""
        await self._call(sansio.connect())

    def hypervisors(self) -> AsyncIterator[Hypervisor]:
        return self._pages(sansio.list_hypervisors, Hypervisor)

    async def hypervisor(self, hypervisor_id: int) -> Hypervisor:
        return await self._data(sansio.get_hypervisor(hypervisor_id), Hypervisor)

    def groups(self) -> AsyncIterator[HypervisorGroup]:
        return self._pages(sansio.list_groups, HypervisorGroup)

    async def group(self, group_id: int) -> HypervisorGroup:
        return await self._data(sansio.get_group(group_id), HypervisorGroup)

    def group_resources(self, group_id: int) -> AsyncIterator[HypervisorResources]:
        return self._pages(lambda page: sansio.group_resources(group_id, page), HypervisorResources)

    async def group_capacity(self, group_id: int) -> GroupCapacity:
        """Free memory, storage and IPv4 of a group, over its eligible hypervisors."""
        rows = [row async for row in self.group_resources(group_id)]
        return GroupCapacity.from_rows(group_id, rows)

    async def probe_compute_scope(self) -> None:
        """`GET /compute/hypervisors/groups?results=1`: catches tokens without compute scope."""
        await self._call(sansio.list_groups(1, results=1))

    async def package(self, package_id: int) -> Package:
        return await self._data(sansio.get_package(package_id), Package)

    async def package_templates(self, package_id: int) -> list[OsTemplate]:
        """OS templates allowed for a package, flattened out of their groups."""
        request = sansio.package_templates(package_id)
        return sansio.parse_templates(request, await self._call(request))

    async def ssh_keys(self, user_id: int) -> list[SshKey]:
        return await self._list(sansio.user_ssh_keys(user_id), SshKey)

    async def validate_server(self, body: CreateServerBody) -> None:
        """`POST /servers?dryRun=true`: raises InvalidRequestError with the panel's reasons."""
        await self._call(sansio.create_server(body, dry_run=True))

    async def create_server(self, body: CreateServerBody) -> Server:
        """`POST /servers`. Never repeated once it may have reached the panel.

        Raises AmbiguousResultError when the outcome is unknown: reconcile, don't repeat.
        """
        request = sansio.create_server(body)
        payload = await self._call(request)
        try:
            return sansio.parse_data(request, payload, Server)
        except DecodeError as error:  # 2xx but unreadable: the server exists, we lack its id
            raise self._ambiguous(request, error) from error

    async def build_server(self, server_id: int, body: BuildServerBody) -> Server:
        """`POST /servers/{id}/build`; the root password in the answer is dropped on parsing."""
        request = sansio.build_server(server_id, body)
        payload = await self._call(request)
        try:
            return sansio.parse_data(request, payload, Server)
        except DecodeError as error:  # 2xx but unreadable: the build may be under way
            raise self._ambiguous(request, error) from error

    def servers(self) -> AsyncIterator[Server]:
        """Every server on the panel (simple rows), all pages."""
        return self._pages(sansio.list_servers, Server)

    async def user_servers(self, user_id: int) -> list[Server]:
        """All servers of one owner in one call (`GET /servers/user/{id}`).

        A thousand servers take tens of milliseconds to validate: that is done in a thread, so
        the event loop (Slack's acknowledgements) does not wait for it.
        """
        request = sansio.user_servers(user_id)
        payload = await self._call(request)
        return await asyncio.to_thread(sansio.parse_list, request, payload, Server)

    async def server(self, server_id: int, *, remote_state: bool = False) -> Server:
        """One server; `remote_state` asks the hypervisor live (heavier) for the power state."""
        request = sansio.get_server(server_id, remote_state=remote_state)
        return await self._data(request, Server)

    async def delete_server(self, server_id: int, *, delay_min: int = 0) -> bool:
        """Delete a server; True when deleted now, False when it was already gone (404)."""
        try:
            await self._call(sansio.delete_server(server_id, delay_min=delay_min))
        except NotFoundError:
            return False
        return True

    async def suspend_server(self, server_id: int) -> None:
        await self._call(sansio.suspend_server(server_id))

    async def unsuspend_server(self, server_id: int) -> None:
        await self._call(sansio.unsuspend_server(server_id))

    async def power(self, server_id: int, action: PowerAction) -> int:
        """Queue a power action; returns the queue id to follow with `queue_task`."""
        request = sansio.power(server_id, action)
        return _queue_id(request, await self._call(request))

    async def queue_task(self, queue_id: int) -> QueueTask:
        return await self._data(sansio.get_queue(queue_id), QueueTask)

    async def set_backup_plan(self, server_id: int, plan_id: int) -> None:
        """Attach backup plan `plan_id` to a server; 0 removes its plan."""
        await self._call(sansio.set_backup_plan(server_id, plan_id))

    async def change_owner(self, server_id: int, new_owner_id: int) -> None:
        await self._call(sansio.change_owner(server_id, new_owner_id))

    async def set_vnc(self, server_id: int, *, enabled: bool) -> VncSession:
        """Enable or disable VNC; the answer holds credentials (kept as SecretStr)."""
        request = sansio.set_vnc(server_id, enabled=enabled)
        return sansio.parse_vnc(request, await self._call(request))

    async def traffic(self, server_id: int) -> list[TrafficMonth]:
        """Monthly traffic rows (`data.monthly[]`); an unreadable month is skipped."""
        request = sansio.traffic(server_id)
        payload = await self._call(request)
        data = payload.get("data") if isinstance(payload, dict) else None
        monthly = data.get("monthly") if isinstance(data, dict) else None
        return sansio.parse_list(request, {"data": monthly}, TrafficMonth, lenient=True)

    async def set_cpu_throttle(self, server_id: int, percent: int, *, sync: bool = False) -> None:
        await self._call(sansio.cpu_throttle(server_id, percent, sync=sync))


def _queue_id(request: HttpRequest, payload: object) -> int:
    data = payload.get("data") if isinstance(payload, dict) else None
    queue_id = data.get("queueId") if isinstance(data, dict) else None
    if not isinstance(queue_id, int):
        raise DecodeError(
            f"{request.label} answered without a queueId", method=request.method, path=request.path
        )
    return queue_id
