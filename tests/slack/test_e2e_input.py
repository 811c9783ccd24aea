"""Hostile and big requests through Slack, end to end: every one gets an answer, a bounded one,
and the parsing runs off the event loop."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from bot.provisioning.intake import Intake
from bot.slack import ids
from tests.slack import signing
from tests.slack.conftest import SlackHarness

SURROGATE_REQUEST = (
    '{"project_name": "p", "instances": [{"name": "web", "template": "ubuntu-22.04", '
    '"volumes": [{"name": "d", "size_gb": 5, "mount_point": "/mnt/\\udfff"}]}]}'
)


def _file_values(file: dict[str, Any]) -> dict[str, Any]:
    return {ids.B_FILE: {ids.B_FILE: signing.file_input([file])}}


async def test_a_lone_surrogate_inline_gets_an_answer_naming_the_path(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.command(f"create {SURROGATE_REQUEST}")
    (answer,) = h.ephemeral_texts()
    assert "instances[0].volumes[0].mount_point" in answer and "not valid Unicode" in answer
    assert await h.runtime.core.requests.recent() == []


async def test_a_lone_surrogate_in_a_file_is_an_error_on_the_file_block(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    file = h.slack.add_file("req.json", SURROGATE_REQUEST.encode())
    response = await h.submit(_file_values(file))  # asserts HTTP 200
    assert "instances[0].volumes[0].mount_point" in response["errors"][ids.B_FILE]


async def test_a_lone_surrogate_typed_in_the_form_is_an_error_on_its_block(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env()
    values = {ids.B_PROJECT: {ids.B_PROJECT: signing.plain_text_input("shop\udfff")}}
    response = await h.submit(values)
    assert "not valid Unicode" in response["errors"][ids.B_PROJECT]


async def test_three_hundred_thousand_instances_get_a_short_answer(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    text = json.dumps({"project_name": "p", "instances": [1] * 300_000}, separators=(",", ":"))
    await h.command(f"create {text}")
    (answer,) = h.ephemeral_texts()
    assert "this request creates 300000 servers; the limit is 20" in answer
    assert len(answer) < 3_000


async def test_a_request_over_1_mib_inline_is_refused_with_the_limit(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    padding = " " * (1024 * 1024)
    await h.command('create {"project_name": "p",' + padding + '"instances": []}')
    (answer,) = h.ephemeral_texts()
    assert "the limit is 1,048,576 bytes" in answer


async def test_a_300_kb_request_file_is_read_whole_and_accepted(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    request = {
        "project_name": "big-file",
        "instances": [
            {"name": "api", "template": "ubuntu-22.04", "hypervisor_group": "Prague"},
        ],
    }
    content = json.dumps(request, indent=2).encode() + b" " * (300 * 1024)  # valid JSON
    file = h.slack.add_file("create.json", content)
    assert await h.submit(_file_values(file)) == {}
    (record,) = await h.runtime.core.requests.recent()
    assert record.project_name == "big-file"


async def test_a_file_just_over_1_mib_is_refused_with_the_limit(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    file = h.slack.add_file("create.json", b"{}" + b" " * (1024 * 1024))
    file["size"] = 0  # Slack did not say how big it is: the download finds out
    response = await h.submit(_file_values(file))
    assert "the limit is 1 MB" in response["errors"][ids.B_FILE]


@pytest.mark.parametrize("how", ["inline", "form", "file"])
async def test_requests_are_parsed_off_the_event_loop(
    slack_env: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A 1 MiB request takes the parser long enough to delay every other user's ack; it runs
    in a worker thread instead (the benchmark in bench/acks.py measures the acks)."""
    from bot.provisioning import reading
    from bot.slack import parse

    threads: list[bool] = []
    real = reading.parse_request

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(parse, "parse_request", spy)
    monkeypatch.setattr("bot.provisioning.intake.parse_request", spy)
    h: SlackHarness = await slack_env()
    assert isinstance(h.runtime.core.intake, Intake)
    if how == "inline":
        await h.command('create {"project_name": "p", "instances": []}')
    elif how == "form":
        await h.submit({ids.B_PROJECT: {ids.B_PROJECT: signing.plain_text_input("shop")}})
    else:
        file = h.slack.add_file("req.json", b'{"project_name": "p", "instances": []}')
        await h.submit(_file_values(file))
    assert threads == [False]
