"""What reaches `/slack/events` before the signature is checked: size caps, 401/400 without a
traceback, one log line without the body, and never a `response_url` in the log."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.slack.web import MAX_BODY_BYTES
from tests.slack import signing
from tests.slack.conftest import CHANNEL, REQUESTER, SlackHarness

FORM = "application/x-www-form-urlencoded"
SECRET = signing.TEST_SIGNING_SECRET


def _text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text


def _log_since(h: SlackHarness, start: int) -> list[logging.LogRecord]:
    return h.logs[start:]


def _no_traceback(records: list[logging.LogRecord]) -> None:
    bad = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [_text(r)[:300] for r in bad]


async def test_unsigned_posts_get_401_and_one_short_log_line_each(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    start = len(h.logs)
    big = b"text=" + b"A" * 1_900_000
    forged = b"text=help\n2026-01-01 00:00:00 ERROR bot.app: FORGED admin token leaked"
    fresh = str(signing.now_timestamp())
    attempts = [
        (big, {"Content-Type": FORM}),  # no signature at all
        (big, {"Content-Type": FORM, "X-Slack-Request-Timestamp": fresh}),
        (forged, signing.with_bad_signature(signing.sign(SECRET, forged, content_type=FORM))),
    ]
    for body, headers in attempts * 3:
        status, answer = await h.post(body, headers)
        assert status == 401
        assert "AAAA" not in answer and "FORGED" not in answer
    records = _log_since(h, start)
    assert len(records) == 9  # one line per refused request
    assert all(r.name == "bot.slack.web" and r.levelno == logging.INFO for r in records)
    for record in records:
        text = _text(record)
        assert len(text) < 200 and "\n" not in text
        assert "AAAA" not in text and "FORGED" not in text
    _no_traceback(records)


async def test_a_body_over_the_cap_is_refused_before_it_is_read(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    start = len(h.logs)
    body = b"text=" + b"B" * MAX_BODY_BYTES
    headers = signing.sign(SECRET, body, content_type=FORM)  # correctly signed, still too big
    status, _ = await h.post(body, headers)
    assert status == 413
    records = _log_since(h, start)
    assert len(records) == 1 and "BBBB" not in _text(records[0])
    assert await h.runtime.core.requests.recent() == []


async def test_a_late_genuine_request_never_logs_its_response_url(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    start = len(h.logs)
    response_url = "https://hooks.slack.com/commands/T1/4242424242/LeakedSecretPart"
    body, headers = signing.slash_command(
        SECRET,
        text="help",
        response_url=response_url,
        timestamp=signing.stale_timestamp(),
    )
    status, _ = await h.post(body, headers)
    assert status == 401
    # Bolt's own check (it verifies again) words its refusal without the body too.
    assert h.runtime.bolt is not None
    response = await h.runtime.bolt.async_dispatch(signing.bolt_request(body, headers))
    assert response.status == 401
    records = _log_since(h, start)
    assert len(records) == 2
    for record in records:
        text = _text(record)
        assert "LeakedSecretPart" not in text and "4242424242" not in text
        assert "hooks" not in text and "\n" not in text


async def test_genuine_commands_never_log_their_response_url_even_at_debug(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env()
    assert logging.getLogger().level == logging.DEBUG  # the harness logs everything
    start = len(h.logs)
    urls = []
    for text in ("help", "list", "status VF-999", "nonsense"):
        url = h.slack.response_url()
        urls.append(url)
        body, headers = signing.slash_command(
            SECRET, text=text, user_id=REQUESTER, channel_id=CHANNEL, response_url=url
        )
        status, _ = await h.post(body, headers)
        assert status == 200
    path_parts = [url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1] for url in urls]
    for record in _log_since(h, start):
        text = _text(record)
        assert not any(url in text for url in urls), text[:300]
        assert not any(part in text for part in path_parts), text[:300]
        assert "response_url" not in text, text[:300]


def _signed(body: bytes, content_type: str = FORM) -> tuple[bytes, dict[str, str]]:
    """Signed over the raw bytes, as Slack signs (the helper in `signing` needs UTF-8)."""
    timestamp = str(signing.now_timestamp())
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def _payload(text: str) -> bytes:
    return urlencode({"payload": text}).encode()


MALFORMED = {
    "bad UTF-8": _signed(b"text=\xff\xfe&user_id=U1"),
    "odd charset": (
        b"text=help",
        {
            **signing.sign(SECRET, b"text=help", content_type=FORM),
            "Content-Type": f"{FORM}; charset=x-unknown-charset",
        },
    ),
    "latin-1 charset": (
        b"text=help",
        {
            **signing.sign(SECRET, b"text=help", content_type=FORM),
            "Content-Type": f"{FORM}; charset=latin-1",
        },
    ),
    "non-JSON payload": _signed(_payload("{not json")),
    "deep nesting": _signed(_payload("[" * 100_000 + "]" * 100_000)),
    "payload is a list": _signed(_payload("[1, 2]")),
    "JSON body is a string": _signed(b'"hello"', "application/json"),
    "JSON body is not JSON": _signed(b"{nope", "application/json"),
    "not a Slack content type": _signed(b"text=help", "text/plain"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_signed_bodies_get_400_without_a_traceback(
    slack_env: Any, case: str
) -> None:
    h: SlackHarness = await slack_env()
    start = len(h.logs)
    body, headers = MALFORMED[case]
    status, _ = await h.post(body, headers)
    assert status == 400
    records = _log_since(h, start)
    _no_traceback(records)
    assert [r.name for r in records] == ["bot.slack.web"]


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_unsigned_bodies_get_401(slack_env: Any, case: str) -> None:
    h: SlackHarness = await slack_env()
    start = len(h.logs)
    body, headers = MALFORMED[case]
    status, _ = await h.post(body, signing.with_bad_signature(headers))
    assert status == 401
    _no_traceback(_log_since(h, start))


@pytest.mark.parametrize("timestamp", ["soon", "1.5", "-1", "", "1" * 40, "0x1F"])
async def test_a_timestamp_that_is_not_a_whole_number_gets_401(
    slack_env: Any, timestamp: str
) -> None:
    h: SlackHarness = await slack_env()
    start = len(h.logs)
    body, headers = signing.slash_command(SECRET, text="help")
    status, _ = await h.post(body, {**headers, "X-Slack-Request-Timestamp": timestamp})
    assert status == 401
    _no_traceback(_log_since(h, start))


async def test_a_signed_help_still_works_and_json_events_still_parse(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    body, headers = signing.slash_command(SECRET, text="help", user_id=REQUESTER)
    status, answer = await h.post(body, headers)
    assert status == 200 and "/vf create" in answer
    raw, headers = signing.event(SECRET, signing.url_verification("challenge-123"))
    json_utf8 = {**headers, "Content-Type": "application/json; charset=utf-8"}
    status, answer = await h.post(raw, json_utf8)
    assert status == 200 and json.loads(answer)["challenge"] == "challenge-123"
