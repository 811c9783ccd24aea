"""AuditRepo and the Slack adapter's SlackStore contract (message coordinates, event dedupe)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.provisioning.ports import NewAudit
from bot.slack.threads import SlackMessage, Thread
from tests.store.conftest import NOW, StoreUnderTest
from tests.store.helpers import add_operation, add_request


async def test_audit_add_and_list(store: StoreUnderTest) -> None:
    async with store.uow() as uow:
        first = await uow.audit.add(NewAudit("U1", "approve", "VF-1", "ok", {"n": 1}), at=NOW)
        second = await uow.audit.add(
            NewAudit("U2", "reject", "VF-2", "ok"), at=NOW + timedelta(seconds=1)
        )
        await uow.audit.add(NewAudit("U1", "cancel", "VF-3", "denied"), at=NOW)
        await uow.commit()
    assert first.detail == {"n": 1}
    assert (first.actor, first.action, first.target, first.result) == (
        "U1",
        "approve",
        "VF-1",
        "ok",
    )
    assert second.detail == {}
    assert second.at == NOW + timedelta(seconds=1)
    async with store.uow() as uow:
        recent = await uow.audit.list_recent()
        assert [a.action for a in recent] == ["cancel", "reject", "approve"]
        assert recent[-1] == first
        assert [a.action for a in await uow.audit.list_recent(limit=1)] == ["cancel"]
        assert [a.action for a in await uow.audit.list_recent(actor="U1")] == ["cancel", "approve"]
        assert await uow.audit.list_recent(actor="nobody") == []


async def test_slack_event_dedupe(store: StoreUnderTest) -> None:
    slack = store.slack
    assert await slack.remember_event("Ev1", NOW) is True
    assert await slack.remember_event("Ev1", NOW) is False
    assert await slack.remember_event("Ev2", NOW + timedelta(minutes=10)) is True
    assert await slack.remember_event("Ev1", NOW) is False
    assert await slack.forget_events(NOW + timedelta(minutes=5)) == 1
    assert await slack.forget_events(NOW + timedelta(minutes=5)) == 0
    assert await slack.remember_event("Ev1", NOW) is True
    assert await slack.remember_event("Ev2", NOW) is False
    # Seen exactly at the cut-off: kept (only events seen before it are forgotten).
    assert await slack.forget_events(NOW + timedelta(minutes=10)) == 1
    assert await slack.remember_event("Ev2", NOW) is False


async def test_slack_event_concurrent_redelivery_is_seen_once(store: StoreUnderTest) -> None:
    results = await asyncio.gather(*(store.slack.remember_event("EvX", NOW) for _ in range(3)))
    assert sorted(results) == [False, False, True]


async def test_slack_message_save_overwrite_and_read(store: StoreUnderTest) -> None:
    request = await add_request(store)
    operation = await add_operation(store)
    slack = store.slack
    assert await slack.message(Thread.REQUEST, request.id) is None

    root = SlackMessage(channel="C1", ts="1700000000.000100")
    await slack.save_message(Thread.REQUEST, request.id, root, NOW)
    assert await slack.message(Thread.REQUEST, request.id) == root
    assert root.notice_ts is None
    # An operation with the same number has its own message.
    assert await slack.message(Thread.OPERATION, request.id) is None

    noticed = SlackMessage(channel="C1", ts="1700000000.000100", notice_ts="1700000000.000200")
    await slack.save_message(Thread.REQUEST, request.id, noticed, NOW + timedelta(seconds=1))
    assert await slack.message(Thread.REQUEST, request.id) == noticed

    moved = SlackMessage(channel="C9", ts="171.1")
    await slack.save_message(Thread.OPERATION, operation.id, moved, NOW)
    assert await slack.message(Thread.OPERATION, operation.id) == moved
    assert await slack.message(Thread.REQUEST, request.id) == noticed
    assert await slack.message(Thread.OPERATION, operation.id + 50) is None
