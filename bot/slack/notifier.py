"""Turns outbox events into Slack messages, for requests and operations alike.

A request gets a root message in its channel, thread replies for its milestones and a notice when
it ends; an operation that waits for approval gets a message with Approve/Reject, rewritten as it
is decided and carried out. Events arrive in order per stream, so a restart continues the same
thread and posts nothing twice. Root and operation messages are always rebuilt from the stored
state, never from the event, so updating them again is harmless.
"""

from __future__ import annotations

import logging

from aiolimiter import AsyncLimiter
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning import events
from bot.provisioning.model import EventRecord, Operation, OperationKind, RequestRecord
from bot.provisioning.outbox import DeliveryDeferredError
from bot.slack.blocks.notice import notice_blocks, notice_text
from bot.slack.blocks.operation import (
    operation_blocks,
    operation_milestone_text,
    operation_text,
)
from bot.slack.blocks.progress import decision_text, milestone_text
from bot.slack.blocks.request import request_blocks, request_text
from bot.slack.blocks.summary import RequestSummary, summarize
from bot.slack.deps import SlackDeps
from bot.slack.mrkdwn import escape
from bot.slack.threads import SlackMessage, Thread

__all__ = ["SUBSCRIBER", "SlackNotifier"]

logger = logging.getLogger("bot.slack.notifier")

SUBSCRIBER = "slack"

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
    events.INSTANCE_DELETED,
    events.INSTANCE_CANCELLED,
    events.INSTANCE_WAITING,
}


class SlackNotifier:
    """The outbox subscriber that speaks Slack."""

    def __init__(
        self,
        client: AsyncWebClient,
        deps: SlackDeps,
        *,
        pacing_s: float = 1.0,
        notify_channel: str | None = None,
    ) -> None:
        self._client, self._pacing_s, self._notify_channel = client, pacing_s, notify_channel
        self._requests, self._deletes = deps.requests, deps.servers.deletes
        self._store, self._clock = deps.store, deps.clock
        self._limiters: dict[str, AsyncLimiter] = {}
        self._told_cannot_post: set[tuple[Thread, int]] = set()

    async def handle(self, event: EventRecord) -> None:
        """Deliver one event; raises DeliveryDeferredError when Slack cannot take it yet."""
        if event.operation_id is not None:
            await self._operation_event(event.operation_id, event)
        elif event.request_id is not None:
            await self._request_event(event.request_id, event)

    # -- requests -------------------------------------------------------------------------------

    async def _request_event(self, request_id: int, event: EventRecord) -> None:
        record, instances = await self._requests.get(request_id)
        if record.source != "slack" or not record.channel:
            return  # CLI requests have no thread to post in
        summary = summarize(record, instances)
        message = await self._store.message(Thread.REQUEST, record.id)
        if message is None:
            message = await self._post_root(record, record.channel, summary)
        reply = self._reply_text(event, record)
        if reply is not None:
            await self._post(message.channel, text=reply, thread_ts=message.ts)
        if event.kind in _ROOT_CHANGES:
            await self._update(
                message,
                text=request_text(summary),
                blocks=request_blocks(summary, now=self._clock()),
            )
        if event.kind == events.REQUEST_FINISHED:
            await self._post_notice(record, message, summary)

    async def _post_root(
        self, record: RequestRecord, channel: str, summary: RequestSummary
    ) -> SlackMessage:
        text, blocks = request_text(summary), request_blocks(summary, now=self._clock())
        ts = await self._post_or_defer(Thread.REQUEST, record, channel, text=text, blocks=blocks)
        message = SlackMessage(channel=channel, ts=ts)
        await self._store.save_message(Thread.REQUEST, record.id, message, self._clock())
        return message

    async def _post_notice(
        self, record: RequestRecord, message: SlackMessage, summary: RequestSummary
    ) -> None:
        blocks = notice_blocks(summary, now=self._clock())
        text = notice_text(summary)
        if self._notify_channel and self._notify_channel != message.channel:
            ts = await self._post(self._notify_channel, text=text, blocks=blocks)
        else:
            ts = await self._post(
                message.channel,
                text=text,
                blocks=blocks,
                thread_ts=message.ts,
                reply_broadcast=True,
            )
        noticed = SlackMessage(channel=message.channel, ts=message.ts, notice_ts=ts)
        await self._store.save_message(Thread.REQUEST, record.id, noticed, self._clock())

    def _reply_text(self, event: EventRecord, record: RequestRecord) -> str | None:
        typed = events.parse_event(event)
        if isinstance(typed, events.InstanceEvent):
            return milestone_text(typed, human_id=record.human_id)
        return decision_text(typed) if typed is not None else None

    # -- operations -----------------------------------------------------------------------------

    async def _operation_event(self, operation_id: int, event: EventRecord) -> None:
        operation = await self._deletes.get(operation_id)
        if not operation.channel:
            return  # asked from the command line: nothing to post
        text, blocks = operation_text(operation), operation_blocks(operation, now=self._clock())
        message = await self._store.message(Thread.OPERATION, operation.id)
        typed = events.parse_event(event)
        if message is not None:
            reply = operation_milestone_text(operation, typed) if typed is not None else None
            if reply is not None:  # a rebuild's milestones go in its thread
                await self._post(message.channel, text=reply, thread_ts=message.ts)
            await self._update(message, text=text, blocks=blocks)
            return
        # A rebuild is followed in a thread even when nobody had to approve it; a delete or
        # resize without approval was answered to the requester directly.
        followed = operation.kind is OperationKind.REBUILD
        if not isinstance(typed, events.OperationRequested) or not (
            typed.approval_required or followed
        ):
            return
        ts = await self._post_or_defer(
            Thread.OPERATION, operation, operation.channel, text=text, blocks=blocks
        )
        message = SlackMessage(channel=operation.channel, ts=ts)
        await self._store.save_message(Thread.OPERATION, operation.id, message, self._clock())

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
            return await self._post(channel, **message)
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
        try:
            opened = await self._client.conversations_open(users=subject.requester)
            await self._post(str(opened["channel"]["id"]), text=text)
        except SlackApiError as error:
            logger.warning(
                "could not DM %s about %s: %s",
                subject.requester,
                subject.human_id,
                error.response.get("error"),
            )

    async def _update(self, message: SlackMessage, **content: object) -> None:
        await self._pace(message.channel)
        await self._client.chat_update(channel=message.channel, ts=message.ts, **content)  # type: ignore[arg-type]  # Slack's kwargs

    async def _post(self, channel: str, **kwargs: object) -> str:
        await self._pace(channel)
        response = await self._client.chat_postMessage(channel=channel, **kwargs)  # type: ignore[arg-type]  # Slack's kwargs
        return str(response["ts"])

    async def _pace(self, channel: str) -> None:
        """About one message per second per channel (Slack's posting limit)."""
        if self._pacing_s <= 0:
            return
        limiter = self._limiters.get(channel)
        if limiter is None:
            limiter = self._limiters[channel] = AsyncLimiter(1, self._pacing_s)
        await limiter.acquire()
