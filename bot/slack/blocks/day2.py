"""Replies to the second set of day-2 commands: rebuild, resize, rename, password, firewall, IP
addresses and backups; pure. A root password is rendered only here, and only for a reply to the
one person who asked (ephemeral); the fallback texts never carry it.
"""

from __future__ import annotations

from pydantic import SecretStr

from bot.provisioning.model import Operation, OperationState
from bot.provisioning.servers.model import (
    AddressChange,
    BackupList,
    FirewallView,
    PasswordResult,
    RebuildRun,
)
from bot.slack import ids
from bot.slack.blocks._kit import NAME_CHARS, NOTE_CHARS, Json, context, section, slack_date
from bot.slack.blocks.servers import server_ref
from bot.slack.limits import SECTION_MAX
from bot.slack.mrkdwn import code, escape, truncate

__all__ = [
    "address_text",
    "backups_blocks",
    "firewall_blocks",
    "operation_reply_text",
    "password_blocks",
    "password_text",
    "rebuild_password_blocks",
    "rebuild_text",
    "second_ask_text",
]

_SECRET_CHARS = 200
_RULES_SHOWN = 20
_BACKUPS_SHOWN = 20


def _target(name: str, server_id: int) -> str:
    return f"{code(truncate(name, NAME_CHARS))} (id {server_id})"


def _secret_block(listing: str) -> Json:
    """A preformatted block: shown and copied literally (a password with a backtick, `&` or
    `<` is not altered the way a mrkdwn code span would be)."""
    return {
        "type": "rich_text",
        "elements": [
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": listing}]}
        ],
    }


def _only_you(then: str) -> Json:
    return context([f":lock: Only you can see this. vfbot does not store it. {then}"])


def rebuild_text(run: RebuildRun) -> str:
    """The answer to whoever ran a rebuild: started (followed in the thread), or not sent."""
    op = run.operation
    target = _target(op.server_name, op.server_id)
    if op.state is OperationState.FAILED:
        return f":x: {op.human_id}: {escape(op.result or 'not rebuilt')}"
    unclear = (
        " The panel's answer was lost, so vfbot follows the server to see how it ends."
        if run.unclear
        else ""
    )
    where = " Progress follows in the thread of its message." if op.channel else ""
    return f":recycle: {op.human_id}: the rebuild of {target} has started.{unclear}{where}"


def rebuild_password_blocks(run: RebuildRun, password: SecretStr) -> list[Json]:
    """The new root password of a rebuilt server without SSH keys, for the person who asked."""
    op = run.operation
    ref = server_ref(op.server_name, op.server_id)
    return [
        section(
            f":key: {op.human_id}: {_target(op.server_name, op.server_id)} has no SSH key, so "
            "log in as root with this password once the rebuild is done:"
        ),
        _secret_block(password.get_secret_value()[:_SECRET_CHARS]),
        _only_you(f"`{ids.COMMAND} password {ref}` sets a new one at any time."),
    ]


def operation_reply_text(op: Operation) -> str:
    """The answer to whoever asked for a delete, rebuild or resize that waits for approval, or
    to whoever ran one that ended at once (a resize)."""
    verb = op.kind.value
    target = _target(op.server_name, op.server_id)
    if op.state is OperationState.PENDING_APPROVAL:
        return (
            f":hourglass_flowing_sand: {op.human_id}: the {verb} of {target} waits for "
            "approval; its message in the channel shows when it is decided."
        )
    icon = ":white_check_mark:" if op.state is OperationState.DONE else ":x:"
    return f"{icon} {op.human_id}: {truncate(escape(op.result or op.state.value), NOTE_CHARS)}"


def password_text(result: PasswordResult) -> str:
    """Fallback text of a password reset; never the password."""
    target = _target(result.name, result.server_id)
    if result.task.failed:
        reason = escape(result.task.error) if result.task.error.strip() else "no reason given"
        return f":x: The password reset of {target} failed on the panel: {reason}"
    state = "is set" if result.set else "is being set"
    return f"The {result.user} password of {target} {state} (details only for you)."


