"""Day-2 work on servers that exist: name them, read them, delete them, change them, check the
panel. No Slack or SQL.

- ``resolve``: what a user typed → a server of vfbot's owner (re-checked on the panel);
- ``inventory``: lists, one server in detail, traffic, hypervisor groups, the audit log;
- ``deletes``: deletes with approval, run exactly once, through the outbox;
- ``expiry``: server lifetimes: the reminder, the action at expiry, extend and keep;
- ``actions``: suspend, power, VNC, backup plan, owner, CPU throttle (423 waited out, ``locks``);
- ``changes``: rename, root password, firewall, IPv4 addresses, backups (built on ``actions``);
- ``rebuilds``: OS reinstalls with approval, sent exactly once and followed to built or failed;
- ``resizes``: package or memory/CPU changes with approval;
- ``operations``: what deletes, rebuilds and resizes share (approval, outbox stream, audit);
- ``checks``: the connection test.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.provisioning.servers.actions import POWER_ACTIONS, ServerActions
from bot.provisioning.servers.changes import MAX_IPV4_ADD, ServerChanges
from bot.provisioning.servers.deletes import MAX_DELETE_DELAY_MIN, DeleteService
from bot.provisioning.servers.expiry import ExpiryService
from bot.provisioning.servers.inventory import Inventory
from bot.provisioning.servers.rebuilds import RebuildService
from bot.provisioning.servers.resizes import ResizeService
from bot.provisioning.servers.resolve import ServerResolver

__all__ = [
    "MAX_DELETE_DELAY_MIN",
    "MAX_IPV4_ADD",
    "POWER_ACTIONS",
    "DeleteService",
    "ExpiryService",
    "Inventory",
    "RebuildService",
    "ResizeService",
    "ServerActions",
    "ServerChanges",
    "ServerResolver",
    "Servers",
]


@dataclass(frozen=True)
class Servers:
    """The day-2 services, built together by the composition root."""

    resolver: ServerResolver
    inventory: Inventory
    deletes: DeleteService
    actions: ServerActions
    changes: ServerChanges
    rebuilds: RebuildService
    resizes: ResizeService
    expiry: ExpiryService
