"""`/vf`: acknowledge at once, then route the subcommand."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import PlanError
from bot.provisioning.request import RequestError, parse_request
from bot.slack import ids
from bot.slack.blocks.help import help_text, unknown_command_text
from bot.slack.blocks.modal import create_modal
from bot.slack.deps import SlackDeps
from bot.slack.listeners import ops
from bot.slack.listeners.common import approval_required, problems_text, refuse
from bot.slack.parse import build_metadata, inline_request, split_command, suggest
from bot.virtfusion import VirtFusionError

__all__ = ["register"]

logger = logging.getLogger("bot.slack.commands")


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.command(ids.COMMAND)
    async def handle_vf(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        subcommand, rest = split_command(str(body.get("text") or ""))
        if subcommand == "help":
            await ack(text=help_text())
            return
        if subcommand != "create" and subcommand not in ops.DAY2:
            await ack(text=unknown_command_text(subcommand, suggest(subcommand)))
            return
        await ack()
        if subcommand == "create":
            deps.background.spawn(_create(deps, body, client, respond, rest), name="/vf create")
        else:
            deps.background.spawn(
                ops.dispatch(deps, body, client, respond, subcommand, rest),
                name=f"/vf {subcommand}",
            )


async def _create(
    deps: SlackDeps,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond,
    rest: str,
) -> None:
    user, channel = str(body["user_id"]), str(body["channel_id"])
    groups = await deps.groups_of(user)
    decision = deps.access.can_request(user, groups, channel)
    if not decision.allowed:
        await refuse(deps, respond, user, "request.create", channel, decision.reason)
        return
    inline = inline_request(rest)
    if inline is not None:
        await _create_inline(deps, body, respond, inline)
        return
    metadata = build_metadata(c=channel)
    choices = deps.choices.peek()
    opened = await client.views_open(
        trigger_id=str(body["trigger_id"]),
        view=create_modal(choices, private_metadata=metadata),
    )
    if choices is not None:
        return
    view = opened["view"]
    try:
        loaded = await deps.choices.get()
        form = create_modal(loaded, private_metadata=metadata)
    except VirtFusionError as error:
        logger.warning("could not load panel choices for the create modal: %s", error)
        form = create_modal(
            None,
            private_metadata=metadata,
            error=(
                "I could not load the choices from the VirtFusion panel right now. You can "
                "still attach a request JSON file below, or try `/vf create` again in a minute."
            ),
        )
    try:
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)
    except SlackApiError as error:  # the user closed it, or it changed meanwhile
        logger.info("create modal not updated: %s", error.response.get("error"))


async def _create_inline(
    deps: SlackDeps, body: dict[str, Any], respond: AsyncRespond, text: str
) -> None:
    """`/vf create {json}`: the same request, planned and submitted without a modal."""
    user, channel = str(body["user_id"]), str(body["channel_id"])
    try:
        request = parse_request(text, deps.limits)
    except RequestError as error:
        await respond(
            text="That request is not valid; nothing was created.\n"
            + problems_text(error.problems),
            response_type="ephemeral",
        )
        return
    try:
        plan = await deps.planner.plan(request)
    except PlanError as error:
        await respond(
            text="The panel cannot carry out that request; nothing was created.\n"
            + problems_text(error.problems),
            response_type="ephemeral",
        )
        return
    except VirtFusionError as error:
        await respond(
            text=f"I could not reach the VirtFusion panel to check the request ({error}). "
            "Nothing was created; try again in a minute.",
            response_type="ephemeral",
        )
        return
    record, created = await deps.service.submit(
        key=f"slack-command:{body.get('trigger_id')}",
        requester=user,
        source="slack",
        request=request,
        plan=plan,
        approval_required=approval_required(deps, plan),
        approval_ttl_s=deps.approval_ttl_s,
        slack_channel=channel,
    )
    deps.kick()
    if created:
        await respond(
            text=f"Request *{record.human_id}* is posted in this channel.",
            response_type="ephemeral",
        )
