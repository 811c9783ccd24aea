"""The `/vf` subcommands: ONE registry that the help, the suggestions and the dispatch all read.

Each entry says what the subcommand does, how it is used (with an example), who may use it and
which handler runs it. Adding a subcommand is adding an entry here and its handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.slack.blocks.help import Usage, help_blocks, help_text
from bot.slack.ids import COMMAND
from bot.slack.listeners import changes as chg
from bot.slack.listeners import lifetimes as life
from bot.slack.listeners import servers as srv
from bot.slack.listeners.common import Invocation
from bot.slack.listeners.create import handle_create

__all__ = ["COMMANDS", "Command", "find", "help_message", "help_message_blocks", "names"]

Handler = Callable[[Invocation], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line(s), who may use it, and its handler (None: answered at once).

    Everyone allowed in the channel may use a subcommand unless `admins_only` is set: then only
    VF_ADMINS may, and the others are told that text.
    """

    usage: Usage
    section: str  # "create" or "servers", the help's two parts
    handler: Handler | None
    admins_only: str | None = None
    also: tuple[Usage, ...] = ()

    @property
    def name(self) -> str:
        return self.usage.name

    @property
    def action(self) -> str:
        """The audit action of a refusal."""
        return "request.create" if self.name == "create" else f"server.{self.name}"


def _cmd(name: str, what: str, example: str, args: str = "") -> Usage:
    return Usage(name, what, f"{COMMAND} {example}", args)


