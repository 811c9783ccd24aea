"""Waiting out a server the panel reports busy (423 Locked) with tenacity, then giving up."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_fixed,
)

from bot.provisioning.errors import ServerLockedError
from bot.virtfusion import LockedError

__all__ = ["LockWait", "Sleep"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class LockWait:
    """How long to keep asking while another panel task holds the server (on top of the
    client's own short 423 retries): every `poll_s`, for `wait_s` in all."""

    wait_s: float = 60.0
    poll_s: float = 5.0

    async def call(self, server_id: int, call: Callable[[], Awaitable[T]], sleep: Sleep) -> T:
        """`call()`, repeated while the panel answers 423; then ServerLockedError."""
        poll_s = max(self.poll_s, 0.001)
        attempts = AsyncRetrying(
            retry=retry_if_exception_type(LockedError),
            stop=stop_after_attempt(math.ceil(max(self.wait_s, 0) / poll_s) + 1),
            wait=wait_fixed(poll_s),
            sleep=sleep,
        )
        try:
            async for attempt in attempts:
                with attempt:
                    return await call()
        except RetryError as error:
            raise ServerLockedError(server_id, self.wait_s) from error.last_attempt.exception()
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover
