"""`/vf`: acknowledge at once, then run the subcommand the registry names."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.provisioning.errors import ProvisioningError
from bot.provisioning.ports import DatabaseUnavailableError
from bot.slack import commands
from bot.slack.blocks.help import unknown_command_text
from bot.slack.deps import SlackDeps, deps_of
from bot.slack.listeners.common import Invocation, Reply, replier
from bot.slack.messages import database_error_text, error_text, panel_error_text
from bot.slack.parse import split_command, suggest
from bot.virtfusion import VirtFusionError

__all__ = ["handle_vf"]

logger = logging.getLogger("bot.slack.commands")


async def handle_vf(
    ack: AsyncAck,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond,
    context: Any,
) -> None:
    """Answer help and unknown words in the ack itself; run everything else after it."""
    subcommand, rest = split_command(str(body.get("text") or ""))
    command = commands.find(subcommand)
    if command is None:
        await ack(text=unknown_command_text(subcommand, suggest(subcommand, commands.names())))
        return
    if command.handler is None:
        await ack(text=commands.help_message(), blocks=commands.help_message_blocks())
        return
    await ack()
    deps = deps_of(context)
    work = _run(deps, command, body, client, respond, rest)
    deps.background.spawn(work, name=f"/vf {command.name}")


async def _run(
    deps: SlackDeps,
    command: commands.Command,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond,
    rest: str,
) -> None:
    reply = replier(client, body, respond)
    try:
        await _checked(deps, command, body, client, reply, rest)
    except ProvisioningError as error:
        await reply(error_text(error))
    except VirtFusionError as error:
        await reply(panel_error_text(error))
    except DatabaseUnavailableError as error:
        logger.error("/vf %s: %s", command.name, error)
        await reply(database_error_text(error))


async def _checked(
    deps: SlackDeps,
    command: commands.Command,
    body: dict[str, Any],
    client: AsyncWebClient,
    reply: Reply,
    rest: str,
) -> None:
    """Once per trigger_id, and only if the policy allows it here: run the subcommand."""
    if not await deps.first_delivery(body):
        return
    user, channel = str(body["user_id"]), str(body["channel_id"])
    actor = await deps.actor(user)
    call = Invocation(deps, body, client, actor, rest, reply)
    decision = deps.policy.can_use(actor, channel, creating=command.name == "create")
    if decision.allowed and command.admins_only is not None:
        decision = deps.policy.admins_only(actor, command.admins_only)
    if not decision.allowed:
        target = channel if command.admins_only is None else rest or command.name
        await call.refuse(command.action, target, decision.reason)
        return
    if command.handler is not None:  # (None: answered in the ack)
        await command.handler(call)
