"""Cached Slack user-group membership; owns no client, only the `fetch` it is given.

`usergroups.users.list` is Tier 2 (about 20 calls a minute) and fails with
`plan_upgrade_required` on free workspaces, so members are cached per group, one fetch per
group runs at a time, and a failed fetch falls back to the last members seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackClientError

__all__ = ["GroupFetchError", "GroupMembership"]

logger = logging.getLogger(__name__)

_DEFAULT_FAILURE_RETRY_S = 30.0


class GroupFetchError(Exception):
    """A `fetch` could not read a group's members; raise it from wrappers for other failures."""


# What a failed fetch may raise: Slack API and transport errors, timeouts, or our own.
_FETCH_ERRORS = (GroupFetchError, SlackClientError, aiohttp.ClientError, TimeoutError)


@dataclass(frozen=True, slots=True)
class _Entry:
    members: frozenset[str]
    fresh_until: float
    known: bool  # False when no fetch has succeeded yet (members is then empty)


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
        if ttl_s < 0:
            raise ValueError("ttl_s must not be negative")
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._retry_s = (
            min(ttl_s, _DEFAULT_FAILURE_RETRY_S)
            if retry_after_failure_s is None
            else retry_after_failure_s
        )
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[frozenset[str]]] = {}

    async def groups_of(self, user_id: str, candidate_groups: Collection[str]) -> set[str]:
        """The groups among `candidate_groups` that list `user_id` as a member."""
        groups = list(dict.fromkeys(candidate_groups))
        if not groups:
            return set()
        members = await asyncio.gather(*(self.members_of(group) for group in groups))
        return {group for group, users in zip(groups, members, strict=True) if user_id in users}

    async def members_of(self, group_id: str) -> frozenset[str]:
        """The members of one group, from the cache while fresh, else from one shared fetch."""
        entry = self._cache.get(group_id)
        if entry is not None and self._clock() < entry.fresh_until:
            return entry.members
        task = self._inflight.get(group_id)
        if task is None:
            task = asyncio.create_task(self._refresh(group_id), name=f"usergroup-{group_id}")
            self._inflight[group_id] = task
            task.add_done_callback(self._forget_task)
        # Shielded: one caller giving up must not cancel the fetch others are waiting for.
        return await asyncio.shield(task)

    def _forget_task(self, task: asyncio.Task[frozenset[str]]) -> None:
        for group_id, running in list(self._inflight.items()):
            if running is task:
                del self._inflight[group_id]

    def clear(self) -> None:
        """Forget every cached group, so the next question fetches again."""
        self._cache.clear()

    async def _refresh(self, group_id: str) -> frozenset[str]:
        previous = self._cache.get(group_id)
        try:
            members = frozenset(await self._fetch(group_id))
        except _FETCH_ERRORS as exc:
            known = previous is not None and previous.known
            logger.warning(
                "could not read members of user group %s (%s: %s); using %s",
                group_id,
                type(exc).__name__,
                exc,
                "the last known members" if known else "no members",
            )
            kept = previous.members if previous is not None and known else frozenset()
            self._cache[group_id] = _Entry(kept, self._clock() + self._retry_s, known)
            return kept
        self._cache[group_id] = _Entry(members, self._clock() + self._ttl_s, True)
        return members
