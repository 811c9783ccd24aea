"""`/vf create`: the modal (or inline JSON), its submission, and the request it submits.

Every path goes through `Intake` (parse → plan → submit), keyed so that a retried delivery or a
double submission stores one request. Slack is answered before anything slow: a submitted form
is checked on its own (mistakes go back onto its fields), then a "Planning…" view is pushed over
it while the policy, the attached file and the panel are consulted; that view then shows where
the request was posted, or what to fix, with a button back to the form as the user left it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
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
        plan = await deps.intake.plan(request, admin=call.actor.admin)
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
    """The create modal was submitted: check the form's own fields and answer Slack at once
    (their errors, or a "Planning…" view pushed over the form); the rest happens after."""
    deps = deps_of(context)
    values = view.get("state", {}).get("values", {})
    what: FileRef | ProvisionRequest | None = selected_file(values)
    if isinstance(what, FileRef):  # its name and size are in the payload: check them now
        problem = check_file_meta(what, deps.intake.limits.max_body_bytes)
        if problem is not None:
            await ack(response_action="errors", errors={ids.B_FILE: problem})
            return
    if what is None:  # the form alone: its mistakes go back onto its fields
        result = await asyncio.to_thread(parse_create_submission, values, deps.intake.limits)
        if isinstance(result, dict):
            await ack(response_action="errors", errors=result)
            return
        what = result
    # Slack gives the pushed view its id only after this answer; ours names it meanwhile.
    external_id = f"{ids.CREATE_VIEW}-{uuid.uuid4().hex}"
    await ack(
        response_action="push",
        view=result_modal(_PLANNING, external_id=external_id, final=False),
    )
    submission = _Submission(
        deps=deps,
        client=client,
        user=str(body["user"]["id"]),
        channel=parse_metadata(str(view.get("private_metadata") or "")).get("c", ""),
        key=f"slack-view:{view['id']}",
        external_id=external_id,
    )
    deps.background.spawn(submission.run(what), name="create plan")


_PLANNING = "Checking the request with the panel… This takes a few seconds."


@dataclass(frozen=True)
class _Submission:
    """A submitted create form, after Slack's answer: who, from where, and the pushed view
    that shows how it went."""

    deps: SlackDeps
    client: AsyncWebClient
    user: str
    channel: str
    key: str  # the form's view: one request per form, however often it is submitted
    external_id: str

    async def run(self, what: FileRef | ProvisionRequest) -> None:
        """Check who may, read the attached file, plan and submit; show how it went."""
        deps = self.deps
        actor = await deps.actor(self.user)
        decision = deps.policy.can_request(self.user, actor.groups, self.channel)
        if not decision.allowed:
            await deps.refused(self.user, "request.create", self.channel, decision.reason)
            await self._show(decision.reason, final=True)
            return
        if isinstance(what, FileRef):
            parsed = await _read_file(deps, what)
            if isinstance(parsed, str):
                text = f"Nothing was created: the attached file cannot be used.\n{parsed}"
                await self._show(text, final=False)
                return
            what = parsed
        request = what
        existing = await deps.requests.find_by_key(self.key)
        if existing is not None:  # submitted again after it went through
            await self._show(self._posted(existing.human_id), final=True)
            return
        try:
            plan = await deps.intake.plan(request, admin=actor.admin)
        except PlanError as error:
            text = (
                "The panel cannot carry out this request; nothing was created.\n"
                + problems_text(error.problems, limit=2400)
                + "\nGo back to the form to fix it."
            )
            await self._show(text, final=False)
            return
        except VirtFusionError as error:
            await self._show(f"Nothing was created. {panel_error_text(error)}", final=False)
            return
        origin = Origin(key=self.key, requester=self.user, source="slack", channel=self.channel)
        record, _ = await _submit(deps, request, plan, origin)
        await self._show(self._posted(record.human_id), final=True)

    def _posted(self, human_id: str) -> str:
        return f"Your request *{human_id}* is planned and posted in <#{self.channel}>."

    async def _show(self, text: str, *, final: bool) -> None:
        """Replace the pushed "Planning…" view (Slack may still be opening it: a view it
        does not know yet is asked for again, briefly)."""
        view = result_modal(text, external_id=self.external_id, final=final)
        for wait_s in (*_VIEW_WAITS_S, None):
            try:
                await self.client.views_update(external_id=self.external_id, view=view)
                return
            except SlackApiError as error:
                reason = error.response.get("error")
                if reason != "not_found" or wait_s is None:  # closed by the user meanwhile
                    logger.info("create result not shown: %s", reason)
                    return
            await asyncio.sleep(wait_s)


# Slack opens the pushed view as it reads our answer, before our first update can arrive; these
# waits only cover a slow Slack.
_VIEW_WAITS_S = (0.1, 0.3, 1.0)


async def _read_file(deps: SlackDeps, file: FileRef) -> ProvisionRequest | str:
    """The attached request file (its name and size already checked), or what is wrong with
    it."""
    try:
        content, content_type = await deps.download(file.url_private_download)
    except DownloadError as error:
        return str(error)
    return await asyncio.to_thread(parse_file_body, content, content_type, deps.intake.limits)
