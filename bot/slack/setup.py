"""Getting connected to Slack: what `vfbot serve` still needs, the Web API client, and the
Socket Mode connection (which fails fast on a token Slack refuses)."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack.policy import AccessPolicy

__all__ = ["SlackSetupError", "connect_socket", "make_slack_client", "slack_problems"]

logger = logging.getLogger("bot.slack.setup")

# apps.connections.open errors that no retry fixes: the app-level token itself is wrong.
_APP_TOKEN_REJECTED = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "not_allowed_token_type",
        "missing_scope",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
    }
)


class SlackSetupError(Exception):
    """Slack credentials are missing or refused; the message says what to set."""


def slack_problems(settings: Settings) -> list[str]:
    """What `vfbot serve` still needs, one line per missing or bad setting."""
    problems: list[str] = []
    if settings.slack_bot_token is None:
        problems.append("SLACK_BOT_TOKEN is not set (the xoxb- token from OAuth & Permissions)")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        problems.append(
            "set SLACK_APP_TOKEN (xapp-, Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
        )
    app_token = settings.slack_app_token
    if app_token is not None and not app_token.get_secret_value().startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    try:
        policy = AccessPolicy.from_settings(settings)
    except ValueError as error:
        problems.append(f"VF_REQUIRE_APPROVAL {error}")
    else:
        problems.extend(policy.validate())
    return problems


def make_slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: retries connection errors, 429 (Retry-After) and 500/503."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


async def connect_socket(
    client: AsyncWebClient, handler: AsyncSocketModeHandler, app_token: str
) -> None:
    """Open the Socket Mode connection; a token Slack refuses fails fast.

    Bolt's client retries a failed connect forever (every `ping_interval`), so a wrong
    SLACK_APP_TOKEN would hang start-up with nothing but log lines. The first
    `apps.connections.open` is made here instead: a rejected token raises `SlackSetupError`;
    any other failure is left to the client's own retrying.
    """
    try:
        opened = await client.apps_connections_open(app_token=app_token)
    except SlackApiError as error:
        code = str(error.response.get("error"))
        if code in _APP_TOKEN_REJECTED:
            needed = error.response.get("needed")
            detail = f"; it needs the {needed} scope" if needed else ""
            raise SlackSetupError(
                f"Slack rejected SLACK_APP_TOKEN ({code}{detail}): use the app-level token "
                "(xapp-) with the connections:write scope, from Basic Information → "
                "App-Level Tokens"
            ) from None
        logger.warning("apps.connections.open failed (%s); Bolt will retry", code)
    except (aiohttp.ClientError, TimeoutError) as error:
        logger.warning(
            "apps.connections.open failed (%s); Bolt will retry", error.__class__.__name__
        )
    else:
        handler.client.wss_uri = str(opened["url"])
    await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in Bolt
