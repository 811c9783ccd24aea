"""bot.slack.mrkdwn: escaping, mentions, inline code and truncation."""

from __future__ import annotations

import pytest

from bot.slack.mrkdwn import ELLIPSIS, code, escape, mention, plain, truncate


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("<https://evil|click>", "&lt;https://evil|click&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),  # already-escaped text is escaped again, not trusted
        ("<@U123>", "&lt;@U123&gt;"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_plain_replaces_angle_brackets() -> None:
    assert "<" not in plain("<!here> & co") and ">" not in plain("<!here>")
    assert plain("a & b") == "a & b"


@pytest.mark.parametrize("user_id", ["U123ABC", "W0123", "U12"])
def test_mention_of_a_user_id(user_id: str) -> None:
    assert mention(user_id) == f"<@{user_id}>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("u123", "u123"),
        ("U1", "U1"),
        ("cli:alice", "cli:alice"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("U123> <!here", "U123&gt; &lt;!here"),
        ("", ""),
    ],
)
def test_mention_of_anything_else_is_escaped_text(text: str, expected: str) -> None:
    assert mention(text) == expected


def test_code_escapes_and_strips_backticks() -> None:
    assert code("web-1") == "`web-1`"
    assert code("a`b``<!channel>") == "`ab&lt;!channel&gt;`"
    assert code("two\nlines") == "`two lines`"
    assert code("```") == "` `"


def test_truncate_keeps_short_text() -> None:
    assert truncate("short", 5) == "short"


def test_truncate_adds_an_ellipsis_within_the_limit() -> None:
    out = truncate("abcdefghij", 5)
    assert out == "abcd" + ELLIPSIS
    assert len(out) <= 5


@pytest.mark.parametrize("limit", range(1, 30))
def test_truncate_never_splits_an_entity_or_token(limit: int) -> None:
    text = escape("a<b>&c") + " <@U123> " + escape("x & y")
    out = truncate(text, limit)
    assert len(out) <= limit
    body = out.removesuffix(ELLIPSIS)
    assert body.count("<") == body.count(">")
    for cut in ("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"):
        assert not body.endswith(cut)


def test_truncate_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        truncate("x", 0)
