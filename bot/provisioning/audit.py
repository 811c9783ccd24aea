"""Writing one audit entry in its own unit of work (refusals, day-2 actions, decisions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.store import UnitOfWork

__all__ = ["write_audit"]


async def write_audit(
    uow: Callable[[], UnitOfWork],
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    result: str,
    detail: dict[str, object] | None = None,
) -> None:
    """Append one entry and commit it."""
    async with uow() as unit:
        await unit.audit.add(
            at=at, actor=actor, action=action, target=target, result=result, detail=detail
        )
        await unit.commit()