def password_blocks(result: PasswordResult) -> list[Json]:
    """The new password for the person who asked; none when the panel's task failed."""
    text = password_text(result)
    if result.task.failed:
        return [section(text)]
    ref = server_ref(result.name, result.server_id)
    head = f":key: New {escape(result.user)} password of {_target(result.name, result.server_id)}"
    if not result.set:
        task = f" (task {result.task.queue_id})" if result.task.queue_id is not None else ""
        head += (
            f". The panel is still setting it{task}; it works once that task has finished "
            f"(`{ids.COMMAND} status {ref}`)"
        )
    return [
        section(head + ":"),
        _secret_block(result.password.get_secret_value()[:_SECRET_CHARS]),
        _only_you("The panel did not email it to anyone."),
    ]


def firewall_blocks(view: FirewallView) -> list[Json]:
    """The firewall of the primary interface: on or off, and its rules (shape UNKNOWN, shown as
    the panel sends them)."""
    state = ":shield: *on*" if view.enabled else ":warning: *off*"
    lines = [f"Firewall of {_target(view.name, view.server_id)}: {state}"]
    if view.rules:
        shown = [f"• {code(truncate(rule, 150))}" for rule in view.rules[:_RULES_SHOWN]]
        lines.append(f"*Rules* ({len(view.rules)}):")
        lines += shown
        if len(view.rules) > _RULES_SHOWN:
            lines.append(f"_and {len(view.rules) - _RULES_SHOWN} more_")
    else:
        lines.append("No rules.")
    ref = server_ref(view.name, view.server_id)
    return [
        section(truncate("\n".join(lines), SECTION_MAX)),
        context(
            [
                f"`{ids.COMMAND} firewall {ref} on|off` switches it; "
                f"`{ids.COMMAND} firewall {ref} rulesets 2,3` replaces every rule with those "
                "rulesets (ask an admin for the ids: the API cannot list them)."
            ]
        ),
    ]


def address_text(change: AddressChange) -> str:
    """What an `ip add` or `ip remove` did, and the addresses the server has now."""
    target = _target(change.name, change.server_id)
    now = ", ".join(change.addresses) or "no IPv4 address"
    if change.added:
        return f":white_check_mark: Added {', '.join(change.added)} to {target}; it has {now}."
    if change.removed:
        return (
            f":white_check_mark: Removed {', '.join(change.removed)} from {target}; it has {now}."
        )
    return f":information_source: {target} has {now}; the panel added no address."


def second_ask_text(address: str, server: str) -> str:
    """The second confirmation before removing the last IPv4 address of `server` (its name or
    id, as the command named it); plain text."""
    return (
        f"{address} is the LAST IPv4 address of server {server}. Without it the server has no "
        "public IPv4 at all and cannot be reached over it. Remove it anyway?"
    )


def backups_blocks(listing: BackupList) -> list[Json]:
    """A server's backups, newest first, and what the API cannot do."""
    target = _target(listing.name, listing.server_id)
    plan = f"backup plan *{escape(listing.plan)}*" if listing.plan else "no backup plan"
    lines = [f":floppy_disk: Backups of {target} ({plan}):"]
    for backup in listing.backups[:_BACKUPS_SHOWN]:
        taken = slack_date(backup.created) if backup.created else "unknown time"
        where = f" on {escape(truncate(backup.storage, 40))}" if backup.storage else ""
        lines.append(f"• {taken}: {backup.state}{where} (id {backup.id})")
    if len(listing.backups) > _BACKUPS_SHOWN:
        lines.append(f"_and {len(listing.backups) - _BACKUPS_SHOWN} older ones_")
    if not listing.backups:
        lines.append("_none yet_")
    ref = server_ref(listing.name, listing.server_id)
    return [
        section(truncate("\n".join(lines), SECTION_MAX)),
        context(
            [
                "The VirtFusion API cannot take or restore a backup: do that in the panel. "
                f"`{ids.COMMAND} backup-plan {ref} &lt;plan&gt;` sets the plan that takes them."
            ]
        ),
    ]
