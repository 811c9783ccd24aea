"""Slack listeners: module-level handlers that find their dependencies in Bolt's context.

`register_listeners(app, deps)` installs the middleware that provides them, then every handler.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack import ids
from bot.slack.deps import SlackDeps
from bot.slack.listeners import commands, confirm, create, decisions, events, home, lifetimes

__all__ = ["register_listeners"]


def register_listeners(app: AsyncApp, deps: SlackDeps) -> None:
    """Wire every listener; duplicates of Slack events never reach one."""
    app.middleware(events.deps_middleware(deps))
    app.middleware(events.drop_duplicate_events)
    app.command(ids.COMMAND)(commands.handle_vf)
    app.event("app_home_opened")(home.handle_home_opened)
    views = {
        ids.CREATE_VIEW: create.handle_create_submission,
        ids.REJECT_VIEW: decisions.handle_reject_reason,
        ids.CONFIRM_VIEW: confirm.handle_confirm,
    }
    for callback_id, view_handler in views.items():
        app.view(callback_id)(view_handler)
    actions = {
        ids.APPROVE: decisions.handle_approve,
        ids.REJECT: decisions.handle_reject,
        ids.RETRY_FAILED: decisions.handle_retry,
        ids.CLEANUP: decisions.handle_cleanup,
        ids.DELETE_APPROVE: confirm.handle_delete_approve,
        ids.DELETE_REJECT: confirm.handle_delete_reject,
        ids.LIST_PAGE: confirm.handle_list_page,
        ids.HOME_REFRESH: home.handle_refresh,
        ids.EXPIRY_EXTEND: lifetimes.handle_expiry_extend,
        ids.EXPIRY_DELETE: lifetimes.handle_expiry_delete,
        ids.EXPIRY_KEEP: lifetimes.handle_expiry_keep,
    }
    for action_id, action_handler in actions.items():
        app.action(action_id)(action_handler)
