"""The App Home tab (`views.publish`): the caller's requests, approvals, recent servers; pure.

Approve/Reject here are the very buttons of the channel messages (same action ids and values),
so one listener serves both; every click is authorized again there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.provisioning.model import Operation
from bot.provisioning.servers.expiry import Expiring
from bot.provisioning.servers.model import ServerRow
from bot.slack import ids
from bot.slack.blocks._kit import (
    Json,
    button,
    context,
    divider,
    header,
    plural,
    section,
    slack_date,
)
from bot.slack.blocks.lifetimes import expiring_blocks
from bot.slack.blocks.operation import operation_actions, operation_state_line
from bot.slack.blocks.request import bounded_lines, request_blocks, state_line
from bot.slack.blocks.servers import server_row_text
from bot.slack.blocks.summary import RequestSummary
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = ["HOME_PENDING_MAX", "HOME_REQUESTS_MAX", "HOME_SERVERS_MAX", "home_view"]

HOME_REQUESTS_MAX = 10
HOME_PENDING_MAX = 10
"""Most pending requests, and separately most pending operations, shown with buttons."""
HOME_SERVERS_MAX = 10
HOME_EXPIRING_MAX = 10
HOME_EXPIRING_S = 7 * 86400.0
"""How far ahead "Expiring soon" looks."""
_LINE_CHARS = 280
_PROJECT_CHARS = 40


def home_view(
    *,
    user_id: str,
    my_requests: Sequence[RequestSummary],
    pending_requests: Sequence[RequestSummary],
    pending_operations: Sequence[Operation],
    recent_servers: Sequence[ServerRow],
    can_approve: bool,
    now: datetime,
    expiring: Sequence[Expiring] = (),
) -> Json:
    """The Home tab of `user_id`; "Waiting for your approval" appears only when `can_approve`.

    Each list is shown in the order given and capped, with "and N more"; the view stays within
    Slack's 100 blocks whatever the inputs.
    """
    blocks: list[Json] = [
        header("VirtFusion servers"),
        context([f"Hi {mention(user_id)} · updated {slack_date(now)}"]),
        {"type": "actions", "elements": [button("Refresh", ids.HOME_REFRESH, "refresh")]},
        divider(),
        section(_my_requests_text(my_requests, now=now)),
    ]
    if can_approve:
        blocks.append(divider())
        blocks += _approval_blocks(pending_requests, pending_operations, now=now)
    blocks += [
        divider(),
        section(_servers_text(recent_servers)),
        divider(),
        *expiring_blocks(expiring[:HOME_EXPIRING_MAX], now, title="Expiring soon (next 7 days)"),
        divider(),
        context(
            [
                f"*How to*: `{ids.COMMAND} create` requests servers · "
                f"`{ids.COMMAND} list` shows yours · `{ids.COMMAND} help` lists every command"
            ]
        ),
    ]
    return {"type": "home", "callback_id": ids.HOME_VIEW, "blocks": blocks}


def _my_requests_text(requests: Sequence[RequestSummary], *, now: datetime) -> str:
    title = "*Your recent requests*"
    if not requests:
        return f"{title}\n_None yet — `{ids.COMMAND} create` starts one._"
    lines = [_request_line(r, now=now) for r in requests]
    body = bounded_lines(
        lines,
        max_lines=HOME_REQUESTS_MAX,
        budget=SECTION_MAX - len(title) - 1,
        more=lambda n: f"_and {n:,} more — `vfbot requests` lists them all_",
    )
    return f"{title}\n{body}"


def _request_line(summary: RequestSummary, *, now: datetime) -> str:
    state = state_line(summary, now=now).splitlines()[0]
    return truncate(
        f"• *{summary.human_id}* · {escape(truncate(summary.project_name, _PROJECT_CHARS))} · "
        f"{plural(summary.counts.total, 'server')} — {state}",
        _LINE_CHARS,
    )


def _approval_blocks(
    requests: Sequence[RequestSummary], operations: Sequence[Operation], *, now: datetime
) -> list[Json]:
    blocks: list[Json] = [section("*Waiting for your approval*")]
    if not requests and not operations:
        blocks.append(context(["Nothing is waiting for you."]))
        return blocks
    for summary in requests[:HOME_PENDING_MAX]:
        blocks.append(section(_pending_request_text(summary, now=now)))
        # The channel message's own Approve/Reject block: same ids, values and styles.
        blocks += [b for b in request_blocks(summary, now=now) if b.get("type") == "actions"]
    if len(requests) > HOME_PENDING_MAX:
        left = len(requests) - HOME_PENDING_MAX
        blocks.append(context([f"and {plural(left, 'more request')} waiting"]))
    for op in operations[:HOME_PENDING_MAX]:
        blocks.append(section(_pending_operation_text(op, now=now)))
        actions = operation_actions(op)
        if actions is not None:
            blocks.append(actions)
    if len(operations) > HOME_PENDING_MAX:
        left = len(operations) - HOME_PENDING_MAX
        blocks.append(context([f"and {plural(left, 'more operation')} waiting"]))
    return blocks


def _pending_request_text(summary: RequestSummary, *, now: datetime) -> str:
    project = escape(truncate(summary.project_name, _PROJECT_CHARS))
    servers = plural(summary.counts.total, "server")
    what = f"{project}: {servers} for {mention(summary.requester)}"
    return _pending_text(summary.human_id, what, state_line(summary, now=now))


def _pending_operation_text(op: Operation, *, now: datetime) -> str:
    server = f"{code(truncate(op.server_name, 63))} (id {op.server_id})"
    what = f"{mention(op.requester)} asks to {op.kind.value} {server}"
    return _pending_text(op.human_id, what, operation_state_line(op, now=now))


def _pending_text(human_id: str, what: str, state: str) -> str:
    """One item waiting for approval: its id and what it is, then its state line(s)."""
    return truncate(f"*{human_id}* · {what}\n{state}", SECTION_MAX)


def _servers_text(servers: Sequence[ServerRow]) -> str:
    title = "*Recently built servers*"
    if not servers:
        return f"{title}\n_No servers built yet._"
    body = bounded_lines(
        [server_row_text(s) for s in servers],
        max_lines=HOME_SERVERS_MAX,
        budget=SECTION_MAX - len(title) - 1,
        more=lambda n: f"_and {n:,} more — `{ids.COMMAND} list`_",
    )
    return f"{title}\n{body}"
