"""Turns outbox events into Slack messages: the root message, thread replies and the notice.

Every Slack post of a request goes through here, in event order, so a restart continues the same
thread and posts nothing twice. The root message is always rebuilt from the stored state, never
from the event, so updating it again is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning import events
from bot.provisioning.outbox import DeliveryDeferredError
from bot.provisioning.service import ProvisioningService
from bot.slack.blocks.notice import notice_blocks, notice_text
from bot.slack.blocks.progress import milestone_text
from bot.slack.blocks.request import request_blocks, request_text
from bot.slack.blocks.summary import RequestSummary, summarize
from bot.slack.mrkdwn import escape, mention
from bot.store import EventRecord, RequestRecord

__all__ = ["SUBSCRIBER", "ChannelPacer", "SlackNotifier"]

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
}


class ChannelPacer:
    """About one message per second per channel (Slack's posting limit), never blocking acks."""

    def __init__(
        self,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        if self._interval_s <= 0:
            return
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            delay = self._next.get(channel, 0.0) - self._clock()
            if delay > 0:
                await self._sleep(delay)
            self._next[channel] = self._clock() + self._interval_s


class SlackNotifier:
    """The outbox subscriber that speaks Slack."""

    def __init__(
        self,
        client: AsyncWebClient,
        service: ProvisioningService,
        *,
        clock: Callable[[], datetime],
        pacer: ChannelPacer,
        notify_channel: str | None = None,
    ) -> None:
        self._client = client
        self._service = service
        self._clock = clock
        self._pacer = pacer
        self._notify_channel = notify_channel
        self._told_cannot_post: set[int] = set()

    async def handle(self, event: EventRecord) -> None:
        """Deliver one event; raises DeliveryDeferredError when Slack cannot take it yet."""
        record, instances = await self._service.get(event.request_id)
        if record.source != "slack" or not record.slack_channel:
            return  # CLI requests have no thread to post in
        summary = summarize(record, instances)
        if record.slack_ts is None:
            record = await self._post_root(record, summary)
        channel, root_ts = record.slack_channel, record.slack_ts
        if channel is None or root_ts is None:
            return
        reply = self._reply_text(event, record)
        if reply is not None:
            await self._post(channel, text=reply, thread_ts=root_ts)
        if event.kind in _ROOT_CHANGES:
            await self._update_root(channel, root_ts, summary)
        if event.kind == events.REQUEST_FINISHED:
            await self._post_notice(record, summary)

    # -- pieces ---------------------------------------------------------------------------------

    async def _post_root(self, record: RequestRecord, summary: RequestSummary) -> RequestRecord:
        channel = record.slack_channel or ""
        try:
            response = await self._post(
                channel,
                text=request_text(summary),
                blocks=request_blocks(summary, now=self._clock()),
            )
        except SlackApiError as error:
            reason = str(error.response.get("error", ""))
            if reason in _CANNOT_POST:
                await self._tell_requester(record, reason)
                raise DeliveryDeferredError(
                    f"cannot post {record.human_id} in {channel}: {reason}"
                ) from error
            raise
        ts = str(response["ts"])
        await self._service.set_slack_message(record.id, channel=channel, ts=ts)
        record, _ = await self._service.get(record.id)
        return record

    async def _tell_requester(self, record: RequestRecord, reason: str) -> None:
        """DM the requester once: the request is saved, and how to let the bot post."""
        if record.id in self._told_cannot_post:
            return
        self._told_cannot_post.add(record.id)
        channel = record.slack_channel or ""
        text = (
            f"I saved your request *{record.human_id}* ({escape(record.project_name)}), but I "
            f"cannot post in <#{channel}> ({reason}). Invite me there with `/invite @vfbot`; "
            f"the request appears in the channel within a minute, nothing is lost. "
            f"Meanwhile `/vf status {record.human_id}` shows where it is."
        )
        try:
            opened = await self._client.conversations_open(users=record.requester)
            dm = str(opened["channel"]["id"])
            await self._post(dm, text=text)
        except SlackApiError as error:
            logger.warning(
                "could not DM %s about %s: %s",
                record.requester,
                record.human_id,
                error.response.get("error"),
            )

    async def _update_root(self, channel: str, ts: str, summary: RequestSummary) -> None:
        await self._pacer.wait(channel)
        await self._client.chat_update(
            channel=channel,
            ts=ts,
            text=request_text(summary),
            blocks=request_blocks(summary, now=self._clock()),
        )

    async def _post_notice(self, record: RequestRecord, summary: RequestSummary) -> None:
        blocks = notice_blocks(summary, now=self._clock())
        text = notice_text(summary)
        if self._notify_channel and self._notify_channel != record.slack_channel:
            response = await self._post(self._notify_channel, text=text, blocks=blocks)
        else:
            response = await self._post(
                record.slack_channel or "",
                text=text,
                blocks=blocks,
                thread_ts=record.slack_ts,
                reply_broadcast=True,
            )
        await self._service.set_slack_message(
            record.id,
            channel=record.slack_channel or "",
            ts=record.slack_ts or "",
            notice_ts=str(response["ts"]),
        )

    def _reply_text(self, event: EventRecord, record: RequestRecord) -> str | None:
        payload = event.payload
        by = mention(str(payload.get("by", "")))
        kind = event.kind
        if kind in events.MILESTONES:
            return milestone_text(kind, payload, human_id=record.human_id)
        if kind == events.REQUEST_APPROVED:
            return f":white_check_mark: Approved by {by}. Creating the servers now."
        if kind == events.REQUEST_REJECTED:
            reason = str(payload.get("reason") or "")
            return f":no_entry: Rejected by {by}" + (f": {escape(reason)}" if reason else ".")
        if kind == events.REQUEST_EXPIRED:
            return (
                ":hourglass: Expired: nobody approved it in time. Nothing was created; "
                "run `/vf create` again if it is still needed."
            )
        if kind == events.REQUEST_CANCEL_REQUESTED:
            deleting = (
                " Servers that exist will be deleted." if payload.get("delete_servers") else ""
            )
            return f":octagonal_sign: Cancelled by {by}; nothing new will be created.{deleting}"
        if kind == events.REQUEST_RETRIED:
            return f":repeat: {by} is retrying the failed servers."
        return None

    async def _post(self, channel: str, **kwargs: object) -> dict[str, object]:
        await self._pacer.wait(channel)
        response = await self._client.chat_postMessage(channel=channel, **kwargs)  # type: ignore[arg-type]
        return dict(response.data) if isinstance(response.data, dict) else {}
