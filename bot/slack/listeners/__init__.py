"""Slack listeners: module-level handlers that find their dependencies in Bolt's context.

`register_listeners(app, deps)` installs the middleware that provides them, then every handler.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack import ids
from bot.slack.deps import SlackDeps
from bot.slack.listeners import commands, confirm, create, decisions, events, home

__all__ = ["register_listeners"]


def register_listeners(app: AsyncApp, deps: SlackDeps) -> None:
    """Wire every listener; duplicates of Slack events never reach one."""
    app.middleware(events.deps_middleware(deps))
    app.middleware(events.drop_duplicate_events)
    app.command(ids.COMMAND)(commands.handle_vf)
    app.view(ids.CREATE_VIEW)(create.handle_create_submission)
    app.view(ids.REJECT_VIEW)(decisions.handle_reject_reason)
    app.view(ids.CONFIRM_VIEW)(confirm.handle_confirm)
    app.action(ids.APPROVE)(decisions.handle_approve)
    app.action(ids.REJECT)(decisions.handle_reject)
    app.action(ids.RETRY_FAILED)(decisions.handle_retry)
    app.action(ids.CLEANUP)(decisions.handle_cleanup)
    app.action(ids.DELETE_APPROVE)(confirm.handle_delete_approve)
    app.action(ids.DELETE_REJECT)(confirm.handle_delete_reject)
    app.action(ids.LIST_PAGE)(confirm.handle_list_page)
    app.action(ids.HOME_REFRESH)(home.handle_refresh)
    app.event("app_home_opened")(home.handle_home_opened)
