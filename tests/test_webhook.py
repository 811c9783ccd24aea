"""`bot.webhook`'s pure half: what a delivery is read as (defensively; the body's shape beyond
the docs' minimum is UNKNOWN) and the bearer value the panel sends."""

from __future__ import annotations

import base64
import json

import pytest

from bot.webhook import Hint, authorization_header, parse_hint


def _body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_the_panel_sends_the_token_base64_encoded() -> None:
    assert authorization_header("s3cret") == "Bearer " + base64.b64encode(b"s3cret").decode()


def test_a_server_event_names_its_server() -> None:
    body = _body(event="server.build", hookEventId=77, data={"errors": [], "server": {"id": 12}})
    assert parse_hint(body, {}) == Hint("77", "server.build", 12)


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        # The delivery id and event from the headers when the body has none.
        (
            b"",
            {"X-VirtFusion-Hook-Event": "9", "X-VirtFusion-Event": "server.destroy"},
            Hint("9", "server.destroy", None),
        ),
        (b"not json", {}, Hint(None, "", None)),
        (b"[1, 2]", {}, Hint(None, "", None)),
        (b"[" * 100_000, {}, Hint(None, "", None)),  # too deep for json: unreadable, not a crash
        # `data.server` is false when the panel has no server object to send.
        (
            _body(event="server.build", hookEventId="a-1", data={"server": False}),
            {},
            Hint("a-1", "server.build", None),
        ),
        (
            _body(event="server.build", data={"server": {"id": "12"}}),
            {},
            Hint(None, "server.build", None),
        ),
        (
            _body(event="server.build", data={"server": {"id": True}}),
            {},
            Hint(None, "server.build", None),
        ),
        (
            _body(event="server.build", data={"server": {"id": -3}}),
            {},
            Hint(None, "server.build", None),
        ),
        (_body(event="server.build", data=[1]), {}, Hint(None, "server.build", None)),
        # Only server events name a server; others are a "look at everything" hint.
        (
            _body(event="user.create", data={"server": {"id": 12}}),
            {},
            Hint(None, "user.create", None),
        ),
        (
            _body(event="Server.Build", hookEventId=True, data={"server": {"id": 5}}),
            {},
            Hint(None, "server.build", 5),
        ),
    ],
)
def test_unusual_deliveries_are_read_defensively(
    body: bytes, headers: dict[str, str], expected: Hint
) -> None:
    assert parse_hint(body, headers) == expected


def test_long_delivery_ids_are_cut_to_the_column() -> None:
    hint = parse_hint(_body(event="x.y", hookEventId="7" * 500), {})
    assert hint.hook_event_id == "7" * 200 and not hint.known
