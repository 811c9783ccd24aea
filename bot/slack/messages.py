"""How Slack words what went wrong: domain errors, panel errors and check results, with the
next step as a `/vf` command. The one place each of these is worded for Slack; all text returned
is mrkdwn with user and panel text escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

import bot.virtfusion as vf
from bot.provisioning import errors as err
from bot.provisioning.model import RequestRecord, RequestState
from bot.provisioning.ports import DatabaseUnavailableError
from bot.provisioning.request import Problem
from bot.provisioning.servers.checks import CheckStep, Outcome
from bot.slack.ids import COMMAND
from bot.slack.mrkdwn import escape, mention, truncate

__all__ = [
    "cancelled_text",
    "check_detail",
    "database_error_text",
    "decided_text",
    "error_text",
    "not_cancellable_text",
    "panel_error_text",
    "problems_text",
    "unknown_request_text",
]

_ASK_OPERATOR = "ask whoever runs vfbot to check it"

_SERVER_HINTS = {
    err.NotOursReason.UNKNOWN_NAME: (
        f"Use its VirtFusion id, or list the servers with `{COMMAND} list`."
    ),
    err.NotOursReason.NOT_ON_PANEL: f"`{COMMAND} list` shows the servers there are.",
}


def error_text(error: err.ProvisioningError) -> str:
    """A domain error for a Slack reply: what happened, then what to do next."""
    text = str(error)
    if isinstance(error, err.UnknownServerError):
        hint = _SERVER_HINTS.get(error.reason)
        if hint is not None:
            text = _before_suggestions(text, hint, error.suggestions)
    elif isinstance(error, err.UnknownRequestError):
        text += " Check the number: the vfbot Home tab lists your recent requests."
    elif isinstance(error, err.ServerBuildingError):
        text = text.rstrip(".") + (
            f"; cancel the request instead (`{COMMAND} cancel VF-{error.request_id}`)."
        )
    elif isinstance(error, err.UnknownOperationError):
        text += (
            " Check the number on the operation's message, or ask again (for example with "
            f"`{COMMAND} delete`)."
        )
    elif isinstance(error, err.BuildInProgressError):
        text += f" `{COMMAND} status` shows when it has finished."
    return escape(text)


def _before_suggestions(text: str, hint: str, suggestions: list[str]) -> str:
    """Put `hint` after the sentence but before "Did you mean …?"."""
    if not suggestions:
        return f"{text} {hint}"
    head, sep, tail = text.partition(" Did you mean ")
    return f"{head} {hint}{sep}{tail}"


def panel_error_text(error: vf.VirtFusionError) -> str:
    """A panel error for a Slack user (who cannot fix vfbot's settings themselves)."""
    fact = escape(err.describe_panel_error(error))
    if isinstance(error, vf.AuthError):
        return (
            f"The VirtFusion panel refused vfbot: {fact}; {_ASK_OPERATOR} (VIRTFUSION_API_TOKEN)."
        )
    if isinstance(error, vf.ForbiddenError):
        return f"The VirtFusion panel refused vfbot: {fact}; ask whoever runs vfbot to grant it."
    if isinstance(error, vf.ConnectError | vf.PanelTimeoutError):
        return (
            f"I could not reach the VirtFusion panel: {fact}. Nothing changed; "
            "try again in a minute."
        )
    return f"The VirtFusion panel answered with an error: {fact}. Try again in a minute."


def database_error_text(error: DatabaseUnavailableError) -> str:
    """vfbot's database failed (the operator's log has the details and the fix)."""
    if error.transient:
        return (
            f"vfbot's database is {error.problem.value} right now, so nothing changed. "
            "Try again in a minute."
        )
    return (
        f"vfbot's database cannot be used ({error.problem.value}), so nothing changed; "
        f"{_ASK_OPERATOR} (vfbot's log says what to fix)."
    )


def check_detail(step: CheckStep) -> str:
    """What a `/vf check` step found (plain text; the builder escapes it)."""
    if step.outcome is Outcome.NOT_FOUND:
        return step.detail or "not found on the panel; ask whoever runs vfbot to fix the id"
    if step.outcome is Outcome.REFUSED:
        return f"the panel says: {step.detail}"
    if step.outcome is Outcome.PANEL_ERROR and step.error is not None:
        return err.describe_panel_error(step.error)
    return step.detail


def problems_text(problems: Sequence[Problem], *, limit: int = 2800) -> str:
    """Problems as a mrkdwn list, user text escaped, within one Slack message section."""
    lines = [
        f"• `{escape(p.path)}`: {escape(p.message)}" if p.path else f"• {escape(p.message)}"
        for p in problems
    ]
    return truncate("\n".join(lines), limit)


def cancelled_text(record: RequestRecord, *, delete: bool) -> str:
    """What `/vf cancel` did, as `vfbot cancel` says it (mrkdwn)."""
    when = (
        "cancelled"
        if record.state is RequestState.CANCELLED
        else "cancelling (the engine finishes it at its next tick)"
    )
    kept = (
        "are being deleted"
        if delete
        else f"are kept (`{COMMAND} cancel {record.human_id} delete` deletes them)"
    )
    return f"{record.human_id}: {when}; nothing new will be created. Servers that exist {kept}."


def not_cancellable_text(record: RequestRecord) -> str:
    """A request that has already ended."""
    return (
        f"{record.human_id} is {record.state.value.replace('_', ' ')}; there is nothing to cancel."
    )


def unknown_request_text(request_id: int) -> str:
    """A request that does not exist (any more)."""
    return f"Request VF-{request_id} does not exist any more."


def decided_text(record: RequestRecord) -> str:
    """Why a request can no longer be decided, naming who decided it (mrkdwn)."""
    who = mention(record.decided_by) if record.decided_by else "someone"
    if record.state is RequestState.REJECTED:
        return f"{record.human_id} was already rejected by {who}."
    if record.state is RequestState.EXPIRED:
        return f"{record.human_id} expired before anyone approved it; nothing was created."
    if record.state is RequestState.CANCELLED:
        return f"{record.human_id} was cancelled."
    if record.decided_by:
        return f"{record.human_id} was already approved by {who}."
    return f"{record.human_id} does not need a decision any more."
