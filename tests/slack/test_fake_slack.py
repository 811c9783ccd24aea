"""The fake Slack answers slack_sdk's real AsyncWebClient like Slack; signing.py passes Bolt."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.slack import signing
from tests.slack.fake_slack import FakeSlack, running_fake_slack

TOKEN = "xoxb-test-token"
SECRET = signing.TEST_SIGNING_SECRET
TS = re.compile(r"^\d{10}\.\d{6}$")
SECTION = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Create"}, "blocks": []}


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(TOKEN, members={"S_APPROVERS": {"U_BOSS", "U_OPS"}}) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def _error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# -- auth and recording ------------------------------------------------------------------------


async def test_auth_test_is_recorded_with_bearer(slack: FakeSlack, client: AsyncWebClient) -> None:
    result = await client.auth_test()

    assert (result["user_id"], result["bot_id"], result["team_id"]) == ("UBOT", "BBOT", "T1")
    assert slack.api_url.endswith("/api/") and slack.api_url.startswith(slack.url)
    [call] = slack.calls_to("auth.test")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    slack.reset()
    assert slack.calls == []


async def test_wrong_or_missing_token_is_rejected_like_slack(slack: FakeSlack) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    missing = AsyncWebClient(base_url=slack.api_url)

    assert (await _error(wrong.auth_test())).response["error"] == "invalid_auth"
    assert (await _error(missing.auth_test())).response["error"] == "not_authed"
    assert (
        await _error(wrong.chat_postMessage(channel="C1", text="x"))
    ).response.status_code == 200
    assert len(slack.calls) == 3  # failed calls are recorded too


async def test_unknown_method(client: AsyncWebClient) -> None:
    error = await _error(client.api_call("chat.frobnicate"))
    assert error.response["error"] == "unknown_method"


# -- messages ----------------------------------------------------------------------------------


async def test_post_message_sends_json_and_returns_increasing_ts(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="C_OPS", text="parent", blocks=SECTION)
    reply = await client.chat_postMessage(
        channel="C_OPS", text="reply", thread_ts=first["ts"], reply_broadcast=True
    )

    assert first["channel"] == "C_OPS" and TS.match(first["ts"])
    assert float(reply["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == SECTION
    call = slack.calls_to("chat.postMessage")[0]
    # slack_sdk posts chat.* as JSON: booleans stay booleans, None values are dropped.
    assert call.headers["content-type"] == "application/json;charset=utf-8"
    assert call.params == {"channel": "C_OPS", "text": "parent", "blocks": SECTION}
    assert slack.calls_to("chat.postMessage")[1].params["reply_broadcast"] is True
    assert [m["ts"] for m in slack.messages("C_OPS")] == [first["ts"], reply["ts"]]
    [threaded] = slack.thread("C_OPS", first["ts"])
    assert threaded["text"] == "reply" and threaded["reply_broadcast"] is True


async def test_form_encoded_blocks_are_parsed(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.api_call(
        "chat.postMessage", data={"channel": "C1", "text": "t", "blocks": json.dumps(SECTION)}
    )
    call = slack.calls_to("chat.postMessage")[0]
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.params["blocks"] == SECTION


async def test_update_edits_in_place_and_needs_an_existing_message(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C_OPS", text="pending", blocks=SECTION)
    await client.chat_update(channel="C_OPS", ts=posted["ts"], text="approved")

    [message] = slack.messages("C_OPS")
    assert message["text"] == "approved" and message["blocks"] == SECTION  # blocks kept
    await client.chat_update(channel="C_OPS", ts=posted["ts"], text="done", blocks=[])
    assert slack.message("C_OPS", posted["ts"]) == message and message["blocks"] == []
    error = await _error(client.chat_update(channel="C_OPS", ts="1.000000", text="x"))
    assert error.response["error"] == "message_not_found"


async def test_ephemeral_and_delete(slack: FakeSlack, client: AsyncWebClient) -> None:
    ephemeral = await client.chat_postEphemeral(channel="C_OPS", user="U_REQ", text="only you")
    posted = await client.chat_postMessage(channel="C_OPS", text="bye")
    await client.chat_delete(channel="C_OPS", ts=posted["ts"])

    assert TS.match(ephemeral["message_ts"])
    assert slack.ephemerals[0]["user"] == "U_REQ"
    assert slack.messages("C_OPS") == []
    error = await _error(client.chat_delete(channel="C_OPS", ts=posted["ts"]))
    assert error.response["error"] == "message_not_found"


async def test_bot_channels_gate_posting_but_not_dms(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.bot_channels = {"C_OPS"}

    error = await _error(client.chat_postMessage(channel="C_OTHER", text="x"))
    dm = await client.conversations_open(users="U_REQ")
    await client.chat_postMessage(channel=dm["channel"]["id"], text="vnc")
    to_user = await client.chat_postMessage(channel="U_REQ", text="also a DM")

    assert error.response["error"] == "not_in_channel"
    assert dm["channel"]["id"] == slack.dm_channel("U_REQ") and to_user["channel"].startswith("D")
    assert [m["text"] for m in slack.messages("U_REQ")] == ["vnc", "also a DM"]
    info = await client.conversations_info(channel="C_OTHER")
    assert info["channel"]["is_member"] is False


# -- views -------------------------------------------------------------------------------------


async def test_views_open_update_push_publish(slack: FakeSlack, client: AsyncWebClient) -> None:
    opened = await client.views_open(trigger_id="t1", view={**MODAL, "callback_id": "vf_create"})
    view = opened["view"]
    assert view["id"].startswith("V") and view["hash"] and view["callback_id"] == "vf_create"

    stale = await _error(client.views_update(view_id=view["id"], hash="old", view=MODAL))
    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)
    pushed = await client.views_push(trigger_id="t2", view=MODAL)
    home = await client.views_publish(user_id="U_REQ", view={"type": "home", "blocks": SECTION})

    assert stale.response["error"] == "hash_conflict"
    assert updated["view"]["id"] == view["id"] and updated["view"]["hash"] != view["hash"]
    assert pushed["view"]["id"] != view["id"]
    assert slack.home_views["U_REQ"]["id"] == home["view"]["id"]
    assert slack.calls_to("views.open")[0].params["view"]["callback_id"] == "vf_create"


async def test_trigger_ids_expire_and_are_single_use(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    await client.views_open(trigger_id="t1", view=MODAL)
    reused = await _error(client.views_open(trigger_id="t1", view=MODAL))
    slack.expire_triggers = True
    expired = await _error(client.views_open(trigger_id="t2", view=MODAL))

    assert reused.response["error"] == "exchanged_trigger_id"
    assert expired.response["error"] == "expired_trigger_id"


async def test_oversized_private_metadata_is_invalid(client: AsyncWebClient) -> None:
    view = {**MODAL, "private_metadata": "x" * 3001}
    error = await _error(client.views_open(trigger_id="t1", view=view))
    assert error.response["error"] == "invalid_arguments"


# -- lookups -----------------------------------------------------------------------------------


async def test_usergroups_users_and_files(slack: FakeSlack, client: AsyncWebClient) -> None:
    group = await client.usergroups_users_list(usergroup="S_APPROVERS")
    unknown = await _error(client.usergroups_users_list(usergroup="S_NOPE"))
    user = await client.users_info(user="U_BOSS")
    stored = slack.add_file("request.json", b'{"name": "web"}')
    info = await client.files_info(file=stored["id"])
    missing = await _error(client.files_info(file="F404"))

    assert group["users"] == ["U_BOSS", "U_OPS"]
    assert unknown.response["error"] == "no_such_subteam"
    assert user["user"]["id"] == "U_BOSS"
    assert info["file"] == stored and stored["size"] == 15
    assert stored["url_private_download"].startswith(f"{slack.url}/files-pri/T1-F")
    assert missing.response["error"] == "file_not_found"
    # GET methods travel as query strings.
    assert slack.calls_to("usergroups.users.list")[0].params == {"usergroup": "S_APPROVERS"}


async def test_file_download_needs_the_bearer_token(slack: FakeSlack) -> None:
    stored = slack.add_file("request.json", b'{"name": "web"}')
    url = stored["url_private_download"]
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as res:
            assert (res.status, res.content_type) == (200, "application/json")
            assert await res.read() == b'{"name": "web"}'
        async with session.get(url) as res:
            # Slack's real answer without a token: 200 and an HTML sign-in page.
            assert (res.status, res.content_type) == (200, "text/html")
            assert "Sign in" in await res.text()
    assert len(slack.downloads) == 2


# -- faults ------------------------------------------------------------------------------------


async def test_fail_next_fails_the_given_number_of_calls(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", "not_in_channel", times=2)

    for _ in range(2):
        error = await _error(client.chat_postMessage(channel="C_OPS", text="x"))
        assert error.response["error"] == "not_in_channel"
    assert (await client.chat_postMessage(channel="C_OPS", text="x"))["ok"] is True


async def test_rate_limit_is_429_with_retry_after(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.rate_limit_next("chat.update", retry_after_s=30)

    error = await _error(client.chat_update(channel="C_OPS", ts="1.000000", text="x"))

    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "30"


async def test_rate_limit_handler_retries_once(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler sleeps int(Retry-After) + random.random() (builtin_async_handlers.py); pin
    # the jitter so Retry-After: 0 means no real wait.
    monkeypatch.setattr(random, "random", lambda: 0.0)
    client = AsyncWebClient(
        token=TOKEN,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.rate_limit_next("chat.postMessage", retry_after_s=0, times=2)

    gave_up = await _error(client.chat_postMessage(channel="C_OPS", text="x"))  # 429 twice
    posted = await client.chat_postMessage(channel="C_OPS", text="x")

    assert gave_up.response.status_code == 429
    assert posted["ok"] is True
    assert len(slack.calls_to("chat.postMessage")) == 3


async def test_server_error_retried_by_server_error_handler(slack: FakeSlack) -> None:
    handler = AsyncServerErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.0)
    )
    client = AsyncWebClient(token=TOKEN, base_url=slack.api_url, retry_handlers=[handler])
    plain = AsyncWebClient(token=TOKEN, base_url=slack.api_url)
    slack.server_error_next("views.publish", status=503)
    slack.server_error_next("auth.test", status=500)

    published = await client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    error = await _error(plain.auth_test())

    assert published["ok"] is True and len(slack.calls_to("views.publish")) == 2
    assert (error.response.status_code, error.response["error"]) == (500, "internal_error")


# -- response_url ------------------------------------------------------------------------------


async def test_response_url_records_bolt_respond(slack: FakeSlack) -> None:
    url = slack.response_url()
    await AsyncRespond(response_url=url)(text="working on it", response_type="ephemeral")

    assert slack.responses == [{"text": "working on it", "response_type": "ephemeral"}]
    assert slack.responses_to(url) == slack.responses


# -- signing -----------------------------------------------------------------------------------


def test_slash_command_is_signed_and_form_encoded() -> None:
    body, headers = signing.slash_command(SECRET, text="create", trigger_id="trig")
    fields = dict(parse_qsl(body.decode()))

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"command=%2Fvf" in body
    assert fields["text"] == "create" and fields["trigger_id"] == "trig"
    assert fields["is_enterprise_install"] == "false" and fields["user_id"] == "U_REQ"


def test_stale_and_bad_signatures_fail() -> None:
    body, stale = signing.slash_command(SECRET, text="help", timestamp=signing.stale_timestamp())
    _, fresh = signing.slash_command(SECRET, text="help")

    assert not SignatureVerifier(SECRET).is_valid_request(body, stale)
    assert not SignatureVerifier(SECRET).is_valid_request(body, signing.with_bad_signature(fresh))


def test_interaction_and_event_bodies() -> None:
    payload = signing.block_actions(
        action_id="vf_approve", value="12", user_id="U_BOSS", message_ts="1700000000.000100"
    )
    body, headers = signing.interaction(SECRET, payload)
    event_body, event_headers = signing.event(
        SECRET, signing.app_home_opened_event(user_id="U_REQ", event_id="Ev1"), retry_num=1
    )

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert json.loads(dict(parse_qsl(body.decode()))["payload"]) == payload
    assert SignatureVerifier(SECRET).is_valid_request(event_body, event_headers)
    assert event_headers["Content-Type"] == "application/json"
    assert (event_headers["X-Slack-Retry-Num"], event_headers["X-Slack-Retry-Reason"]) == (
        "1",
        "http_timeout",
    )
    assert json.loads(event_body)["event"]["type"] == "app_home_opened"


async def test_bolt_dispatches_signed_requests_against_the_fake(slack: FakeSlack) -> None:
    # process_before_response: dispatch returns only after the listener finished, so the
    # recorded calls are complete when we assert.
    app = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=slack.api_url),
        signing_secret=SECRET,
        process_before_response=True,
    )
    seen: dict[str, Any] = {}

    @app.command("/vf")
    async def open_modal(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("vf_create")
    async def submitted(ack: Any, view: dict[str, Any]) -> None:
        seen["values"] = view["state"]["values"]
        await ack(response_action="errors", errors={"name": "bad"})

    @app.action("vf_approve")
    async def approve(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen["clicker"] = body["user"]["id"]

    @app.event("app_home_opened")
    async def home(event: dict[str, Any]) -> None:
        seen["home"] = event["user"]

    command = await app.async_dispatch(
        signing.bolt_request(*signing.slash_command(SECRET, text="create", trigger_id="tr1"))
    )
    values = {"name": {"name": signing.plain_text_input("web-1")}}
    submission = await app.async_dispatch(
        signing.bolt_request(
            *signing.interaction(
                SECRET, signing.view_submission(callback_id="vf_create", values=values)
            )
        )
    )
    click = await app.async_dispatch(
        signing.bolt_request(
            *signing.interaction(
                SECRET,
                signing.block_actions(
                    action_id="vf_approve", value="1", user_id="U_BOSS", message_ts="1.000100"
                ),
            )
        )
    )
    opened = await app.async_dispatch(
        signing.bolt_request(
            *signing.event(SECRET, signing.app_home_opened_event(user_id="U_REQ", event_id="Ev1"))
        )
    )
    stale = await app.async_dispatch(
        signing.bolt_request(
            *signing.slash_command(SECRET, text="x", timestamp=signing.stale_timestamp())
        )
    )

    assert command.status == 200
    assert slack.calls_to("views.open")[0].params["trigger_id"] == "tr1"
    assert submission.status == 200
    assert json.loads(submission.body) == {"response_action": "errors", "errors": {"name": "bad"}}
    assert seen["values"] == values
    assert click.status == 200 and seen["clicker"] == "U_BOSS"
    assert opened.status == 200 and seen["home"] == "U_REQ"
    assert stale.status == 401
    assert len(slack.calls_to("auth.test")) == 1  # AsyncApp authorizes lazily, then caches


# -- manifest ----------------------------------------------------------------------------------


def test_manifest_requests_only_the_minimal_bot_scopes() -> None:
    # pyyaml is not a dependency: read the list right under `oauth_config.scopes.bot`.
    lines = (Path(__file__).parents[2] / "manifest.yml").read_text().splitlines()
    after_bot = lines[lines.index("    bot:") + 1 :]
    items = itertools.takewhile(lambda line: line.startswith("      - "), after_bot)
    scopes = [line.removeprefix("      - ") for line in items]
    assert scopes == ["commands", "chat:write", "files:read", "usergroups:read", "im:write"]
