import asyncio
import logging

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.membership import GroupFetchError, GroupMembership

OPS = "S0OPS0001"
DEVS = "S0DEVS002"
EMPTY = "S0EMPTY03"
BOB = "U0BOB0002"
DAVE = "U0DAVE004"
EVE = "U0EVE0005"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeFetch:
    """Records every fetch; answers from `members`, or raises the queued error for a group."""

    def __init__(self) -> None:
        self.members = {OPS: {BOB, DAVE}, DEVS: {EVE, DAVE}, EMPTY: set[str]()}
        self.errors: dict[str, Exception] = {}
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, group_id: str) -> set[str]:
        self.calls.append(group_id)
        if self.gate is not None:
            await self.gate.wait()
        error = self.errors.pop(group_id, None)
        if error is not None:
            raise error
        return set(self.members[group_id])


async def settle() -> None:
    """Let started tasks run until they all wait (on the gate); no real time passes."""
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fetch() -> FakeFetch:
    return FakeFetch()


@pytest.fixture
def membership(fetch: FakeFetch, clock: FakeClock) -> GroupMembership:
    return GroupMembership(fetch, ttl_s=300, clock=clock)


def slack_error(code: str) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,  # the response is only read, never paged
        http_verb="POST",
        api_url="https://slack.com/api/usergroups.users.list",
        req_args={},
        data={"ok": False, "error": code},
        headers={},
        status_code=200,
    )
    # slack_sdk leaves SlackApiError.__init__ unannotated.
    return SlackApiError("The request to the Slack API failed.", response)  # type: ignore[no-untyped-call]


async def test_groups_of_returns_the_groups_listing_the_user(
    membership: GroupMembership, fetch: FakeFetch
) -> None:
    assert await membership.groups_of(DAVE, [OPS, DEVS, EMPTY]) == {OPS, DEVS}
    assert await membership.groups_of(BOB, [OPS, DEVS]) == {OPS}
    assert await membership.groups_of(EVE, [OPS]) == set()
    assert await membership.groups_of(EVE, []) == set()
    assert sorted(fetch.calls) == sorted([OPS, DEVS, EMPTY])


async def test_duplicate_candidates_fetch_once(
    membership: GroupMembership, fetch: FakeFetch
) -> None:
    assert await membership.groups_of(BOB, (OPS, OPS, OPS)) == {OPS}
    assert fetch.calls == [OPS]


async def test_members_are_cached_for_the_ttl(
    membership: GroupMembership, fetch: FakeFetch, clock: FakeClock
) -> None:
    await membership.groups_of(BOB, [OPS])
    fetch.members[OPS] = {EVE}
    clock.now += 299.9
    assert await membership.groups_of(BOB, [OPS]) == {OPS}  # still cached
    assert fetch.calls == [OPS]
    clock.now += 0.1
    assert await membership.groups_of(BOB, [OPS]) == set()  # refetched
    assert await membership.groups_of(EVE, [OPS]) == {OPS}
    assert fetch.calls == [OPS, OPS]


async def test_zero_ttl_always_fetches(fetch: FakeFetch, clock: FakeClock) -> None:
    membership = GroupMembership(fetch, ttl_s=0, clock=clock)
    await membership.groups_of(BOB, [OPS])
    await membership.groups_of(BOB, [OPS])
    assert fetch.calls == [OPS, OPS]


async def test_clear_forgets_the_cache(membership: GroupMembership, fetch: FakeFetch) -> None:
    await membership.groups_of(BOB, [OPS])
    membership.clear()
    await membership.groups_of(BOB, [OPS])
    assert fetch.calls == [OPS, OPS]


