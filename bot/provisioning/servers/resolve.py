"""Name a server: by VirtFusion id or by the name vfbot gave it, only if it is vfbot's owner's.

A server vfbot made may have been given to another VirtFusion user since (`/vf owner`); every
resolution checks the panel again, so vfbot never acts on it.
"""

from __future__ import annotations

import difflib
import re

from bot.provisioning.errors import AmbiguousServerError, NotOursReason, UnknownServerError
from bot.provisioning.servers.model import ResolvedServer
from bot.provisioning.transitions import Context, Service
from bot.virtfusion import NotFoundError

__all__ = ["ServerResolver", "gone"]

# ASCII digits only: str.isdigit() is also true for "²", which int() rejects.
_SERVER_ID = re.compile(r"[0-9]{1,18}")


class ServerResolver(Service):
    """Turns what a user typed into a `ResolvedServer` of vfbot's owner."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)

    async def resolve(self, text: str) -> ResolvedServer:
        """Find the server named by its VirtFusion id or by the name vfbot gave it.

        Raises UnknownServerError (with close names) or AmbiguousServerError.
        """
        wanted = text.strip().lstrip("#")
        if not wanted:
            raise UnknownServerError(
                NotOursReason.NO_NAME, "Name a server by its name or VirtFusion server id."
            )
        if _SERVER_ID.fullmatch(wanted):
            return await self._resolve_id(int(wanted))
        async with self._uow() as uow:
            matches = await uow.instances.find_by_name(wanted)
            request = await uow.requests.get(matches[0].request_id) if len(matches) == 1 else None
            names = await uow.instances.managed_names() if not matches else []
        if len(matches) == 1:
            instance = matches[0]
            resolved = ResolvedServer(instance.server_id or 0, instance.name, instance, request)
            await self._check_still_ours(resolved)
            return resolved
        if matches:
            raise AmbiguousServerError(
                wanted, [(i.name, i.server_id or 0, i.human_request_id) for i in matches]
            )
        close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
        raise UnknownServerError(
            NotOursReason.UNKNOWN_NAME, f"vfbot manages no server called {wanted!r}.", close
        )

    async def _check_still_ours(self, resolved: ResolvedServer) -> None:
        """A server that is gone from the panel passes: deleting it again counts as done."""
        try:
            server = await self._client.server(resolved.server_id)
        except NotFoundError:
            return
        if server.owner_id is not None and server.owner_id != self._owner:
            raise UnknownServerError(
                NotOursReason.GIVEN_AWAY,
                f"{resolved.label} now belongs to VirtFusion user {server.owner_id}, not to "
                f"vfbot's (user {self._owner}); vfbot no longer manages it.",
            )

    async def _resolve_id(self, server_id: int) -> ResolvedServer:
        try:
            server = await self._client.server(server_id)
        except NotFoundError as error:
            raise UnknownServerError(
                NotOursReason.NOT_ON_PANEL,
                f"There is no server {server_id} on the panel. It may have been deleted.",
            ) from error
        if server.owner_id != self._owner:
            raise UnknownServerError(
                NotOursReason.OTHER_OWNER,
                f"Server {server_id} belongs to another VirtFusion user, not to vfbot's "
                f"(user {self._owner}); vfbot does not touch it.",
            )
        async with self._uow() as uow:
            instance = await uow.instances.get_by_server_id(server_id)
            request = await uow.requests.get(instance.request_id) if instance else None
        name = server.name or (instance.name if instance else "") or server.hostname
        return ResolvedServer(server_id, name, instance, request)


def gone(resolved: ResolvedServer) -> UnknownServerError:
    """The error for a server deleted on the panel since it was resolved."""
    return UnknownServerError(
        NotOursReason.GONE,
        f"{resolved.label} no longer exists on the panel (it was deleted there).",
    )
