"""The client call path over a recording fake `_send`: retries, deadline, pages, concurrency."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from bot.virtfusion import (
    AmbiguousResultError,
    AuthError,
    ConnectError,
    DecodeError,
    HttpRequest,
    InvalidRequestError,
    LockedError,
    NotFoundError,
    PanelError,
    PanelTimeoutError,
    RateLimitedError,
    RawResponse,
    RetryPolicy,
    Server,
    TransportError,
    VirtFusionClient,
    VirtFusionError,
)
from tests.virtfusion._support import (
    BUILD_BODY,
    CREATE_BODY,
    NOW,
    json_response,
    sample,
    sample_response,
)

Outcome = RawResponse | BaseException


class ScriptExhaustedError(Exception):
    """The client sent more requests than the test scripted."""


class RecordingClient(VirtFusionClient):
    """Answers each `_send` with the next scripted outcome and records the request."""

    def __init__(self, outcomes: Sequence[Outcome], **options: Any) -> None:
        self.waits: list[float] = []
        options.setdefault("rate_limit_per_s", 1000.0)  # the limiter must never wait in tests
        options.setdefault("clock", lambda: NOW)
        options.setdefault("sleep", self._record_sleep)
        options.setdefault("rng", random.Random(1234))
        super().__init__(**options)
        self.outcomes = list(outcomes)
        self.sent: list[HttpRequest] = []

    async def _record_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def _send(self, request: HttpRequest) -> RawResponse:
        self.sent.append(request)
        if not self.outcomes:
            raise ScriptExhaustedError(f"unscripted {request.label}")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


# -- the retry table ------------------------------------------------------------------------------

Call = Callable[[VirtFusionClient], Awaitable[object]]

SERVER_OK = sample_response(200, "create_server_201")
CALLS: dict[str, tuple[Call, RawResponse, bool]] = {
    # name: (call, success answer, repeatable)
    "get": (lambda c: c.server(70), SERVER_OK, True),
    "delete": (lambda c: c.delete_server(70), RawResponse(204), True),
    "suspend": (lambda c: c.suspend_server(70), RawResponse(204), True),
    "power": (lambda c: c.power(70, "boot"), json_response(200, {"data": {"queueId": 9}}), True),
    "create": (
        lambda c: c.create_server(CREATE_BODY),
        sample_response(201, "create_server_201"),
        False,
    ),
    "build": (
        lambda c: c.build_server(70, BUILD_BODY),
        sample_response(200, "build_server_200"),
        False,
    ),
}


def _status(
    status: int, payload: object = None, headers: dict[str, str] | None = None
) -> Callable[[], Outcome]:
    body = b"" if payload is None else None
    return lambda: (
        RawResponse(status, headers or {}, body)
        if body is not None
        else json_response(status, payload, headers)
    )


def _raise(error_class: type[VirtFusionError], text: str) -> Callable[[], Outcome]:
    return lambda: error_class(f"GET /x: {text}", method="GET", path="/x")


RETRIED = "retried"  # [failure, success] -> success after exactly two sends
POLICY = RetryPolicy()  # defaults: 5 attempts, 4 locked attempts

# failure: (make one failure, expectation for repeatable calls, expectation for create/build)
# an expectation is RETRIED or (final exception class, number of sends)
Expectation = str | tuple[type[BaseException], int]
FAILURES: dict[str, tuple[Callable[[], Outcome], Expectation, Expectation]] = {
    "connect_error": (_raise(ConnectError, "refused"), RETRIED, RETRIED),
    "timeout": (_raise(PanelTimeoutError, "no answer"), RETRIED, (AmbiguousResultError, 1)),
    "dropped": (_raise(TransportError, "disconnected"), RETRIED, (AmbiguousResultError, 1)),
    "429_retry_after": (
        _status(429, {"message": "Too Many Attempts."}, {"retry-after": "2"}),
        RETRIED,
        RETRIED,
    ),
    "429_bare": (_status(429), RETRIED, RETRIED),
    "500": (_status(500, {"message": "Server Error"}), RETRIED, (AmbiguousResultError, 1)),
    "502": (_status(502), RETRIED, (AmbiguousResultError, 1)),
    "503": (_status(503), RETRIED, (AmbiguousResultError, 1)),
    "504": (_status(504), RETRIED, (AmbiguousResultError, 1)),
    "501": (_status(501), (PanelError, 1), (AmbiguousResultError, 1)),
    "423": (
        _status(423, {"msg": "server is locked"}),
        (LockedError, POLICY.locked_attempts),
        (LockedError, 1),
    ),
    "422": (_status(422, {"errors": ["bad"]}), (InvalidRequestError, 1), (InvalidRequestError, 1)),
    "404": (_status(404, {"msg": "server not found"}), (NotFoundError, 1), (NotFoundError, 1)),
    "401": (_status(401), (AuthError, 1), (AuthError, 1)),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("call_name", list(CALLS))
async def test_retry_table(call_name: str, failure: str) -> None:
    call, success, repeatable = CALLS[call_name]
    make_failure, safe_expect, unsafe_expect = FAILURES[failure]
    expect = safe_expect if repeatable else unsafe_expect
    if call_name == "delete" and failure == "404":
        expect = "gone"  # delete treats 404 as "already deleted"

    script = [make_failure() for _ in range(POLICY.max_attempts)] + [success]
    if expect == RETRIED:
        script = [make_failure(), success]
    client = RecordingClient(script, retry=POLICY)

    if expect == RETRIED:
        result = await call(client)
        assert result is not None or call_name == "suspend"
        assert len(client.sent) == 2
        assert len(client.waits) == 1
    elif expect == "gone":
        assert await call(client) is False
        assert len(client.sent) == 1
    else:
        assert isinstance(expect, tuple)
        error_class, sends = expect
        with pytest.raises(error_class) as caught:
            await call(client)
        assert type(caught.value) is error_class
        assert len(client.sent) == sends
        assert len(client.waits) == sends - 1
        if error_class is AmbiguousResultError:
            assert isinstance(caught.value, AmbiguousResultError)
            assert isinstance(caught.value.cause, TransportError | PanelError)
            assert "POST /servers" in str(caught.value)
            assert "may have acted" in str(caught.value)
    # every send was the same request: nothing is rebuilt or altered between attempts
    assert len({id(r) for r in client.sent}) == 1


@pytest.mark.parametrize("call_name", ["create", "build"])
async def test_2xx_create_or_build_with_unreadable_body_is_ambiguous(call_name: str) -> None:
    call, _, _ = CALLS[call_name]
    status = 201 if call_name == "create" else 200
    client = RecordingClient([RawResponse(status, {}, b"<html>oops</html>"), SERVER_OK])
    with pytest.raises(AmbiguousResultError) as caught:
        await call(client)
    assert isinstance(caught.value.cause, DecodeError)
    assert len(client.sent) == 1


@pytest.mark.parametrize("call_name", ["create", "build"])
async def test_2xx_create_or_build_with_wrong_json_shape_is_ambiguous(call_name: str) -> None:
    call, _, _ = CALLS[call_name]
    client = RecordingClient([json_response(201, {"id": 70}), SERVER_OK])
    with pytest.raises(AmbiguousResultError) as caught:
        await call(client)
    assert isinstance(caught.value.cause, DecodeError)
    assert len(client.sent) == 1


async def test_2xx_get_with_unreadable_body_is_not_retried() -> None:
    client = RecordingClient([RawResponse(200, {}, b"<html>"), SERVER_OK])
    with pytest.raises(DecodeError):
        await client.server(70)
    assert len(client.sent) == 1


async def test_dry_run_is_repeatable() -> None:
    client = RecordingClient([RawResponse(503), RawResponse(200, {}, b"")])
    await client.validate_server(CREATE_BODY)
    assert [r.query for r in client.sent] == [(("dryRun", "true"),)] * 2


# -- waits ----------------------------------------------------------------------------------------


def _rate_limited(retry_after: str) -> RawResponse:
    return json_response(429, {"message": "Too Many Attempts."}, {"retry-after": retry_after})


@pytest.mark.parametrize("call_name", ["get", "create"])
async def test_wait_honours_retry_after_seconds(call_name: str) -> None:
    call, success, _ = CALLS[call_name]
    client = RecordingClient([_rate_limited("7"), success])
    await call(client)
    assert len(client.waits) == 1
    assert 7.0 <= client.waits[0] <= 7.25


async def test_wait_honours_retry_after_http_date() -> None:
    when = format_datetime(NOW + timedelta(seconds=20), usegmt=True)
    client = RecordingClient([_rate_limited(when), SERVER_OK])
    await client.server(70)
    assert 20.0 <= client.waits[0] <= 20.25


async def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap_s=10.0)
    client = RecordingClient([_rate_limited("45"), SERVER_OK], retry=policy)
    await client.server(70)
    assert 10.0 <= client.waits[0] <= 10.25


async def test_backoff_grows_and_stops_at_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_base_s=0.5, backoff_max_s=1.5)
    client = RecordingClient([RawResponse(503) for _ in range(10)], retry=policy)
    with pytest.raises(PanelError):
        await client.server(70)
    assert len(client.sent) == 4
    assert len(client.waits) == 3
    ceilings = [0.5, 1.0, 1.5]  # base * 2**(n-1), capped at backoff_max_s
    for wait, ceiling in zip(client.waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


async def test_locked_waits_grow_per_attempt() -> None:
    policy = RetryPolicy(locked_attempts=3, locked_wait_s=2.0)
    client = RecordingClient([RawResponse(423) for _ in range(10)], retry=policy)
    with pytest.raises(LockedError):
        await client.suspend_server(70)
    assert len(client.sent) == 3
    assert 2.0 <= client.waits[0] <= 4.0
    assert 4.0 <= client.waits[1] <= 6.0


async def test_deadline_stops_before_a_wait_that_would_overrun_it() -> None:
    # tenacity's stop_before_delay adds the upcoming wait to the (real, ~0) elapsed time, so a
    # Retry-After longer than the deadline stops at once, whatever the machine's speed.
    policy = RetryPolicy(deadline_s=5.0, retry_after_cap_s=30.0)
    client = RecordingClient([_rate_limited("20"), SERVER_OK], retry=policy)
    with pytest.raises(RateLimitedError) as caught:
        await client.server(70)
    assert caught.value.retry_after_s == 20.0
    assert len(client.sent) == 1
    assert client.waits == []


async def test_deadline_allows_waits_that_fit() -> None:
    policy = RetryPolicy(deadline_s=5.0)
    client = RecordingClient([_rate_limited("1"), SERVER_OK], retry=policy)
    server = await client.server(70)
    assert server.id == 70
    assert len(client.sent) == 2


async def test_create_is_never_retried_past_the_deadline_either() -> None:
    policy = RetryPolicy(deadline_s=5.0)
    client = RecordingClient([_rate_limited("20"), SERVER_OK], retry=policy)
    with pytest.raises(RateLimitedError):
        await client.create_server(CREATE_BODY)
    assert len(client.sent) == 1


async def test_unknown_exceptions_are_not_retried() -> None:
    client = RecordingClient([RuntimeError("bug"), SERVER_OK])
    with pytest.raises(RuntimeError, match="bug"):
        await client.server(70)
    assert len(client.sent) == 1


async def test_last_success_at_uses_the_injected_clock() -> None:
    client = RecordingClient([SERVER_OK])
    assert client.last_success_at is None
    await client.server(70)
    assert client.last_success_at == NOW


# -- endpoint results -----------------------------------------------------------------------------


async def test_delete_returns_true_then_false() -> None:
    client = RecordingClient([RawResponse(204), json_response(404, {"msg": "server not found"})])
    assert await client.delete_server(70) is True
    assert await client.delete_server(70) is False
    assert [(r.method, r.path) for r in client.sent] == [("DELETE", "/servers/70")] * 2


async def test_power_returns_the_queue_id_or_raises_decode_error() -> None:
    client = RecordingClient(
        [json_response(200, {"data": {"queueId": 431}}), json_response(200, {"data": {}})]
    )
    assert await client.power(70, "restart") == 431
    with pytest.raises(DecodeError, match="without a queueId"):
        await client.power(70, "restart")


async def test_connect_accepts_any_2xx_body() -> None:
    client = RecordingClient(
        [json_response(200, {"data": {"version": "6.1.0"}}), RawResponse(200, {}, b"OK")]
    )
    await client.connect()
    await client.connect()
    assert [r.path for r in client.sent] == ["/connect", "/connect"]


async def test_build_response_keeps_no_password() -> None:
    client = RecordingClient([sample_response(200, "build_server_200")])
    server = await client.build_server(70, BUILD_BODY)
    assert server.state == "queued"
    assert "FAKE-r00t-Pw" not in repr(server)


async def test_traffic_reads_monthly_rows() -> None:
    payload = {
        "data": {
            "monthly": [
                {
                    "month": 1,
                    "start": "2025-01-01 00:00:00",
                    "end": "2025-01-31 23:59:59",
                    "rx": 1024,
                    "tx": 2048,
                    "total": 3072,
                    "limit": 1000,
                    "blocks": [],
                }
            ]
        }
    }
    client = RecordingClient([json_response(200, payload)])
    (month,) = await client.traffic(70)
    assert (month.rx, month.tx, month.total, month.limit_gb) == (1024, 2048, 3072, 1000)


# -- pagination -----------------------------------------------------------------------------------


async def test_pagination_reads_every_page_and_stops_on_null_next_page_url() -> None:
    pages = [sample_response(200, f"servers_page{n}") for n in (1, 2, 3)]
    client = RecordingClient(pages)  # a fourth request would raise ScriptExhaustedError
    servers = [s async for s in client.servers()]
    assert [s.id for s in servers] == [61, 62, 63, 64, 70]
    assert all(isinstance(s, Server) for s in servers)
    assert [r.query for r in client.sent] == [
        (("results", "200"), ("page", str(n))) for n in (1, 2, 3)
    ]


async def test_pagination_stops_on_an_empty_page() -> None:
    empty = dict(sample("servers_page1"), data=[], next_page_url="https://x/?page=2")
    client = RecordingClient([json_response(200, empty)])
    assert [s async for s in client.servers()] == []
    assert len(client.sent) == 1


async def test_pagination_retries_a_failed_page_only() -> None:
    client = RecordingClient(
        [
            sample_response(200, "servers_page1"),
            RawResponse(502),
            sample_response(200, "servers_page2"),
            sample_response(200, "servers_page3"),
        ]
    )
    ids = [s.id async for s in client.servers()]
    assert ids == [61, 62, 63, 64, 70]
    assert [dict(r.query)["page"] for r in client.sent] == ["1", "2", "2", "3"]


async def test_group_capacity_sums_eligible_hypervisors() -> None:
    def row(
        hv_id: int, enabled: bool, prohibit: bool, mem_free: int, ipv4_free: int
    ) -> dict[str, Any]:
        return {
            "hypervisor": {
                "id": hv_id,
                "name": f"hv{hv_id}",
                "enabled": enabled,
                "prohibit": prohibit,
                "accept": True,
                "commissioned": 1,
            },
            "resources": {
                "servers": {"units": "", "max": 50, "allocated": 10, "free": 40, "percent": 20},
                "memory": {
                    "units": "MB",
                    "max": 65536,
                    "allocated": 0,
                    "free": mem_free,
                    "percent": 0,
                },
                "cpuCores": {"units": "", "max": 32, "allocated": 4, "free": 28, "percent": 12},
                "localStorage": {
                    "enabled": True,
                    "name": "local",
                    "storageType": 1,
                    "units": "GB",
                    "max": 1000,
                    "allocated": 100,
                    "free": 900,
                    "percent": 10,
                },
                "otherStorage": [],
                "network": {"total": {"ipv4": {"free": ipv4_free}}},
            },
        }

    page = dict(
        sample("groups_page1"),
        data=[
            row(1, True, False, 4096, 3),
            row(2, True, True, 8192, 9),
            row(3, True, False, 16384, 5),
        ],
    )
    client = RecordingClient([json_response(200, page)])
    capacity = await client.group_capacity(1)
    assert (capacity.hypervisors, capacity.memory_free_mb, capacity.ipv4_free) == (2, 20480, 8)
    assert capacity.largest_memory_free_mb == 16384
    assert client.sent[0].path == "/compute/hypervisors/groups/1/resources"


# -- concurrency and rate limit -------------------------------------------------------------------


class BlockingClient(VirtFusionClient):
    """`_send` parks on an event so the test can count how many calls are inside at once."""

    def __init__(self, release: asyncio.Event, **options: Any) -> None:
        super().__init__(rate_limit_per_s=1000.0, rng=random.Random(1), **options)
        self.release = release
        self.inside = 0
        self.max_inside = 0
        self.started = 0

    async def _send(self, request: HttpRequest) -> RawResponse:
        self.inside += 1
        self.started += 1
        self.max_inside = max(self.max_inside, self.inside)
        try:
            await self.release.wait()
        finally:
            self.inside -= 1
        return SERVER_OK


async def test_concurrency_cap() -> None:
    release = asyncio.Event()
    client = BlockingClient(release, concurrency=2)
    tasks = [asyncio.create_task(client.server(70)) for _ in range(5)]
    for _ in range(20):
        await asyncio.sleep(0)  # let every task reach the semaphore
    assert client.inside == 2
    assert client.started == 2
    release.set()
    servers = await asyncio.gather(*tasks)
    assert [s.id for s in servers] == [70] * 5
    assert client.max_inside == 2
    assert client.started == 5


async def test_slow_rate_limit_below_one_per_second_still_sends() -> None:
    # AsyncLimiter(max_rate < 1) used to refuse every acquire with ValueError
    client = RecordingClient([SERVER_OK], rate_limit_per_s=0.5)
    assert (await client.server(70)).id == 70


# -- policy unit checks ---------------------------------------------------------------------------


def test_should_retry_for_non_repeatable_requests() -> None:
    from bot.virtfusion import _sansio as sansio

    create = sansio.create_server(CREATE_BODY)
    policy = RetryPolicy()
    rate = RateLimitedError("r", method="POST", path="/servers", status=429)
    assert policy.should_retry(create, rate, 1) is True
    assert policy.should_retry(create, ConnectError("c", method="POST", path="/servers"), 1)
    assert not policy.should_retry(create, PanelTimeoutError("t", method="POST", path="/s"), 1)
    assert not policy.should_retry(create, PanelError("p", method="POST", path="/s", status=503), 1)
    assert not policy.should_retry(create, RuntimeError("x"), 1)
