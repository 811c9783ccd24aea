"""What the Slack listeners need, bundled once by the composition root and handed to every
listener through Bolt's context (`deps_of(context)`)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.provisioning.intake import Intake
from bot.provisioning.plan import Plan
from bot.provisioning.ports import DatabaseUnavailableError
from bot.provisioning.requests import RequestService
from bot.provisioning.servers import Servers
from bot.provisioning.transitions import Moves
from bot.slack.choices import ChoicesCache
from bot.slack.membership import GroupMembership
from bot.slack.policy import AccessPolicy, Actor, is_group_id
from bot.slack.threads import SlackStore

__all__ = ["CONTEXT_KEY", "Background", "Download", "DownloadError", "SlackDeps", "deps_of"]

logger = logging.getLogger("bot.slack")

CONTEXT_KEY = "vfbot"
"""Where the deps sit in Bolt's per-request context."""

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
        except DatabaseUnavailableError as error:  # the cause in one line, no traceback
            logger.error("slack %s: %s", name, error)
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

    requests: RequestService
    intake: Intake
    servers: Servers
    moves: Moves
    policy: AccessPolicy
    approval_ttl_s: float
    membership: GroupMembership
    choices: ChoicesCache
    store: SlackStore
    download: Download
    clock: Callable[[], datetime]
    kick: Callable[[], None] = lambda: None
    background: Background = field(default_factory=Background)
    # Slack waits 3 s for the answer to a modal submission: everything before ack() (reading an
    # attached file, planning with the panel) must fit in this, or the answer is deferred.
    ack_budget_s: float = 2.5

    async def actor(self, user: str) -> Actor:
        """`user` with their roles (user-group membership comes from the cache)."""
        policy = self.policy
        candidates = [g for g in (*policy.requesters, *policy.approver_groups) if is_group_id(g)]
        groups = await self.membership.groups_of(user, candidates)
        return policy.actor(user, groups)

    def needs_approval(self, plan: Plan) -> bool:
        """Whether VF_REQUIRE_APPROVAL asks for an approval of this plan."""
        return self.policy.approval.required(
            servers=len(plan.servers), memory_mb=plan.total_memory_mb, disk_gb=plan.total_disk_gb
        )

    async def refused(self, actor: str, action: str, target: str, reason: str) -> None:
        """Audit a refusal (the caller tells the user)."""
        await self.moves.audit(actor, action, target, "refused", {"reason": reason})


def deps_of(context: Mapping[str, Any]) -> SlackDeps:
    """The deps the middleware put in Bolt's context."""
    deps = context[CONTEXT_KEY]
    if not isinstance(deps, SlackDeps):
        raise TypeError("the vfbot middleware did not run")
    return deps
