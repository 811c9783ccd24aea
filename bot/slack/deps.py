"""What the Slack listeners need, bundled once by the composition root."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime

from bot.provisioning.operations import OperationsService
from bot.provisioning.planner import Planner
from bot.provisioning.request import RequestLimits
from bot.provisioning.service import ProvisioningService
from bot.slack.choices import ChoicesCache
from bot.slack.membership import GroupMembership
from bot.slack.policy import AccessPolicy, ApprovalRule, is_group_id

__all__ = ["Background", "Download", "DownloadError", "SlackDeps"]

logger = logging.getLogger("bot.slack")

Download = Callable[[str], Awaitable[tuple[bytes, str]]]


class DownloadError(Exception):
    """A file attached in Slack could not be fetched; the message is for the user."""


class Background:
    """Work started after `ack()`: tracked, so shutdown (and tests) can wait for it to finish."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[object, object, None], *, name: str) -> None:
        task = asyncio.ensure_future(self._guard(work, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(work: Coroutine[object, object, None], name: str) -> None:
        try:
            await work
        except Exception:  # an error edge: a listener's follow-up must not die silently
            reference = uuid.uuid4().hex[:8]
            logger.exception("slack %s failed (reference %s)", name, reference)

    async def idle(self) -> None:
        """Wait until every spawned task (and what they spawn) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


@dataclass
class SlackDeps:
    """Services and policies shared by every listener."""

    service: ProvisioningService
    ops: OperationsService
    planner: Planner
    limits: RequestLimits
    access: AccessPolicy
    approval: ApprovalRule
    approval_ttl_s: float
    membership: GroupMembership
    choices: ChoicesCache
    download: Download
    clock: Callable[[], datetime]
    kick: Callable[[], None] = lambda: None
    background: Background = field(default_factory=Background)
    # Slack waits 3 s for the answer to a modal submission: everything before ack() (reading an
    # attached file, planning with the panel) must fit in this, or the answer is deferred.
    ack_budget_s: float = 2.5

    async def groups_of(self, user_id: str) -> set[str]:
        """The configured user groups this user belongs to (cached membership)."""
        groups = [g for g in (*self.access.requesters, *self.access.approver_groups)]
        return await self.membership.groups_of(user_id, [g for g in groups if is_group_id(g)])
