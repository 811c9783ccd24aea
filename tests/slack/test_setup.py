"""Reaching Slack at start-up: a refused token fails at once, an unreachable Slack is waited for
(bounded, with a log line per attempt), and neither ends in a traceback."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.setup import SlackSetupError, SlackUnreachableError, check_bot_token


class _Slack:
    """Answers `auth.test` from a script: an exception to raise, or None for success."""

    base_url = "https://slack.example/api/"

    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def auth_test(self) -> dict[str, Any]:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return {"ok": True}


def _api_error(code: str, status: int = 200) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,  # type: ignore[arg-type]
        http_verb="POST",
        api_url="https://slack.example/api/auth.test",
        req_args={},
        data={"ok": False, "error": code},
        headers={},
        status_code=status,
    )
    return SlackApiError(code, response)


async def test_slack_unreachable_is_waited_for_then_reached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack = _Slack(aiohttp.ServerDisconnectedError(), TimeoutError(), None)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    await check_bot_token(slack, sleep=sleep, waits_s=(1, 2, 4))  # type: ignore[arg-type]
    assert slack.calls == 3 and waits == [1, 2]
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.slack.setup"]
    assert lines == [
        "cannot reach Slack at https://slack.example/api/ (ServerDisconnectedError); "
        "trying again in 1 s",
        "cannot reach Slack at https://slack.example/api/ (TimeoutError); trying again in 2 s",
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_slack_that_never_answers_ends_with_a_clear_error() -> None:
    slack = _Slack(*[_api_error("internal_error", 500)] * 3)

    async def sleep(_: float) -> None:
        return None

    with pytest.raises(SlackUnreachableError) as caught:
        await check_bot_token(slack, sleep=sleep, waits_s=(1, 2))  # type: ignore[arg-type]
    assert slack.calls == 3
    assert str(caught.value).startswith(
        "Slack answered auth.test with internal_error (HTTP 500). Check the network"
    )


@pytest.mark.parametrize("code", ["invalid_auth", "token_revoked", "not_allowed_token_type"])
async def test_a_refused_bot_token_fails_at_once(
    code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack = _Slack(_api_error(code))

    async def sleep(_: float) -> None:
        raise AssertionError("a refused token is not retried")

    with pytest.raises(SlackSetupError, match=f"Slack rejected SLACK_BOT_TOKEN \\({code}\\)"):
        await check_bot_token(slack, sleep=sleep)  # type: ignore[arg-type]
    assert slack.calls == 1