COMMANDS: tuple[Command, ...] = (
    Command(
        _cmd("create", "open the form to request new servers", "create"),
        "create",
        handle_create,
        also=(
            _cmd(
                "create {json}",
                "submit a whole request as JSON in one go",
                'create {"project_name": "web-shop", "instances": [{"name": "web", '
                '"template": "ubuntu-22.04"}]}',
            ),
        ),
    ),
    Command(_cmd("help", "show this help", "help"), "create", None),
    Command(
        _cmd(
            "list",
            "list servers: yours, all of the vfbot owner (admins), or one request's",
            "list all",
            "[mine|all|VF-n]",
        ),
        "servers",
        srv.handle_list,
    ),
    Command(
        _cmd("status", "show one request or one server", "status web-1", "<server|VF-n>"),
        "servers",
        srv.handle_status,
    ),
    Command(
        _cmd(
            "extend",
            "push a server's expiry further (or every server of a request)",
            "extend web-1 1d",
            "<server|VF-n> <duration>",
        ),
        "servers",
        life.handle_extend,
    ),
    Command(
        _cmd(
            "expiring",
            "list servers that expire, soonest first: yours, or all (approvers, admins)",
            "expiring all",
            "[mine|all]",
        ),
        "servers",
        life.handle_expiring,
    ),
    Command(
        _cmd(
            "delete",
            "delete a server after you confirm; may need approval, optional delay",
            "delete web-1 60",
            "<server> [delay-minutes]",
        ),
        "servers",
        srv.handle_delete,
    ),
    Command(
        _cmd("suspend", "suspend a server (asks to confirm)", "suspend web-1", "<server>"),
        "servers",
        srv.handle_suspend,
    ),
    Command(
        _cmd("unsuspend", "lift a suspension", "unsuspend web-1", "<server>"),
        "servers",
        srv.handle_unsuspend,
    ),
    Command(
        _cmd(
            "power",
            "boot, shut down, restart or power off (all but boot ask to confirm)",
            "power web-1 restart",
            "<server> boot|shutdown|restart|poweroff",
        ),
        "servers",
        srv.handle_power,
    ),
    Command(
        _cmd("traffic", "show a server's traffic this month", "traffic web-1", "<server>"),
        "servers",
        srv.handle_traffic,
    ),
    Command(
        _cmd(
            "vnc",
            "turn the VNC console on (details only to you) or off",
            "vnc web-1 enable",
            "<server> enable|disable",
        ),
        "servers",
        srv.handle_vnc,
    ),
    Command(
        _cmd(
            "backup-plan",
            "set or remove a server's backup plan",
            "backup-plan web-1 2",
            "<server> <plan-id|none>",
        ),
        "servers",
        srv.handle_backup_plan,
    ),
    Command(
        _cmd(
            "owner",
            "give a server to another VirtFusion user (admins)",
            "owner web-1 42",
            "<server> <user-id>",
        ),
        "servers",
        srv.handle_owner,
        admins_only="Only admins (VF_ADMINS) can give a server to another VirtFusion user.",
    ),
    Command(
        _cmd(
            "throttle",
            "limit a server's CPU, in percent (0 = no limit)",
            "throttle web-1 50",
            "<server> <0-99>",
        ),
        "servers",
        srv.handle_throttle,
    ),
    Command(
        _cmd(
            "cancel",
            "stop a request: nothing new is created; `delete` also deletes its servers",
            "cancel VF-12",
            "<VF-n> [delete]",
        ),
        "create",
        srv.handle_cancel,
    ),
    Command(
        _cmd(
            "rebuild",
            "reinstall the OS, SSH keys kept (asks first)",
            "rebuild web-1 debian-12",
            "<server> [template]",
        ),
        "servers",
        chg.handle_rebuild,
    ),
    Command(
        _cmd(
            "resize",
            "change package or memory/CPU (asks first)",
            "resize web-1 cpu=2",
            "<server> <package>|memory=MB cpu=N",
        ),
        "servers",
        chg.handle_resize,
    ),
    Command(
        _cmd("rename", "rename a server", "rename web-1 db-1", "<server> <name>"),
        "servers",
        chg.handle_rename,
    ),
    Command(
        _cmd(
            "password",
            "new root password, shown only to you",
            "password web-1",
            "<server>",
        ),
        "servers",
        chg.handle_password,
    ),
    Command(
        _cmd(
            "firewall",
            "show it, switch it, or apply rulesets",
            "firewall web-1 on",
            "<server> [on|off|rulesets 2,3]",
        ),
        "servers",
        chg.handle_firewall,
    ),
    Command(
        _cmd(
            "ip",
            "add or remove IPv4 addresses",
            "ip web-1 add 1",
            "<server> add [n]|remove <ip>",
        ),
        "servers",
        chg.handle_ip,
    ),
    Command(
        _cmd("backups", "list its backups", "backups web-1", "<server>"),
        "servers",
        chg.handle_backups,
    ),
    Command(
        _cmd("hypervisors", "list hypervisor groups and their free capacity", "hypervisors"),
        "servers",
        srv.handle_hypervisors,
    ),
    Command(
        _cmd("check", "check the connection to the panel", "check"), "servers", srv.handle_check
    ),
    Command(
        _cmd("audit", "show who did what recently (admins)", "audit 50", "[n]"),
        "servers",
        srv.handle_audit,
        admins_only="Only admins (VF_ADMINS) can read the audit log.",
    ),
)

_BY_NAME = {command.name: command for command in COMMANDS}


def find(name: str) -> Command | None:
    """The subcommand called `name` (lower case), or None."""
    return _BY_NAME.get(name)


def names() -> tuple[str, ...]:
    """Every subcommand name, in help order."""
    return tuple(_BY_NAME)


def help_message() -> str:
    """The `/vf help` text, from the registry."""
    return help_text(*_sections())


def _sections() -> tuple[list[Usage], list[Usage]]:
    creating = [u for c in COMMANDS if c.section == "create" for u in (c.usage, *c.also)]
    servers = [u for c in COMMANDS if c.section == "servers" for u in (c.usage, *c.also)]
    return creating, servers


def help_message_blocks() -> list[dict[str, object]]:
    """The `/vf help` message as Block Kit sections (`help_message` is its fallback text)."""
    return help_blocks(*_sections())
