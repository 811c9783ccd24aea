"""Modal submissions: the create form (or its JSON file) and the reject reason."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import AlreadyDecidedError, PlanError, UnknownRequestError
from bot.provisioning.plan import Plan
from bot.provisioning.request import ProvisionRequest
from bot.slack import ids
from bot.slack.blocks.result import result_modal
from bot.slack.deps import DownloadError, SlackDeps
from bot.slack.listeners.common import approval_required, problems_text, tell
from bot.slack.listeners.decisions import already_decided_text, authorize_decision
from bot.slack.listeners.home import publish_home
from bot.slack.parse import (
    FileRef,
    check_file_meta,
    parse_create_submission,
    parse_file_body,
    parse_metadata,
    problems_to_blocks,
    selected_file,
)
from bot.virtfusion import VirtFusionError

__all__ = ["register"]

logger = logging.getLogger("bot.slack.views")


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.CREATE_VIEW)
    async def handle_create_submission(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        started = time.monotonic()
        user = str(body["user"]["id"])
        channel = parse_metadata(str(view.get("private_metadata") or "")).get("c", "")
        values = view.get("state", {}).get("values", {})
        groups = await deps.groups_of(user)
        decision = deps.access.can_request(user, groups, channel)
        if not decision.allowed:
            await ack(response_action="errors", errors={_first_block(values): decision.reason})
            await deps.service.audit(user, "request.create", channel, "refused")
            return
        file = selected_file(values)
        if file is not None:
            parsed = await _read_file(deps, file)
            if isinstance(parsed, str):
                await ack(response_action="errors", errors={ids.B_FILE: parsed})
                return
            request = parsed
        else:
            result = parse_create_submission(values, deps.limits)
            if isinstance(result, dict):
                await ack(response_action="errors", errors=result)
                return
            request = result
        key = f"slack-view:{view['id']}"
        if await deps.service.find_by_key(key) is not None:
            await ack()  # a retried or double submission: the request already exists
            return
        planning = asyncio.ensure_future(deps.planner.plan(request))
        budget = max(0.2, deps.ack_budget_s - (time.monotonic() - started))
        done, _ = await asyncio.wait({planning}, timeout=budget)
        if not done:  # the panel is slow: answer Slack now, finish in the background
            await ack(
                response_action="update", view=result_modal("Checking the request with the panel…")
            )
            deps.background.spawn(
                _finish_slow_plan(deps, client, planning, request, key, user, channel, view["id"]),
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
            await ack(
                response_action="errors",
                errors={block: f"I could not check this with the panel ({error}); try again soon."},
            )
            return
        await ack()
        await _submit(deps, request, plan, key=key, user=user, channel=channel)

    @app.view(ids.REJECT_VIEW)
    async def handle_reject_reason(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user = str(body["user"]["id"])
        meta = parse_metadata(str(view.get("private_metadata") or ""))
        request_id, channel = int(meta.get("r", "0")), meta.get("c", "")
        reason_state = (
            view.get("state", {}).get("values", {}).get(ids.B_REASON, {}).get(ids.B_REASON, {})
        )
        reason = str(reason_state.get("value") or "").strip() or None
        deps.background.spawn(
            _reject(deps, client, request_id, channel, user, reason), name="reject"
        )


async def _read_file(deps: SlackDeps, file: FileRef) -> ProvisionRequest | str:
    """The attached request file, or what is wrong with it (for the file block)."""
    problem = check_file_meta(file, deps.limits.max_body_bytes)
    if problem is not None:
        return problem
    try:
        content, content_type = await deps.download(file.url_private_download)
    except DownloadError as error:
        return str(error)
    return parse_file_body(content, content_type, deps.limits)


async def _reject(
    deps: SlackDeps,
    client: AsyncWebClient,
    request_id: int,
    channel: str,
    user: str,
    reason: str | None,
) -> None:
    refusal = await authorize_decision(deps, request_id, user)
    try:
        if refusal is None:
            await deps.service.reject(request_id, actor=user, reason=reason)
            deps.kick()
            if not channel:  # rejected from the App Home tab: show the updated Home
                await publish_home(deps, client, user)
            return
        text = refusal
    except (AlreadyDecidedError, UnknownRequestError):
        text = await already_decided_text(deps, request_id)
    await tell(client, {"user": {"id": user}, "channel": {"id": channel}}, text)


async def _submit(
    deps: SlackDeps, request: ProvisionRequest, plan: Plan, *, key: str, user: str, channel: str
) -> None:
    await deps.service.submit(
        key=key,
        requester=user,
        source="slack",
        request=request,
        plan=plan,
        approval_required=approval_required(deps, plan),
        approval_ttl_s=deps.approval_ttl_s,
        slack_channel=channel,
    )
    deps.kick()  # the notifier posts the root message now, not at its next tick


async def _finish_slow_plan(
    deps: SlackDeps,
    client: AsyncWebClient,
    planning: asyncio.Future[Plan],
    request: ProvisionRequest,
    key: str,
    user: str,
    channel: str,
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
        await _show(
            client,
            view_id,
            f"I could not check this with the VirtFusion panel ({error}). Nothing was created; "
            "try `/vf create` again in a minute.",
        )
        return
    await _submit(deps, request, plan, key=key, user=user, channel=channel)
    await _show(client, view_id, f"Your request is planned and posted in <#{channel}>.")


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
