"""Marks in memory behind `MarkRepo`, set by compare-and-set."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot.store._values import utc
from bot.store.memory._tables import Mark, Repo

__all__ = ["MemoryMarkRepo"]


class MemoryMarkRepo(Repo):
    """Marks of one memory unit of work; see `bot.provisioning.marks.MarkRepo`."""

    async def get_many(self, keys: Collection[str]) -> dict[str, str]:
        return {key: mark.value for key in keys if (mark := self._t.marks.get(key)) is not None}

    async def put_if(self, key: str, *, expected: str | None, value: str, now: datetime) -> bool:
        current = self._t.marks.get(key)
        if (current.value if current is not None else None) != expected:
            return False
        self._undo.put(self._t.marks, key, Mark(value, utc(now)))
        return True

    async def prune(self, prefix: str, *, before: datetime) -> int:
        cutoff = utc(before)
        old = [k for k, m in self._t.marks.items() if k.startswith(prefix) and m.at < cutoff]
        for key in old:
            self._undo.delete(self._t.marks, key)
        return len(old)
