"""AuditRepo and SlackEventRepo on both engines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.store.sql import Database
from tests.store.conftest import NOW


async def test_audit_add_and_list(db: Database) -> None:
    async with db.uow() as uow:
        first = await uow.audit.add(
            at=NOW, actor="U1", action="approve", target="VF-1", result="ok", detail={"n": 1}
        )
        second = await uow.audit.add(
            at=NOW + timedelta(seconds=1), actor="U2", action="reject", target="VF-2", result="ok"
        )
        await uow.audit.add(at=NOW, actor="U1", action="cancel", target="VF-3", result="denied")
        await uow.commit()
    assert first.detail == {"n": 1}
    assert second.detail == {}
    assert second.at == NOW + timedelta(seconds=1)
    async with db.uow() as uow:
        recent = await uow.audit.list_recent()
        assert [a.action for a in recent] == ["cancel", "reject", "approve"]
        assert recent[-1] == first
        assert [a.action for a in await uow.audit.list_recent(limit=1)] == ["cancel"]
        assert [a.action for a in await uow.audit.list_recent(actor="U1")] == ["cancel", "approve"]


async def test_slack_event_dedupe(db: Database) -> None:
    async with db.uow() as uow:
        assert await uow.slack_events.remember("Ev1", NOW) is True
        assert await uow.slack_events.remember("Ev1", NOW) is False
        assert await uow.slack_events.remember("Ev2", NOW + timedelta(minutes=10)) is True
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.slack_events.remember("Ev1", NOW) is False
        assert await uow.slack_events.forget_older_than(NOW + timedelta(minutes=5)) == 1
        assert await uow.slack_events.remember("Ev1", NOW) is True
        assert await uow.slack_events.remember("Ev2", NOW) is False
        await uow.commit()


async def test_slack_event_concurrent_redelivery_is_seen_once(db: Database) -> None:
    async def remember() -> bool:
        async with db.uow() as uow:
            first = await uow.slack_events.remember("EvX", NOW)
            await uow.commit()
        return first

    results = await asyncio.gather(*(remember() for _ in range(3)))
    assert sorted(results) == [False, False, True]
