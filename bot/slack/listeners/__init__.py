"""Slack listeners; `register_listeners(app, deps)` wires every one of them."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.deps import SlackDeps
from bot.slack.listeners import commands, decisions, events, home, ops, views

__all__ = ["register_listeners"]


def register_listeners(app: AsyncApp, deps: SlackDeps) -> None:
    events.register(app, deps)  # middleware first: duplicates never reach a listener
    commands.register(app, deps)
    views.register(app, deps)
    decisions.register(app, deps)
    ops.register(app, deps)
    home.register(app, deps)
