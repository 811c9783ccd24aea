"""The day-2 endpoint methods of `VirtFusionClient` (rebuild, resize, rename, password, firewall,
IPv4, backups), mixed into it; the call path, retries and rate limit are the client's own."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from bot.virtfusion import _day2 as day2
from bot.virtfusion import _sansio as sansio
from bot.virtfusion._exceptions import DecodeError, VirtFusionError
from bot.virtfusion._models import BuildServerBody, OsTemplate, Server
from bot.virtfusion._sansio import HttpRequest

__all__ = ["DayTwoEndpoints"]


class DayTwoEndpoints:
    """Typed day-2 endpoints over the client's `_call` (see `VirtFusionClient`)."""

    async def _call(self, request: HttpRequest) -> object:
        """Send `request` under the retry policy; `VirtFusionClient` provides it."""
        raise NotImplementedError

    @staticmethod
    def _ambiguous(request: HttpRequest, error: VirtFusionError) -> VirtFusionError:
        """The error to raise when a call that is never repeated failed after it may have
        reached the panel; `VirtFusionClient` provides it."""
        raise NotImplementedError

    async def server_templates(self, server_id: int) -> list[OsTemplate]:
        """The OS templates this server may be (re)built with, flattened out of their groups."""
        request = day2.server_templates(server_id)
        return sansio.parse_templates(request, await self._call(request))

    async def server_extras(self, server_id: int) -> tuple[Server, day2.ServerExtras]:
        """One server with its SSH keys, pending changes and backup plan (one GET)."""
        request = sansio.get_server(server_id)
        payload = await self._call(request)
        server = sansio.parse_data(request, payload, Server)
        return server, sansio.parse_data(request, payload, day2.ServerExtras)

    async def rebuild_server(
        self, server_id: int, body: BuildServerBody
    ) -> tuple[Server, SecretStr | None]:
        """`POST /servers/{id}/build` on a built server: a rebuild. Returns the server and the
        new root password (`settings.decryptedPassword`) as a secret, never stored or logged.

        Never repeated once it may have reached the panel; raises AmbiguousResultError when the
        outcome is unknown (read the server instead of building again).
        """
        request = sansio.build_server(server_id, body)
        payload = await self._call(request)
        try:
            server = sansio.parse_data(request, payload, Server)
        except DecodeError as error:  # 2xx but unreadable: the rebuild may be under way
            raise self._ambiguous(request, error) from error
        return server, day2.parse_build_password(payload)

    async def rename_server(self, server_id: int, name: str) -> None:
        await self._call(day2.rename_server(server_id, name))

    async def change_package(
        self, server_id: int, package_id: int, flags: dict[str, bool]
    ) -> day2.PackageChange:
        """Move a server to another package; the answer lists what was not changed."""
        request = day2.change_package(server_id, package_id, flags)
        return day2.PackageChange.model_validate(await self._call(request))

    async def modify_memory(self, server_id: int, memory_mb: int) -> None:
        await self._call(day2.modify_memory(server_id, memory_mb))

    async def modify_cpu_cores(self, server_id: int, cores: int) -> None:
        await self._call(day2.modify_cpu_cores(server_id, cores))

    async def reset_password(self, server_id: int, *, user: str = "root") -> day2.PasswordReset:
        """Reset a server's password without emailing it; the answer holds it as a secret."""
        request = day2.reset_password(server_id, user)
        return sansio.parse_data(request, await self._call(request), day2.PasswordReset)

    async def firewall(
        self, server_id: int, interface: day2.Interface = "primary"
    ) -> day2.FirewallState:
        request = day2.firewall(server_id, interface)
        return sansio.parse_data(request, await self._call(request), day2.FirewallState)

    async def set_firewall(
        self, server_id: int, *, enabled: bool, interface: day2.Interface = "primary"
    ) -> None:
        await self._call(day2.set_firewall(server_id, enabled=enabled, interface=interface))

    async def apply_firewall_rulesets(
        self, server_id: int, rulesets: Sequence[int], interface: day2.Interface = "primary"
    ) -> None:
        await self._call(day2.apply_firewall_rulesets(server_id, rulesets, interface=interface))

    async def add_ipv4(
        self, server_id: int, quantity: int, interface: day2.Interface = "primary"
    ) -> list[str]:
        """Add `quantity` IPv4 addresses; returns the ones the panel added."""
        request = day2.add_ipv4(server_id, quantity, interface)
        return day2.parse_ipv4_added(request, await self._call(request))

    async def remove_ipv4(
        self, server_id: int, addresses: Sequence[str], interface: day2.Interface = "primary"
    ) -> None:
        await self._call(day2.remove_ipv4(server_id, addresses, interface))

    async def server_backups(self, server_id: int) -> list[day2.Backup]:
        """The server's backups; a row vfbot cannot read is skipped (the list is only shown)."""
        request = day2.server_backups(server_id)
        return sansio.parse_list(request, await self._call(request), day2.Backup, lenient=True)
