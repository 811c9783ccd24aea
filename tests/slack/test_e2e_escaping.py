"""Panel error text reaches Slack escaped: a panel (or whatever answers as one) cannot make vfbot
ping `@channel`, mention someone or post a link, in any of the places it is quoted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.provisioning.model import RequestState
from bot.slack import ids
from bot.virtfusion import PanelError
from tests.slack.conftest import REQUESTER, SlackHarness, form
from tests.slack.test_e2e_create import _text_of

HOSTILE = "<!channel> <@U0ADMIN> <https://evil.example|click> & more"


def _hostile_error() -> PanelError:
    return PanelError(
        f"POST /servers -> 500: {HOSTILE}", method="POST", path="/servers", status=500
    )


def _said(h: SlackHarness) -> str:
    """Everything vfbot said to anyone: replies, messages and views."""
    texts = [_text_of(r) for r in h.slack.responses]
    for call in h.slack.calls:
        texts.append(json.dumps(call.params))
    return "\n".join(texts)


def _check_escaped(h: SlackHarness) -> None:
    said = _said(h)
    assert "&lt;!channel&gt; &lt;@U0ADMIN&gt;" in said and "&amp; more" in said
    assert "<!channel>" not in said and "<@U0ADMIN>" not in said
    assert "<https://evil.example" not in said


async def test_inline_create_quotes_a_panel_error_escaped(
    slack_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h: SlackHarness = await slack_env()

    async def failing_plan(_: object, **__: object) -> None:
        raise _hostile_error()

    monkeypatch.setattr(h.runtime.core.intake, "plan", failing_plan)
    await h.command('create {"project_name": "p", "instances": [{"name": "w", "template": "1"}]}')
    assert "Nothing was created" in _said(h)
    _check_escaped(h)


async def test_a_slow_plan_quotes_a_panel_error_escaped_in_the_modal(
    slack_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h: SlackHarness = await slack_env()

    async def slow_failing_plan(request: object, **_: object) -> None:
        await h.runtime.core.intake.planner.plan(request)  # type: ignore[arg-type]
        raise _hostile_error()

    monkeypatch.setattr(h.runtime.core.intake, "plan", slow_failing_plan)
    response = await h.submit(form(), view_id="V0HOSTILE")
    assert response["response_action"] == "push"  # Slack is answered before the plan
    (update,) = h.slack.calls_to("views.update")
    assert "Nothing was created" in json.dumps(update.params["view"])
    _check_escaped(h)


@pytest.mark.parametrize("action", [ids.RETRY_FAILED, ids.CLEANUP])
async def test_retry_and_clean_up_quote_a_panel_error_escaped(
    slack_env: Any, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form())
    (record,) = await h.runtime.core.requests.recent()
    assert record.state is RequestState.RUNNING

    async def failing(*_: object, **__: object) -> None:
        raise _hostile_error()

    requests = h.runtime.core.requests
    monkeypatch.setattr(requests, "retry_failed", failing)
    monkeypatch.setattr(requests, "cleanup_failed", failing)
    h.slack.reset()
    await h.click(action, record, user=REQUESTER)
    assert "Nothing was lost" in _said(h)
    _check_escaped(h)
