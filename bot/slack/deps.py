"""What the Slack listeners need, bundled once by the composition root and handed to every
listener through Bolt's context (`deps_of(context)`)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

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

__all__ = [
    "CONTEXT_KEY",
    "Background",
    "Download",
    "DownloadError",
    "SlackDeps",
    "audit_refusal",
    "deps_of",
]

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
        await audit_refusal(self.moves, actor, action, target, reason)

    async def first_delivery(self, body: Mapping[str, Any]) -> bool:
        """Whether this command, click or submission is seen for the first time.

        A signed request stays valid for five minutes, so whoever captures one could replay a
        confirmed restart; Slack itself never sends a `trigger_id` twice. Remembered in the
        database (across replicas) with Slack's event ids; asked after `ack()`.
        """
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str) or not trigger:
            return True
        key = "trigger:" + hashlib.sha256(trigger.encode()).hexdigest()[:40]
        if await self.store.remember_event(key, self.clock()):
            return True
        logger.info("ignoring a repeated Slack interaction (the same trigger_id again)")
        return False


# Audit columns are bounded (200 characters for the target on PostgreSQL): what a user typed is
# cut, so a refusal is always written.
_AUDIT_TARGET_MAX: Final = 200
_AUDIT_NAME_MAX: Final = 100


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def audit_refusal(moves: Moves, actor: str, action: str, target: str, reason: str) -> None:
    """Write one refusal to the audit log, whatever the lengths of what the user typed."""
    await moves.audit(
        _cut(actor, _AUDIT_NAME_MAX),
        _cut(action, _AUDIT_NAME_MAX),
        _cut(target, _AUDIT_TARGET_MAX),
        "refused",
        {"reason": _cut(reason, 2000)},
    )


def deps_of(context: Mapping[str, Any]) -> SlackDeps:
    """The deps the middleware put in Bolt's context."""
    deps = context[CONTEXT_KEY]
    if not isinstance(deps, SlackDeps):
        raise TypeError("the vfbot middleware did not run")
    return deps
