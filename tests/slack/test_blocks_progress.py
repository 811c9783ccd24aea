"""The thread reply of a delivery round: every line in order, within Block Kit's limits."""

from __future__ import annotations

import pytest
from slack_sdk.models.blocks import Block

from bot.slack.blocks.progress import REPLY_LINES_MAX, lines_that_fit, progress_reply
from bot.slack.blocks.result import result_modal
from bot.slack.limits import MESSAGE_BLOCKS_MAX, SECTION_MAX
from tests.slack.blockkit import check_blocks, check_text, check_view


def _said(blocks: list[dict[str, object]]) -> list[str]:
    return [line for b in blocks for line in str(b["text"]["text"]).split("\n")]  # type: ignore[index]


def test_a_round_of_short_lines_is_one_reply_in_order() -> None:
    lines = [f":package: `web-{n}` created: server {n}" for n in range(1, 61)]
    assert lines_that_fit(lines) == 60
    text, blocks = progress_reply("VF-7", lines)
    assert _said(blocks) == lines
    check_blocks(blocks)
    check_text(text)
    assert text.startswith("VF-7: 60 updates\n")
    for block in blocks:  # slack_sdk's own models accept them too
        assert Block.parse(block) is not None


def test_one_reply_lists_at_most_reply_lines_max() -> None:
    lines = [f"line {n}" for n in range(3 * REPLY_LINES_MAX)]
    fit = lines_that_fit(lines)
    assert fit == REPLY_LINES_MAX
    _, blocks = progress_reply("VF-1", lines[:fit])
    assert _said(blocks) == lines[:fit]


@pytest.mark.parametrize("size", [1500, 2999, 5000])
def test_long_lines_stop_at_the_block_limit(size: int) -> None:
    lines = [f"{n}:" + "x" * size for n in range(REPLY_LINES_MAX)]
    fit = lines_that_fit(lines)
    assert fit <= MESSAGE_BLOCKS_MAX * max(1, SECTION_MAX // (size + 1))
    _, blocks = progress_reply("VF-1", lines[:fit])
    check_blocks(blocks)
    assert len(blocks) <= MESSAGE_BLOCKS_MAX
    assert [line[:8] for line in _said(blocks)] == [line[:8] for line in lines[:fit]]


def test_one_line_is_its_own_notification_text() -> None:
    text, blocks = progress_reply("VF-1", [":white_check_mark: `web-1` is ready"])
    assert text == ":white_check_mark: `web-1` is ready"
    assert len(blocks) == 1
    assert lines_that_fit([]) == 0


@pytest.mark.parametrize("final", [True, False])
def test_the_pushed_result_view(final: bool) -> None:
    view = result_modal("x" * 5000, external_id="vf_create-1", final=final)
    check_view(view)
    assert view["clear_on_close"] is final
    assert view["external_id"] == "vf_create-1"
