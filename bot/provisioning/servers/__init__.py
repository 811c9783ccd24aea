"""Day-2 work on servers that exist: name them, read them, delete them, change them, check the
panel. No Slack or SQL.

- ``resolve``: what a user typed → a server of vfbot's owner (re-checked on the panel);
- ``inventory``: lists, one server in detail, traffic, hypervisor groups, the audit log;
- ``deletes``: deletes with approval, run exactly once, through the outbox;
- ``actions``: suspend, power, VNC, backup plan, owner, CPU throttle (423 waited out, ``locks``);
- ``checks``: the connection test.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.provisioning.servers.actions import POWER_ACTIONS, ServerActions
from bot.provisioning.servers.deletes import MAX_DELETE_DELAY_MIN, DeleteService
from bot.provisioning.servers.inventory import Inventory
from bot.provisioning.servers.resolve import ServerResolver

__all__ = [
    "MAX_DELETE_DELAY_MIN",
    "POWER_ACTIONS",
    "DeleteService",
    "Inventory",
    "ServerActions",
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
