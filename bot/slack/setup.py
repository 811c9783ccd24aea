"""Getting connected to Slack: what `vfbot serve` still needs, the Web API client, and the
Socket Mode connection (which fails fast on a token Slack refuses)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

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

__all__ = [
    "START_WAITS_S",
    "SlackSetupError",
    "SlackUnreachableError",
    "check_bot_token",
    "connect_socket",
    "make_slack_client",
    "slack_problems",
]

logger = logging.getLogger("bot.slack.setup")

# Errors of auth.test or apps.connections.open that no retry fixes: the token itself is wrong.
_TOKEN_REJECTED = frozenset(
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

START_WAITS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)
"""Waits between attempts to reach Slack at start-up: about two minutes in all, then
`SlackUnreachableError` (a supervisor restarts the process)."""

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class SlackSetupError(Exception):
    """Slack credentials are missing or refused; the message says what to set."""


class SlackUnreachableError(Exception):
    """Slack did not answer at start-up, however often it was asked; the message says where
    vfbot looked and what to check."""


def slack_problems(settings: Settings) -> list[str]:
    """What `vfbot serve` still needs, one line per missing or bad setting."""
    problems: list[str] = []
    if settings.slack_bot_token is None:  # `load_settings(require_slack=True)` says it first
        problems.append("SLACK_BOT_TOKEN is not set (the xoxb- token from OAuth & Permissions)")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        problems.append(
            "set SLACK_APP_TOKEN (xapp-, Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
        )
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


async def _until_answered(
    call: Callable[[], Awaitable[T]],
    *,
    method: str,
    token: str,
    fix: str,
    api_url: str,
    sleep: Sleep,
    waits_s: Sequence[float],
) -> T:
    """`call` until Slack answers: a refused token raises `SlackSetupError` at once (`fix` says
    what to do); Slack unreachable or failing is logged and retried after each of `waits_s`."""
    for wait_s in (*waits_s, None):
        try:
            return await call()
        except SlackApiError as error:
            code = str(error.response.get("error"))
            if code in _TOKEN_REJECTED:
                needed = error.response.get("needed")
                detail = f"; it needs the {needed} scope" if needed else ""
                raise SlackSetupError(f"Slack rejected {token} ({code}{detail}): {fix}") from None
            problem = f"Slack answered {method} with {code} (HTTP {error.response.status_code})"
        except (aiohttp.ClientError, TimeoutError) as error:
            problem = f"cannot reach Slack at {api_url} ({error.__class__.__name__})"
        if wait_s is None:
            raise SlackUnreachableError(
                f"{problem}. Check the network, DNS, any proxy, and SLACK_API_URL; "
                "vfbot gave up after about two minutes."
            )
        logger.warning("%s; trying again in %.0f s", problem, wait_s)
        await sleep(wait_s)
    raise AssertionError("unreachable: the last wait raises")  # pragma: no cover


async def check_bot_token(
    client: AsyncWebClient,
    *,
    sleep: Sleep = asyncio.sleep,
    waits_s: Sequence[float] = START_WAITS_S,
) -> None:
    """`auth.test` with SLACK_BOT_TOKEN, waiting (bounded) for Slack to be reachable.

    Raises `SlackSetupError` when Slack refuses the token, `SlackUnreachableError` when Slack
    never answered.
    """
    await _until_answered(
        client.auth_test,
        method="auth.test",
        token="SLACK_BOT_TOKEN",
        fix="use the bot token (xoxb-) from OAuth & Permissions; reinstall the app if it was "
        "revoked",
        api_url=client.base_url,
        sleep=sleep,
        waits_s=waits_s,
    )


async def connect_socket(
    client: AsyncWebClient,
    handler: AsyncSocketModeHandler,
    app_token: str,
    *,
    sleep: Sleep = asyncio.sleep,
    waits_s: Sequence[float] = START_WAITS_S,
) -> None:
    """Open the Socket Mode connection; a token Slack refuses fails fast.

    Bolt's client retries a failed connect forever (every `ping_interval`, with a traceback
    each time), so a wrong SLACK_APP_TOKEN would hang start-up with nothing but log lines. The
    `apps.connections.open` is made here instead, and waited for like `check_bot_token`.
    """
    opened = await _until_answered(
        lambda: client.apps_connections_open(app_token=app_token),
        method="apps.connections.open",
        token="SLACK_APP_TOKEN",
        fix="use the app-level token (xapp-) with the connections:write scope, from Basic "
        "Information → App-Level Tokens",
        api_url=client.base_url,
        sleep=sleep,
        waits_s=waits_s,
    )
    handler.client.wss_uri = str(opened["url"])
    await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in Bolt