async def test_concurrent_questions_share_one_fetch_per_group(
    membership: GroupMembership, fetch: FakeFetch
) -> None:
    fetch.gate = asyncio.Event()
    waiting = [
        asyncio.create_task(membership.groups_of(user, [OPS, DEVS])) for user in (BOB, DAVE, EVE)
    ]
    await settle()
    assert sorted(fetch.calls) == [DEVS, OPS]
    fetch.gate.set()
    assert await asyncio.gather(*waiting) == [{OPS}, {OPS, DEVS}, {DEVS}]
    assert sorted(fetch.calls) == [DEVS, OPS]


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
    membership: GroupMembership, fetch: FakeFetch
) -> None:
    fetch.gate = asyncio.Event()
    first = asyncio.create_task(membership.groups_of(BOB, [OPS]))
    second = asyncio.create_task(membership.groups_of(DAVE, [OPS]))
    await settle()
    assert fetch.calls == [OPS]
    first.cancel()
    fetch.gate.set()
    assert await second == {OPS}
    with pytest.raises(asyncio.CancelledError):
        await first
    assert fetch.calls == [OPS]


@pytest.mark.parametrize(
    "error",
    [
        slack_error("ratelimited"),
        aiohttp.ClientConnectionError("connection reset"),
        TimeoutError(),
        GroupFetchError("no_such_subteam"),
    ],
    ids=["slack-api", "transport", "timeout", "wrapper"],
)
async def test_failure_keeps_the_last_known_members(
    membership: GroupMembership,
    fetch: FakeFetch,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    assert await membership.groups_of(BOB, [OPS]) == {OPS}
    clock.now += 301
    fetch.errors[OPS] = error
    with caplog.at_level(logging.WARNING, logger="bot.slack.membership"):
        assert await membership.groups_of(BOB, [OPS]) == {OPS}
    assert fetch.calls == [OPS, OPS]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert OPS in record.getMessage() and "the last known members" in record.getMessage()


async def test_failure_without_known_members_means_no_members(
    membership: GroupMembership,
    fetch: FakeFetch,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetch.errors[OPS] = slack_error("plan_upgrade_required")
    with caplog.at_level(logging.WARNING, logger="bot.slack.membership"):
        assert await membership.groups_of(BOB, [OPS, DEVS]) == set()
        assert await membership.groups_of(DAVE, [OPS, DEVS]) == {DEVS}  # other groups work
    assert "no members" in caplog.records[0].getMessage()
    assert "plan_upgrade_required" in caplog.records[0].getMessage()
    assert fetch.calls.count(OPS) == 1  # the failure is remembered for a while
    clock.now += 30
    assert await membership.groups_of(BOB, [OPS]) == {OPS}  # retried after 30 s
    assert fetch.calls.count(OPS) == 2


async def test_retry_after_failure_follows_the_setting(fetch: FakeFetch, clock: FakeClock) -> None:
    membership = GroupMembership(fetch, ttl_s=300, clock=clock, retry_after_failure_s=5)
    await membership.groups_of(BOB, [OPS])
    clock.now += 300
    fetch.errors[OPS] = GroupFetchError("down")
    assert await membership.groups_of(BOB, [OPS]) == {OPS}
    clock.now += 4.9
    fetch.members[OPS] = set()
    assert await membership.groups_of(BOB, [OPS]) == {OPS}  # stale members, not retried yet
    clock.now += 0.1
    assert await membership.groups_of(BOB, [OPS]) == set()
    assert fetch.calls == [OPS, OPS, OPS]


async def test_failure_retry_defaults_to_the_ttl_when_shorter(
    fetch: FakeFetch, clock: FakeClock
) -> None:
    membership = GroupMembership(fetch, ttl_s=10, clock=clock)
    fetch.errors[OPS] = GroupFetchError("down")
    assert await membership.groups_of(BOB, [OPS]) == set()
    clock.now += 10
    assert await membership.groups_of(BOB, [OPS]) == {OPS}


async def test_unexpected_errors_propagate(membership: GroupMembership, fetch: FakeFetch) -> None:
    fetch.errors[OPS] = KeyError("bug")
    with pytest.raises(KeyError):
        await membership.groups_of(BOB, [OPS])
    assert await membership.groups_of(BOB, [OPS]) == {OPS}  # nothing cached from the bug


def test_negative_ttl_is_refused(fetch: FakeFetch, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        GroupMembership(fetch, ttl_s=-1, clock=clock)
