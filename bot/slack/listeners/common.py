"""What listeners share: answering only the user who acted, and one subcommand invocation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.deps import SlackDeps, deps_of
from bot.slack.parse import parse_metadata
from bot.slack.policy import Actor, Decision

__all__ = [
    "Invocation",
    "Reply",
    "Work",
    "acked",
    "allowed",
    "allowed_here",
    "channel_of",
    "refuse",
    "replier",
    "tell",
]

logger = logging.getLogger("bot.slack")

Reply = Callable[..., Awaitable[None]]
"""`await reply(text, blocks=None)`: answer only the user who acted."""


async def tell(
    client: AsyncWebClient,
    body: dict[str, Any],
    text: str,
    *,
    respond: AsyncRespond | None = None,
    blocks: list[dict[str, object]] | None = None,
) -> None:
    """Answer only the user who acted: via response_url when there is one, else an ephemeral
    message in the channel, else a direct message (e.g. a click in the App Home tab)."""
    user = str((body.get("user") or {}).get("id") or body.get("user_id") or "")
    channel = str((body.get("channel") or {}).get("id") or body.get("channel_id") or "")
    try:
        if respond is not None and respond.response_url:
            # Bolt's `respond` opens a connection per call; this one reuses the Web API's pool.
            hook = AsyncWebhookClient(respond.response_url, session=client.session)
            answer = await hook.send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
            if answer.status_code != 200:
                logger.info("could not answer %s: response_url said %s", user, answer.status_code)
        elif channel:
            await client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
        elif user:
            await client.chat_postMessage(channel=user, text=text, blocks=blocks)
    except SlackApiError as error:
        logger.info("could not answer %s: %s", user, error.response.get("error"))


Work = Callable[
    [SlackDeps, dict[str, Any], AsyncWebClient, AsyncRespond | None],
    Coroutine[object, object, None],
]
"""What a click or submission does after it is acknowledged."""


def acked(
    name: str,
    work: Work,
    *,
    answer: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
) -> Callable[..., Awaitable[None]]:
    """A Bolt listener that acknowledges at once, then runs `work` in the background, once per
    click or submission (a replayed one is dropped). When `answer(body)` gives the arguments of
    an acknowledgement (a modal submission answered with another view), that is all it does."""

    async def once(
        deps: SlackDeps, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond | None
    ) -> None:
        if await deps.first_delivery(body):
            await work(deps, body, client, respond)

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond | None,
        context: Any,
    ) -> None:
        reply = answer(body) if answer is not None else None
        if reply is not None:
            await ack(**reply)
            return
        await ack()
        deps = deps_of(context)
        deps.background.spawn(once(deps, body, client, respond), name=name)

    return listener


def channel_of(body: dict[str, Any]) -> str | None:
    """The conversation a click or submission was made in; None for the Home tab, which is in
    none. A modal answers for the channel its command was typed in (its private_metadata)."""
    view = body.get("view") or {}
    if view.get("type") == "modal":
        try:
            return parse_metadata(str(view.get("private_metadata") or "")).get("c", "")
        except ValueError:
            return ""  # not ours: no channel is allowed for it
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    if channel:
        return str(channel)
    return None if view.get("type") == "home" else ""


async def allowed_here(
    deps: SlackDeps,
    client: AsyncWebClient,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    actor: Actor,
    action: str,
) -> bool:
    """Whether `actor` may still use vfbot where they clicked (the settings may have changed
    since the button or dialog was shown); if not, they are told why and it is audited."""
    where = channel_of(body)
    answer_to = {"user": {"id": actor.user}, "channel": {"id": where or ""}, **body}
    decision = deps.policy.can_use(actor, where)
    return await allowed(deps, client, answer_to, respond, decision, (action, where or "home"))


async def allowed(
    deps: SlackDeps,
    client: AsyncWebClient,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    decision: Decision,
    refusal: tuple[str, str],
) -> bool:
    """Whether `decision` allows; if not, the user who clicked is told why and the refusal is
    audited (`refusal` is (action, target))."""
    if decision.allowed:
        return True
    await refuse(deps, client, body, respond, (*refusal, decision.reason))
    return False


async def refuse(
    deps: SlackDeps,
    client: AsyncWebClient,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    refusal: tuple[str, str, str],
) -> None:
    """Tell the user who clicked why not, and audit it; `refusal` is (action, target, reason)."""
    action, target, reason = refusal
    await tell(client, body, reason, respond=respond)
    await deps.refused(str(body["user"]["id"]), action, target, reason)


def replier(client: AsyncWebClient, body: dict[str, Any], respond: AsyncRespond | None) -> Reply:
    """A `Reply` bound to this request's user (see `tell`)."""

    async def reply(text: str, blocks: list[dict[str, object]] | None = None) -> None:
        await tell(client, body, text, respond=respond, blocks=blocks)

    return reply


@dataclass(frozen=True)
class Invocation:
    """One `/vf` subcommand being run, after `ack()`: who, with which words, and how to answer."""

    deps: SlackDeps
    body: dict[str, Any]
    client: AsyncWebClient
    actor: Actor
    rest: str  # everything after the subcommand, as typed
    reply: Reply

    @property
    def args(self) -> list[str]:
        """The words after the subcommand."""
        return self.rest.split()

    @property
    def channel(self) -> str:
        return str(self.body.get("channel_id") or "")

    async def refuse(self, action: str, target: str, reason: str) -> None:
        """Tell the user why not (and who may), and audit the refusal."""
        await self.reply(reason)
        await self.deps.refused(self.actor.user, action, target, reason)
