"""Cached Slack user-group membership; owns no client, only the `fetch` it is given.

`usergroups.users.list` is Tier 2 (about 20 calls a minute) and fails with
`plan_upgrade_required` on free workspaces, so members are cached per group, one fetch per
group runs at a time, and a failed fetch falls back to the last members seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

import aiohttp
from slack_sdk.errors import SlackClientError

from bot.slack.cache import TtlCache

__all__ = ["GroupFetchError", "GroupMembership"]

logger = logging.getLogger(__name__)

_DEFAULT_FAILURE_RETRY_S = 30.0


class GroupFetchError(Exception):
    """A `fetch` could not read a group's members; raise it from wrappers for other failures."""


# What a failed fetch may raise: Slack API and transport errors, timeouts, or our own.
_FETCH_ERRORS = (GroupFetchError, SlackClientError, aiohttp.ClientError, TimeoutError)


class GroupMembership:
    """Which of some user groups a user belongs to, from cached `fetch(group_id)` results.

    Members are cached `ttl_s` seconds per group by the injected `clock` (seconds, monotonic).
    After a failure the last known members (or none) are used, and the fetch is retried after
    `retry_after_failure_s` (default: the smaller of `ttl_s` and 30 s).
    """

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[set[str]]],
        *,
        ttl_s: float,
        clock: Callable[[], float],
        retry_after_failure_s: float | None = None,
    ) -> None:
        async def load(group_id: str) -> frozenset[str]:
            return frozenset(await fetch(group_id))

        retry_s = (
            min(ttl_s, _DEFAULT_FAILURE_RETRY_S)
            if retry_after_failure_s is None
            else retry_after_failure_s
        )
        self._cache: TtlCache[str, frozenset[str]] = TtlCache(
            load,
            ttl_s=ttl_s,
            clock=clock,
            fallback=_last_known,
            errors=_FETCH_ERRORS,
            retry_s=retry_s,
        )

    async def groups_of(self, user_id: str, candidate_groups: Collection[str]) -> set[str]:
        """The groups among `candidate_groups` that list `user_id` as a member."""
        groups = list(dict.fromkeys(candidate_groups))
        if not groups:
            return set()
        members = await asyncio.gather(*(self.members_of(group) for group in groups))
        return {group for group, users in zip(groups, members, strict=True) if user_id in users}

    async def members_of(self, group_id: str) -> frozenset[str]:
        """The members of one group, from the cache while fresh, else from one shared fetch."""
        return await self._cache.get(group_id)

    def clear(self) -> None:
        """Forget every cached group, so the next question fetches again."""
        self._cache.clear()


def _last_known(group_id: str, error: Exception, last: frozenset[str] | None) -> frozenset[str]:
    logger.warning(
        "could not read members of user group %s (%s: %s); using %s",
        group_id,
        type(error).__name__,
        error,
        "the last known members" if last else "no members",
    )
    return last or frozenset()
