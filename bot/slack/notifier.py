"""Turns outbox events into Slack messages, for requests, operations and the fleet alike.

A request gets a root message in its channel, thread replies for its milestones and a notice when
it ends; an operation that waits for approval gets a message with Approve/Reject, rewritten as it
is decided and carried out; the fleet's alerts and daily reports go to the alert channel, one
message each. The outbox hands over each stream's events a delivery round at a
time (`deliver`): a request's round becomes one thread reply listing every milestone since the
last, at most one rewrite of its root message, and its completion notice, posted first. Rounds
that carry approvals or completion notices start ahead of those that only report progress.

Events arrive in order per stream, so a restart continues the same thread. A crash between a
round's posts and the outbox's mark repeats that round's reply at most: root messages and
notices are remembered (`bot.slack.threads`) as soon as they are posted, and root and operation
messages are always rebuilt from the stored state, never from the events, so rewriting them
again is harmless.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning import events
from bot.provisioning.model import EventRecord, Operation, OperationKind, RequestRecord
from bot.provisioning.outbox import DeliveryDeferredError
from bot.slack.blocks.fleet import fleet_message
from bot.slack.blocks.lifetimes import expired_notice, expiry_milestone_text, expiry_warning
from bot.slack.blocks.notice import notice_blocks, notice_text
from bot.slack.blocks.operation import (
    operation_blocks,
    operation_milestone_text,
    operation_text,
)
from bot.slack.blocks.progress import (
    decision_text,
    lines_that_fit,
    milestone_text,
    progress_reply,
)
from bot.slack.blocks.request import request_blocks, request_text
from bot.slack.blocks.summary import RequestSummary, summarize
from bot.slack.deps import SlackDeps
from bot.slack.mrkdwn import escape
from bot.slack.pace import ChannelPace
from bot.slack.threads import SlackMessage, Thread

__all__ = ["PER_STREAM", "SUBSCRIBER", "SlackNotifier"]

logger = logging.getLogger("bot.slack.notifier")

SUBSCRIBER = "slack"

PER_STREAM = 100
"""Events of one request the outbox hands over per round (one reply lists them)."""

# Errors that mean "the bot cannot post in that channel" (it was never invited, or it is gone).
_CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}

# Events after which the root message's summary changes.
_ROOT_CHANGES = {
    events.REQUEST_APPROVED,
    events.REQUEST_REJECTED,
    events.REQUEST_EXPIRED,
    events.REQUEST_STARTED,
    events.REQUEST_CANCEL_REQUESTED,
    events.REQUEST_RETRIED,
    events.REQUEST_FINISHED,
    events.INSTANCE_BUILT,
    events.INSTANCE_FAILED,
    events.INSTANCE_FAILED_OVER,  # the server's group changed
    events.INSTANCE_DELETED,
    events.INSTANCE_CANCELLED,
    events.INSTANCE_WAITING,
    events.INSTANCE_EXPIRY_CHANGED,
    events.INSTANCE_EXPIRED,
}

# What a round carries, first to last: approvals to ask for, then endings, then progress.
_ASKS, _ENDINGS, _PROGRESS = 0, 1, 2

_SHOWN_MAX = 2000  # root messages whose last content is remembered, to skip same rewrites


class SlackNotifier:
    """The outbox subscriber that speaks Slack."""

    def __init__(
        self,
        client: AsyncWebClient,
        deps: SlackDeps,
        *,
        pacing_s: float = 1.0,
        notify_channel: str | None = None,
        alert_channel: str | None = None,
    ) -> None:
        self._client, self._pacing_s, self._notify_channel = client, pacing_s, notify_channel
        self._alert_channel = alert_channel
        self._told_alert_channel: set[str] = set()
        self._requests, self._deletes = deps.requests, deps.servers.deletes
        self._lifetimes = deps.servers.expiry.policy
        self._store, self._clock = deps.store, deps.clock
        self._posts: dict[str, ChannelPace] = {}
        self._rewrites: dict[str, ChannelPace] = {}
        self._told_cannot_post: set[tuple[Thread, int]] = set()
        self._shown: OrderedDict[tuple[str, str], str] = OrderedDict()

    @staticmethod
    def priority(batch: Sequence[EventRecord]) -> int:
        """Approvals first (a new request's root message, an operation's), then completion
        notices, then progress."""
        kinds = {event.kind for event in batch}
        if batch[0].operation_id is not None or events.REQUEST_SUBMITTED in kinds:
            return _ASKS
        return _ENDINGS if events.REQUEST_FINISHED in kinds else _PROGRESS

    async def deliver(self, batch: Sequence[EventRecord]) -> int:
        """Deliver one stream's round; returns how many of its events went out. Raises
        DeliveryDeferredError when Slack cannot take it yet."""
        head = batch[0]
        if head.operation_id is not None:
            await self._operation_round(head.operation_id, batch)
            return len(batch)
        if head.request_id is not None:
            return await self._request_round(head.request_id, batch)
        return await self._fleet_round(batch)

    # -- the fleet ------------------------------------------------------------------------------

    async def _fleet_round(self, batch: Sequence[EventRecord]) -> int:
        """Post each alert and report to the alert channel, in order; returns how many went
        out (a failure after the first leaves the rest for a later round)."""
        channel = self._alert_channel
        if not channel:
            return len(batch)  # no alert channel (any more): nothing to post
        for done, event in enumerate(batch):
            message = fleet_message(events.parse_event(event))
            if message is None:
                continue
            text, blocks = message
            try:
                await self._post(channel, text=text, blocks=blocks)
            except SlackApiError as error:
                if done:
                    return done
                reason = str(error.response.get("error", ""))
                if reason not in _CANNOT_POST:
                    raise
                if reason not in self._told_alert_channel:
                    self._told_alert_channel.add(reason)
                    logger.warning(
                        "cannot post alerts in VF_ALERT_CHANNEL %s (%s): invite vfbot there "
                        "with /invite @vfbot; they wait until it can",
                        channel,
                        reason,
                    )
                raise DeliveryDeferredError(f"cannot post in {channel}: {reason}") from error
        return len(batch)

    # -- requests -------------------------------------------------------------------------------

    async def _request_round(self, request_id: int, batch: Sequence[EventRecord]) -> int:
        record, instances = await self._requests.get(request_id)  # once per round
        if record.source != "slack" or not record.channel:
            return len(batch)  # CLI requests have no thread to post in
        summary = summarize(record, instances)
        message = await self._store.message(Thread.REQUEST, record.id)
        if message is None:
            message = await self._post_root(record, record.channel, summary)
        replies = [self._reply_text(event, record) for event in batch]
        taken = _events_one_reply_takes(replies)
        round_ = batch[:taken]
        lines = [line for line in replies[:taken] if line is not None]
        kinds = [event.kind for event in round_]
        ended = _last(kinds, events.REQUEST_FINISHED)
        if ended is not None:
            message = await self._notice_once(record, message, summary, kinds[:ended])
        after = kinds if ended is None else kinds[ended + 1 :]
        if events.REQUEST_RETRIED in after and message.notice_ts is not None:
            message = await self._forget_notice(record, message)  # the next ending gets one
        if lines:
            text, blocks = progress_reply(record.human_id, lines)
            await self._post(message.channel, text=text, blocks=blocks, thread_ts=message.ts)
        await self._lifetime_posts(record, message, round_)
        if _ROOT_CHANGES.intersection(kinds):
            await self._rewrite_root(message, summary)
        return taken

    async def _post_root(
        self, record: RequestRecord, channel: str, summary: RequestSummary
    ) -> SlackMessage:
        text, blocks = request_text(summary), request_blocks(summary, now=self._clock())
        ts = await self._post_or_defer(Thread.REQUEST, record, channel, text=text, blocks=blocks)
        message = SlackMessage(channel=channel, ts=ts)
        await self._store.save_message(Thread.REQUEST, record.id, message, self._clock())
        self._remember_shown(message, _digest(text, blocks))
        return message

    async def _rewrite_root(self, message: SlackMessage, summary: RequestSummary) -> None:
        """Rewrite the root message, unless it already shows exactly this."""
        text, blocks = request_text(summary), request_blocks(summary, now=self._clock())
        digest = _digest(text, blocks)
        if self._shown.get((message.channel, message.ts)) == digest:
            return
        try:
            await self._update(message, text=text, blocks=blocks)
        except SlackApiError as error:  # the next round rewrites it: no reason to say it twice
            logger.warning("could not rewrite %s: %s", message.ts, error.response.get("error"))
            return
        self._remember_shown(message, digest)

    def _remember_shown(self, message: SlackMessage, digest: str) -> None:
        key = (message.channel, message.ts)
        self._shown[key] = digest
        self._shown.move_to_end(key)
        while len(self._shown) > _SHOWN_MAX:
            self._shown.popitem(last=False)

    async def _notice_once(
        self,
        record: RequestRecord,
        message: SlackMessage,
        summary: RequestSummary,
        before: list[str],
    ) -> SlackMessage:
        """Post the completion notice, unless this ending's notice is out already (the round
        is being repeated after a crash); `before` are the kinds of the round's events before
        the ending, where a retry means an earlier notice was for an earlier ending."""
        if message.notice_ts is not None and events.REQUEST_RETRIED not in before:
            return message
        blocks = notice_blocks(summary, now=self._clock())
        text = notice_text(summary)
        if self._notify_channel and self._notify_channel != message.channel:
            ts = await self._post(self._notify_channel, urgent=True, text=text, blocks=blocks)
        else:
            ts = await self._post(
                message.channel,
                urgent=True,
                text=text,
                blocks=blocks,
                thread_ts=message.ts,
                reply_broadcast=True,
            )
        noticed = SlackMessage(channel=message.channel, ts=message.ts, notice_ts=ts)
        await self._store.save_message(Thread.REQUEST, record.id, noticed, self._clock())
        return noticed

    async def _forget_notice(self, record: RequestRecord, message: SlackMessage) -> SlackMessage:
        fresh = SlackMessage(channel=message.channel, ts=message.ts)
        await self._store.save_message(Thread.REQUEST, record.id, fresh, self._clock())
        return fresh

    async def _lifetime_posts(
        self, record: RequestRecord, message: SlackMessage, round_: Sequence[EventRecord]
    ) -> None:
        """An expiry reminder goes to the thread and to the requester's DMs, with its
        controls; an expiry's outcome to the channel (or VF_NOTIFY_CHANNEL) as a notice."""
        for event in round_:
            typed = events.parse_event(event)
            if isinstance(typed, events.InstanceExpiryWarning) and event.instance_id is not None:
                text, blocks = expiry_warning(
                    typed,
                    instance_id=event.instance_id,
                    human_id=record.human_id,
                    choices=self._lifetimes.extend_choices(),
                    now=self._clock(),
                )
                await self._post(message.channel, text=text, blocks=blocks, thread_ts=message.ts)
                requester = typed.requester or record.requester
                await self._direct(requester, text, blocks, about=record.human_id)
            elif isinstance(typed, events.InstanceExpired):
                notice = expired_notice(typed, record.human_id)
                channel = self._notify_channel or message.channel
                await self._post(channel, urgent=True, text=notice)

    async def _direct(
        self,
        user: str,
        text: str,
        blocks: list[dict[str, object]] | None = None,
        *,
        about: str = "",
    ) -> None:
        """A DM to `user` about `about` (`VF-n`); one Slack refuses is logged, never raised,
        and a command-line requester (`cli:…`) has no DMs."""
        if not user or user.startswith("cli:"):
            return
        try:
            opened = await self._client.conversations_open(users=user)
            channel = str(opened["channel"]["id"])
            if blocks is None:
                await self._post(channel, text=text)
            else:
                await self._post(channel, text=text, blocks=blocks)
        except SlackApiError as error:
            logger.warning("could not DM %s about %s: %s", user, about, error.response.get("error"))

    def _reply_text(self, event: EventRecord, record: RequestRecord) -> str | None:
        typed = events.parse_event(event)
        if isinstance(typed, events.InstanceExpiryWarning):
            return None  # posted on its own, with its controls
        if isinstance(typed, events.InstanceExpiryChanged | events.InstanceExpired):
            return expiry_milestone_text(typed)
        if isinstance(typed, events.InstanceEvent):
            return milestone_text(typed, human_id=record.human_id)
        return decision_text(typed) if typed is not None else None

    # -- operations -----------------------------------------------------------------------------

    async def _operation_round(self, operation_id: int, batch: Sequence[EventRecord]) -> None:
        operation = await self._deletes.get(operation_id)
        if not operation.channel:
            return  # asked from the command line: nothing to post
        text, blocks = operation_text(operation), operation_blocks(operation, now=self._clock())
        typed = [t for event in batch if (t := events.parse_event(event)) is not None]
        message = await self._store.message(Thread.OPERATION, operation.id)
        if message is None:
            # A rebuild is followed in a thread even when nobody had to approve it; a delete or
            # resize without approval was answered to the requester directly.
            followed = operation.kind is OperationKind.REBUILD
            asked = any(
                isinstance(t, events.OperationRequested) and (t.approval_required or followed)
                for t in typed
            )
            if not asked:
                return
            ts = await self._post_or_defer(
                Thread.OPERATION, operation, operation.channel, text=text, blocks=blocks
            )
            message = SlackMessage(channel=operation.channel, ts=ts)
            await self._store.save_message(Thread.OPERATION, operation.id, message, self._clock())
        else:
            await self._update(message, text=text, blocks=blocks)  # once for the whole round
        lines = [line for t in typed if (line := operation_milestone_text(operation, t))]
        if lines:  # a rebuild's milestones, in its thread, one reply a round
            reply, reply_blocks = progress_reply(operation.human_id, lines)
            await self._post(message.channel, text=reply, blocks=reply_blocks, thread_ts=message.ts)

    # -- Slack calls ----------------------------------------------------------------------------

    async def _post_or_defer(
        self,
        thread: Thread,
        subject: RequestRecord | Operation,
        channel: str,
        **message: object,
    ) -> str:
        """Post a root message; if the bot may not post there, tell the requester once and
        defer the event (it is retried, and goes out once the bot is invited)."""
        try:
            return await self._post(channel, urgent=True, **message)
        except SlackApiError as error:
            reason = str(error.response.get("error", ""))
            if reason not in _CANNOT_POST:
                raise
            await self._tell_requester(thread, subject, channel, reason)
            raise DeliveryDeferredError(
                f"cannot post {subject.human_id} in {channel}: {reason}"
            ) from error

    async def _tell_requester(
        self, thread: Thread, subject: RequestRecord | Operation, channel: str, reason: str
    ) -> None:
        """DM the requester once: the request is saved, and how to let the bot post."""
        if (thread, subject.id) in self._told_cannot_post:
            return
        self._told_cannot_post.add((thread, subject.id))
        if isinstance(subject, RequestRecord):
            what = f"your request *{subject.human_id}* ({escape(subject.project_name)})"
            status = f"`/vf status {subject.human_id}` shows where it is"
        else:
            what = f"your {subject.kind.value} *{subject.human_id}* ({escape(subject.target)})"
            status = "approvers also see it in the vfbot Home tab"
        text = (
            f"I saved {what}, but I cannot post in <#{channel}> ({reason}). Invite me there "
            f"with `/invite @vfbot`; it appears in the channel within a minute, nothing is lost. "
            f"Meanwhile {status}."
        )
        await self._direct(subject.requester, text, about=subject.human_id)

    async def _update(self, message: SlackMessage, **content: object) -> None:
        # Rewrites take turns of their own: they never hold up a post in the channel.
        await self._pace(self._rewrites, message.channel, urgent=False)
        await self._client.chat_update(channel=message.channel, ts=message.ts, **content)  # type: ignore[arg-type]  # Slack's kwargs

    async def _post(self, channel: str, *, urgent: bool = False, **kwargs: object) -> str:
        """Post when the channel's turn comes; `urgent` (approvals, notices) goes first."""
        await self._pace(self._posts, channel, urgent=urgent)
        response = await self._client.chat_postMessage(channel=channel, **kwargs)  # type: ignore[arg-type]  # Slack's kwargs
        return str(response["ts"])

    async def _pace(self, lanes: dict[str, ChannelPace], channel: str, *, urgent: bool) -> None:
        """About one message per second per channel (Slack's posting limit)."""
        if self._pacing_s <= 0:
            return
        lane = lanes.get(channel)
        if lane is None:
            lane = lanes[channel] = ChannelPace(self._pacing_s)
        await lane.turn(urgent=urgent)


def _digest(text: str, blocks: list[dict[str, object]]) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()


def _events_one_reply_takes(replies: list[str | None]) -> int:
    """How many events, from the first, one thread reply can report (`replies` holds each
    event's line, None for events without one); the rest wait for the next round."""
    lines = [line for line in replies if line is not None]
    fit = lines_that_fit(lines)
    if fit >= len(lines):
        return len(replies)
    seen = 0
    for index, line in enumerate(replies):
        seen += line is not None
        if seen == fit:
            return index + 1
    return len(replies)  # pragma: no cover  # fit < len(lines): the loop returns


def _last(kinds: list[str], kind: str) -> int | None:
    """Where `kind` last occurs in `kinds`, or None."""
    for index in range(len(kinds) - 1, -1, -1):
        if kinds[index] == kind:
            return index
    return None
