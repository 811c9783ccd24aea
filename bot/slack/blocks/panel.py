"""The panel overview for `/vf hypervisors`, `/vf check` and `/vf audit`; pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from bot.provisioning.model import AuditRecord
from bot.provisioning.servers.model import HypervisorGroupRow
from bot.slack.blocks._kit import (
    LABEL_CHARS,
    Json,
    context,
    header,
    plural,
    section,
    sections,
    slack_date,
)
from bot.slack.blocks.request import titled_lines
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape, mention, truncate

__all__ = [
    "AUDIT_ENTRIES_MAX",
    "HYPERVISOR_GROUPS_MAX",
    "audit_blocks",
    "check_blocks_text",
    "hypervisors_blocks",
]

HYPERVISOR_GROUPS_MAX = 100
AUDIT_ENTRIES_MAX = 200

_GROUPS_PER_SECTION = 5
_GROUP_CHARS = SECTION_MAX // _GROUPS_PER_SECTION - 20
_AUDIT_PER_SECTION = 8
_AUDIT_LINE_CHARS = SECTION_MAX // _AUDIT_PER_SECTION - 15
_CHECK_LINE_CHARS = 400


def hypervisors_blocks(rows: Sequence[HypervisorGroupRow]) -> list[Json]:
    """Hypervisor groups with free memory, disk and IPv4, and their hypervisors."""
    blocks: list[Json] = [header(f"Hypervisor groups ({len(rows):,})")]
    if not rows:
        blocks.append(section("The panel shows no hypervisor groups to vfbot's API token."))
        return blocks
    shown = rows[:HYPERVISOR_GROUPS_MAX]
    texts = [_group_text(g) for g in shown]
    blocks += sections(texts, per_section=_GROUPS_PER_SECTION, separator="\n\n")
    if len(rows) > len(shown):
        more = plural(len(rows) - len(shown), "more group")
        blocks.append(context([f"and {more} — `vfbot hypervisors` lists them all"]))
    return blocks


def check_blocks_text(steps: Sequence[tuple[str, bool, str]]) -> str:
    """`/vf check`: a headline and one ✓/✗ line per (name, ok, detail) step."""
    if not steps:
        return "*Panel check*: no checks ran."
    failed = sum(1 for _, ok, _ in steps if not ok)
    if failed:
        head = f":x: *Panel check*: {failed} of {plural(len(steps), 'check')} failed"
    else:
        head = f":white_check_mark: *Panel check*: all {plural(len(steps), 'check')} passed"
    lines = [
        truncate(
            f"{'✓' if ok else '✗'} *{escape(name)}*" + (f": {escape(detail)}" if detail else ""),
            _CHECK_LINE_CHARS,
        )
        for name, ok, detail in steps
    ]
    return titled_lines(
        head,
        lines,
        max_lines=len(lines),
        more=lambda n: f"_and {plural(n, 'more check')} — `vfbot check` shows all_",
    )


def audit_blocks(entries: Sequence[AuditRecord], *, now: datetime) -> list[Json]:
    """`/vf audit [n]`: who did what to which target, with what result and when (as given)."""
    blocks: list[Json] = [header("Audit log")]
    if not entries:
        blocks.append(section("_Nothing recorded yet._"))
        return blocks
    shown = entries[:AUDIT_ENTRIES_MAX]
    blocks += sections([_audit_line(e) for e in shown], per_section=_AUDIT_PER_SECTION)
    note = f"{plural(len(shown), 'entry', 'entries')} · as of {slack_date(now)}"
    if len(entries) > len(shown):
        note += f" · {len(entries) - len(shown):,} older not shown"
    blocks.append(context([note]))
    return blocks


def _group_text(group: HypervisorGroupRow) -> str:
    title = f"*{escape(truncate(group.name, LABEL_CHARS))}* (group {group.group_id})"
    if not group.enabled:
        title += " · :no_entry_sign: disabled"
    lines = [
        title,
        f"Free: {group.memory_free_mb:,} MB memory · {group.storage_free_gb:,} GB disk · "
        + plural(group.ipv4_free, "IPv4 address", "IPv4 addresses"),
    ]
    if group.hypervisors:
        names = ", ".join(truncate(h, LABEL_CHARS) for h in group.hypervisors[:8])
        more = f" +{len(group.hypervisors) - 8}" if len(group.hypervisors) > 8 else ""
        lines.append(f"Hypervisors: {escape(names)}{more}")
    if group.maintenance:
        names = ", ".join(truncate(h, LABEL_CHARS) for h in group.maintenance[:5])
        lines.append(f":construction: In maintenance: {escape(names)}")
    return truncate("\n".join(lines), _GROUP_CHARS)


def _audit_line(entry: AuditRecord) -> str:
    parts = [
        slack_date(entry.at),
        mention(truncate(entry.actor, 40)),
        code(truncate(entry.action, LABEL_CHARS)),
        escape(truncate(entry.target, 60)) if entry.target else "-",
        escape(truncate(entry.result, 30)) if entry.result else "-",
    ]
    line = "• " + " · ".join(parts)
    if entry.detail:
        pairs = ", ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
            for key, value in entry.detail.items()
        )
        line += " — " + escape(truncate(pairs, 120))
    return truncate(line, _AUDIT_LINE_CHARS)
