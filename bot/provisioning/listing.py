"""The owner's servers as the panel last listed them, shared by whoever reads that list.

`GET /servers/user/{id}` returns every server of vfbot's owner in one call. The engine's tracking
reads it every poll while builds run (`fetch`); lists shown to people (`/vf list`) take that
listing while it is a few seconds old (`recent`) instead of asking the panel again, so a burst of
`/vf list` costs the panel one call, not one per user, and never queues behind the engine for
the panel's rate limit. Readers that start while a listing is being read wait for that one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from bot.virtfusion import Server, VirtFusionClient

__all__ = ["LISTING_MAX_AGE_S", "ServerListing"]

LISTING_MAX_AGE_S = 10.0
"""How old a listing may be for `recent` (the engine's default poll interval)."""


class ServerListing:
    """One owner's panel listing, fetched by one caller at a time and kept for the others."""

    def __init__(
        self,
        client: VirtFusionClient,
        owner_user_id: int,
        clock: Callable[[], datetime],
        *,
        max_age_s: float = LISTING_MAX_AGE_S,
    ) -> None:
        self._client = client
        self._owner = owner_user_id
        self._clock = clock
        self._max_age_s = max_age_s
        self._servers: list[Server] = []
        self._read_at: datetime | None = None
        self._reading: asyncio.Future[list[Server]] | None = None

    async def fetch(self) -> list[Server]:
        """Ask the panel now (or join a call already under way) and keep the answer.

        Raises what the client raises; the kept listing is then left as it was.
        """
        reading = self._reading
        if reading is None:
            reading = self._reading = asyncio.ensure_future(self._read())
            reading.add_done_callback(self._done)
        return list(await asyncio.shield(reading))

    async def recent(self) -> list[Server]:
        """The kept listing while it is at most `max_age_s` old, else a fresh one."""
        read_at = self._read_at
        if read_at is not None and (self._clock() - read_at).total_seconds() <= self._max_age_s:
            return list(self._servers)
        return await self.fetch()

    def forget(self) -> None:
        """Drop the kept listing (vfbot just changed a server): the next reader asks."""
        self._read_at = None

    async def _read(self) -> list[Server]:
        started = self._clock()
        servers = await self._client.user_servers(self._owner)
        self._servers, self._read_at = servers, started
        return servers

    def _done(self, reading: asyncio.Future[list[Server]]) -> None:
        if self._reading is reading:
            self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved here: a failure is raised to every waiter
