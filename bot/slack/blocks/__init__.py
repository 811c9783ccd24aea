"""Pure Block Kit builders: domain values in, JSON-ready dicts out; no client, I/O or clock."""

from __future__ import annotations

from bot.slack.blocks.help import help_text, unknown_command_text
from bot.slack.blocks.limits import check_blocks, check_text, check_view
from bot.slack.blocks.modal import ModalChoices, create_modal, reject_modal
from bot.slack.blocks.notice import notice_blocks, notice_text
from bot.slack.blocks.progress import milestone_text
from bot.slack.blocks.request import request_blocks, request_text
from bot.slack.blocks.summary import RequestSummary, ServerCounts, ServerLine, summarize

__all__ = [
    "ModalChoices",
    "RequestSummary",
    "ServerCounts",
    "ServerLine",
    "check_blocks",
    "check_text",
    "check_view",
    "create_modal",
    "help_text",
    "milestone_text",
    "notice_blocks",
    "notice_text",
    "reject_modal",
    "request_blocks",
    "request_text",
    "summarize",
    "unknown_command_text",
]
