"""Small helpers the listeners share: refusals, approval policy, problem lists."""

from __future__ import annotations

from collections.abc import Sequence

from slack_bolt.async_app import AsyncRespond

from bot.provisioning.plan import Plan
from bot.provisioning.request import Problem
from bot.slack.deps import SlackDeps
from bot.slack.mrkdwn import escape, truncate

__all__ = ["approval_required", "problems_text", "refuse"]


def approval_required(deps: SlackDeps, plan: Plan) -> bool:
    """Whether VF_REQUIRE_APPROVAL asks for an approval of this plan."""
    return deps.approval.required(
        servers=len(plan.servers), memory_mb=plan.total_memory_mb, disk_gb=plan.total_disk_gb
    )


def problems_text(problems: Sequence[Problem], *, limit: int = 2800) -> str:
    """Problems as a mrkdwn list, user text escaped, within one Slack message section."""
    lines = [
        f"• `{escape(p.path)}`: {escape(p.message)}" if p.path else f"• {escape(p.message)}"
        for p in problems
    ]
    return truncate("\n".join(lines), limit)


async def refuse(
    deps: SlackDeps, respond: AsyncRespond, user: str, action: str, target: str, reason: str
) -> None:
    """Tell the user ephemerally why not (and who may), and audit the refusal."""
    await respond(text=reason, response_type="ephemeral", replace_original=False)
    await deps.service.audit(user, action, target, "refused", {"reason": reason})
