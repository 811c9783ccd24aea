"""Changing a server in place, part 2: rename, root password, firewall, IPv4 addresses, and its
backups; audited. (Part 1, suspend to CPU throttle, is `actions`; this builds on its `_act`.)

Each change is one panel call with a busy server (423) waited out, then one audit entry.
Rename and the address changes update vfbot's own record of a server it made in the same unit
of work as their audit entry, so `/vf list` and the Home tab show them at once. The password a
reset returns stays a `SecretStr`: it is never logged, audited or stored.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from bot.provisioning.errors import (
    InvalidValueError,
    LastAddressError,
    OperationFailedError,
)
from bot.provisioning.model import JsonDict
from bot.provisioning.ports import InstanceChange, NewAudit
from bot.provisioning.request import server_name_problem
from bot.provisioning.servers.actions import ServerActions
from bot.provisioning.servers.model import (
    AddressChange,
    BackupList,
    FirewallView,
    PasswordResult,
    ResolvedServer,
)
from bot.provisioning.servers.resolve import gone
from bot.virtfusion import RESET_USERS, AmbiguousResultError, NotFoundError, Server

__all__ = ["MAX_IPV4_ADD", "ServerChanges", "parse_rulesets"]

MAX_IPV4_ADD = 16  # vfbot's own cap on one `ip add`, so a typo cannot take a whole block


def parse_rulesets(text: str) -> list[int]:
    """Firewall ruleset ids as typed (`2,3`; `none` for no ruleset at all).

    Raises InvalidValueError for anything else.
    """
    raw = text.strip().lower()
    if raw == "none":
        return []
    parts = [p.strip() for p in raw.split(",")]
    if not raw or not all(p.isascii() and p.isdigit() for p in parts):
        raise InvalidValueError(
            f"{text!r} is not a list of firewall ruleset ids; give them like 2,3 "
            "(or none to remove every rule)."
        )
    return [int(p) for p in parts]


class ServerChanges(ServerActions):
    """Rename, password, firewall, IPv4 and backups of one resolved server."""

    async def rename(self, resolved: ResolvedServer, new_name: str, *, actor: str) -> str:
        """Give the server a new name (`PUT .../modify/name`) and make vfbot's record follow.

        Raises InvalidValueError for a name that breaks the request rules (a DNS label) or that
        another server vfbot manages already has.
        """
        problem = server_name_problem(new_name)
        if problem is not None:
            raise InvalidValueError(f"The new name {new_name!r} {problem}.")
        if new_name == resolved.name:
            raise InvalidValueError(f"{resolved.label} is already called {new_name}.")
        async with self._uow() as uow:
            taken = [
                i
                for i in await uow.instances.find_by_name(new_name)
                if i.server_id != resolved.server_id
            ]
        if taken:
            other = taken[0]
            raise InvalidValueError(
                f"vfbot already manages a server called {new_name} (server {other.server_id}, "
                f"{other.human_request_id}); pick another name."
            )
        detail: JsonDict = {"from": resolved.name, "to": new_name}
        await self._act(
            resolved,
            actor,
            "server.rename",
            lambda: self._client.rename_server(resolved.server_id, new_name),
            detail=detail,
            audit_ok=False,
        )
        await self._record(resolved, InstanceChange(name=new_name), actor, "server.rename", detail)
        return (
            f"{resolved.label} is now called {new_name}. Its hostname is unchanged: the API has "
            "no call for it (a rebuild sets it)."
        )

    async def reset_password(
        self, resolved: ResolvedServer, *, actor: str, user: str = "root"
    ) -> PasswordResult:
        """Reset the password of `user` (root, or Administrator on Windows) without the panel
        emailing it, and follow the task that sets it.

        Raises OperationFailedError when the panel's answer was lost (the password is unknown).
        """
        if user not in RESET_USERS:
            raise InvalidValueError(f"The user must be root or Administrator, not {user!r}.")
        try:
            reset = await self._act(
                resolved,
                actor,
                "server.password",
                lambda: self._client.reset_password(resolved.server_id, user=user),
                detail={"user": user},
                audit_ok=False,
            )
        except AmbiguousResultError as error:
            raise OperationFailedError(
                f"The panel's answer to the password reset of {resolved.label} was lost, so the "
                "new password is unknown; reset it again (the new reset replaces it)."
            ) from error
        task = await self._follow(resolved, "password", reset.queue_id)
        outcome = "failed" if task.failed else "ok" if task.finished else "queued"
        detail: JsonDict = {"user": user, "queue_id": reset.queue_id}
        if task.error:
            detail["error"] = task.error
        await self._moves.audit(actor, "server.password", resolved.label, outcome, detail)
        return PasswordResult(resolved.server_id, resolved.name, user, reset.password, task)

    async def firewall(self, resolved: ResolvedServer) -> FirewallView:
        """The firewall of the primary interface: on or off, and its rules."""
        try:
            state = await self._client.firewall(resolved.server_id)
        except NotFoundError as error:
            raise gone(resolved) from error
        return FirewallView(resolved.server_id, resolved.name, state.enabled, state.rules)

    async def set_firewall(self, resolved: ResolvedServer, *, enabled: bool, actor: str) -> str:
        """Turn the primary interface's firewall on or off, applied now (`sync=true`)."""
        word = "on" if enabled else "off"
        await self._act(
            resolved,
            actor,
            "server.firewall",
            lambda: self._client.set_firewall(resolved.server_id, enabled=enabled),
            detail={"firewall": word},
        )
        return f"The firewall of {resolved.label} is {word}."

    async def apply_rulesets(
        self, resolved: ResolvedServer, rulesets: list[int], *, actor: str
    ) -> str:
        """Flush the primary interface's rules and apply `rulesets` (ids); empty only flushes."""
        if any(isinstance(r, bool) or r < 1 for r in rulesets):
            raise InvalidValueError("Firewall ruleset ids are positive whole numbers, e.g. 2,3.")
        wanted = list(dict.fromkeys(rulesets))
        await self._act(
            resolved,
            actor,
            "server.firewall",
            lambda: self._client.apply_firewall_rulesets(resolved.server_id, wanted),
            detail={"rulesets": list(wanted)},
        )
        if not wanted:
            return f"Every firewall rule of {resolved.label} was removed."
        listed = ", ".join(str(r) for r in wanted)
        return f"{resolved.label} now has the rules of firewall ruleset(s) {listed} (and no other)."

    async def add_ipv4(
        self, resolved: ResolvedServer, quantity: int, *, actor: str
    ) -> AddressChange:
        """Add `quantity` IPv4 addresses to the primary interface (1 to `MAX_IPV4_ADD`).

        Raises OperationFailedError when the panel's answer was lost: vfbot does not add again.
        """
        if isinstance(quantity, bool) or not 1 <= quantity <= MAX_IPV4_ADD:
            raise InvalidValueError(
                f"Add between 1 and {MAX_IPV4_ADD} IPv4 addresses at a time, not {quantity}."
            )
        try:
            added = await self._act(
                resolved,
                actor,
                "server.ip.add",
                lambda: self._client.add_ipv4(resolved.server_id, quantity),
                detail={"quantity": quantity},
                audit_ok=False,
            )
        except AmbiguousResultError as error:
            raise OperationFailedError(
                f"The panel's answer to adding addresses to {resolved.label} was lost; check its "
                "addresses before adding more (vfbot did not try again)."
            ) from error
        now = await self._addresses_now(resolved, "server.ip.add", actor, {"added": added})
        return AddressChange(resolved.server_id, resolved.name, tuple(added), (), now)

    async def remove_ipv4(
        self, resolved: ResolvedServer, address: str, *, actor: str, last_confirmed: bool = False
    ) -> AddressChange:
        """Remove one IPv4 address of the primary interface.

        Raises InvalidValueError when it is not one of the server's addresses, and
        LastAddressError when it is the last one and `last_confirmed` is False.
        """
        try:
            wanted = str(ipaddress.IPv4Address(address.strip()))
        except ValueError:
            raise InvalidValueError(f"{address!r} is not an IPv4 address.") from None
        server = await self._read(resolved)
        if wanted not in server.ipv4:
            listed = ", ".join(server.ipv4) or "none"
            raise InvalidValueError(
                f"{resolved.label} has no address {wanted}; its IPv4 addresses: {listed}."
            )
        if server.ipv4 == (wanted,) and not last_confirmed:
            raise LastAddressError(resolved.label, wanted)
        await self._act(
            resolved,
            actor,
            "server.ip.remove",
            lambda: self._client.remove_ipv4(resolved.server_id, [wanted]),
            detail={"address": wanted},
            audit_ok=False,
        )
        now = await self._addresses_now(resolved, "server.ip.remove", actor, {"removed": wanted})
        return AddressChange(resolved.server_id, resolved.name, (), (wanted,), now)

    async def addresses(self, resolved: ResolvedServer) -> tuple[str, ...]:
        """The IPv4 addresses of the primary interface, as the panel has them now."""
        return (await self._read(resolved)).ipv4

    async def backups(self, resolved: ResolvedServer) -> BackupList:
        """The server's backups and backup plan; the API has no call to make or restore one."""
        try:
            _, extras = await self._client.server_extras(resolved.server_id)
            backups = await self._client.server_backups(resolved.server_id)
        except NotFoundError as error:
            raise gone(resolved) from error
        oldest = datetime.min.replace(tzinfo=UTC)
        newest_first = sorted(backups, key=lambda b: b.created or oldest, reverse=True)
        return BackupList(
            resolved.server_id, resolved.name, extras.backup_plan, tuple(newest_first)
        )

    # -- vfbot's own record ---------------------------------------------------------------------

    async def _read(self, resolved: ResolvedServer) -> Server:
        try:
            return await self._client.server(resolved.server_id)
        except NotFoundError as error:
            raise gone(resolved) from error

    async def _addresses_now(
        self, resolved: ResolvedServer, action: str, actor: str, detail: JsonDict
    ) -> tuple[str, ...]:
        """Read the server's addresses after a change and record them (and the audit entry)."""
        server = await self._read(resolved)
        change = InstanceChange(ipv4=list(server.ipv4))
        await self._record(resolved, change, actor, action, detail)
        return server.ipv4

    async def _record(
        self,
        resolved: ResolvedServer,
        change: InstanceChange,
        actor: str,
        action: str,
        detail: JsonDict,
    ) -> None:
        """Apply `change` to the instance vfbot made (if any) with the `ok` audit entry."""
        now = self._clock()
        async with self._uow() as uow:
            if resolved.instance is not None:
                await uow.instances.update(resolved.instance.id, now=now, change=change)
            await uow.audit.add(NewAudit(actor, action, resolved.label, "ok", detail), at=now)
            await uow.commit()
