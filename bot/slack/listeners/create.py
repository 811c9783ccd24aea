"""`/vf create`: the modal (or inline JSON), its submission, and the request it submits.

Every path goes through `Intake` (parse → plan → submit), keyed so that a retried delivery or a
double submission stores one request. The create modal's answer must reach Slack within 3 s:
planning that takes longer is finished in the background and shown by updating the view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import PlanError
from bot.provisioning.intake import Origin
from bot.provisioning.plan import Plan
from bot.provisioning.request import ProvisionRequest, RequestError
from bot.slack import ids
from bot.slack.blocks.modal import create_modal
from bot.slack.blocks.result import result_modal
from bot.slack.deps import DownloadError, SlackDeps, deps_of
from bot.slack.listeners.common import Invocation
from bot.slack.messages import panel_error_text, problems_text
from bot.slack.parse import (
    FileRef,
    build_metadata,
    check_file_meta,
    inline_request,
    parse_create_submission,
    parse_file_body,
    parse_metadata,
    problems_to_blocks,
    selected_file,
)
from bot.virtfusion import VirtFusionError

__all__ = ["handle_create", "handle_create_submission"]

logger = logging.getLogger("bot.slack.create")


async def handle_create(call: Invocation) -> None:
    """Open the create modal, or plan and submit the inline JSON of `/vf create {…}`."""
    inline = await asyncio.to_thread(inline_request, call.rest)
    if inline is not None:
        await _create_inline(call, inline)
        return
    deps = call.deps
    metadata = build_metadata(c=call.channel)
    choices = deps.choices.peek()
    opened = await call.client.views_open(
        trigger_id=str(call.body["trigger_id"]),
        view=create_modal(choices, private_metadata=metadata),
    )
    if choices is not None:
        return
    view = opened["view"]
    try:
        form = create_modal(await deps.choices.get(), private_metadata=metadata)
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
        await call.client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)
    except SlackApiError as error:  # the user closed it, or it changed meanwhile
        logger.info("create modal not updated: %s", error.response.get("error"))


async def _create_inline(call: Invocation, text: str) -> None:
    """`/vf create {json}`: the same request, planned and submitted without a modal."""
    deps = call.deps
    try:
        # Off the event loop: a 1 MiB request takes long enough to delay everyone's acks.
        request = await asyncio.to_thread(deps.intake.parse, text)
    except RequestError as error:
        await call.reply(
            "That request is not valid; nothing was created.\n" + problems_text(error.problems)
        )
        return
    try:
        plan = await deps.intake.plan(request)
    except PlanError as error:
        await call.reply(
            "The panel cannot carry out that request; nothing was created.\n"
            + problems_text(error.problems)
        )
        return
    except VirtFusionError as error:
        await call.reply(f"Nothing was created. {panel_error_text(error)}")
        return
    origin = Origin(
        key=f"slack-command:{call.body.get('trigger_id')}",
        requester=call.actor.user,
        source="slack",
        channel=call.channel,
    )
    record, created = await _submit(deps, request, plan, origin)
    if created:
        await call.reply(f"Request *{record.human_id}* is posted in this channel.")


async def _submit(
    deps: SlackDeps, request: ProvisionRequest, plan: Plan, origin: Origin
) -> tuple[Any, bool]:
    submitted = await deps.intake.submit(
        request,
        plan,
        origin,
        approval_required=deps.needs_approval(plan),
        approval_ttl_s=deps.approval_ttl_s,
    )
    deps.kick()  # the notifier posts the root message now, not at its next tick
    return submitted


async def handle_create_submission(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient, context: Any
) -> None:
    """The create modal was submitted: check, plan within Slack's 3 s, answer, submit."""
    deps = deps_of(context)
    started = time.monotonic()
    user = str(body["user"]["id"])
    channel = parse_metadata(str(view.get("private_metadata") or "")).get("c", "")
    values = view.get("state", {}).get("values", {})
    actor = await deps.actor(user)
    decision = deps.policy.can_request(user, actor.groups, channel)
    if not decision.allowed:
        await ack(response_action="errors", errors={_first_block(values): decision.reason})
        await deps.refused(user, "request.create", channel, decision.reason)
        return
    file = selected_file(values)
    if file is not None:
        parsed = await _read_file(deps, file)
        if isinstance(parsed, str):
            await ack(response_action="errors", errors={ids.B_FILE: parsed})
            return
        request = parsed
    else:
        result = await asyncio.to_thread(parse_create_submission, values, deps.intake.limits)
        if isinstance(result, dict):
            await ack(response_action="errors", errors=result)
            return
        request = result
    origin = Origin(key=f"slack-view:{view['id']}", requester=user, source="slack", channel=channel)
    if await deps.requests.find_by_key(origin.key) is not None:
        await ack()  # a retried or double submission: the request already exists
        return
    planning = asyncio.ensure_future(deps.intake.plan(request))
    budget = max(0.2, deps.ack_budget_s - (time.monotonic() - started))
    done, _ = await asyncio.wait({planning}, timeout=budget)
    if not done:  # the panel is slow: answer Slack now, finish in the background
        await ack(
            response_action="update", view=result_modal("Checking the request with the panel…")
        )
        deps.background.spawn(
            _finish_slow_plan(deps, client, planning, request, origin, view["id"]),
            name="create plan",
        )
        return
    try:
        plan = planning.result()
    except PlanError as error:
        field_errors = (
            {ids.B_FILE: problems_text(error.problems, limit=1900)}
            if file is not None
            else problems_to_blocks(error.problems, present=set(values))
        )
        await ack(response_action="errors", errors=field_errors)
        return
    except VirtFusionError as error:
        block = ids.B_FILE if file is not None else _first_block(values)
        await ack(response_action="errors", errors={block: panel_error_text(error)})
        return
    await ack()
    await _submit(deps, request, plan, origin)


async def _read_file(deps: SlackDeps, file: FileRef) -> ProvisionRequest | str:
    """The attached request file, or what is wrong with it (for the file block)."""
    problem = check_file_meta(file, deps.intake.limits.max_body_bytes)
    if problem is not None:
        return problem
    try:
        content, content_type = await deps.download(file.url_private_download)
    except DownloadError as error:
        return str(error)
    return await asyncio.to_thread(parse_file_body, content, content_type, deps.intake.limits)


async def _finish_slow_plan(
    deps: SlackDeps,
    client: AsyncWebClient,
    planning: asyncio.Future[Plan],
    request: ProvisionRequest,
    origin: Origin,
    view_id: str,
) -> None:
    try:
        plan = await planning
    except PlanError as error:
        text = (
            "The panel cannot carry out this request; nothing was created.\n"
            + problems_text(error.problems, limit=2400)
            + "\nFix the request and run `/vf create` again."
        )
        await _show(client, view_id, text)
        return
    except VirtFusionError as error:
        text = f"Nothing was created. {panel_error_text(error)}"
        await _show(client, view_id, text)
        return
    await _submit(deps, request, plan, origin)
    await _show(client, view_id, f"Your request is planned and posted in <#{origin.channel}>.")


async def _show(client: AsyncWebClient, view_id: str, text: str) -> None:
    try:
        await client.views_update(view_id=view_id, view=result_modal(text))
    except SlackApiError as error:  # closed by the user meanwhile
        logger.info("result modal not shown: %s", error.response.get("error"))


def _first_block(values: dict[str, Any]) -> str:
    for block in ids.CREATE_INPUT_BLOCKS:
        if block in values:
            return block
    return ids.B_FILE
