"""A database written by vfbot 61aa0d7 (tests/store/legacy) upgrades in place and carries on: its
finished requests still show, and the request it left approved but not run is built, once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.provisioning.events import INSTANCE_BUILT, INSTANCE_CREATED, REQUEST_FINISHED
from bot.provisioning.model import InstanceState, RequestState
from bot.sandbox import FakeClock
from bot.slack.threads import SlackMessage, Thread
from bot.store.sql import Database
from bot.store.sql.schema import head_revision
from tests.databases import PG_URL, postgres_reachable
from tests.provisioning.conftest import Harness, creates
from tests.store.legacy import SUMMARY, legacy_postgres, legacy_sqlite

# Past every server id the 61aa0d7 run recorded: the panel of this test is a new sandbox.
FIRST_NEW_SERVER_ID = 1000


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The 61aa0d7 database of each engine, upgraded in place and started."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{legacy_sqlite(tmp_path)}")
        await _upgrade(database)
        yield database
        await database.stop()
        return
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    schema = f"t_{uuid.uuid4().hex}"
    async with legacy_postgres(schema):
        database = Database(PG_URL, schema=schema)
        await _upgrade(database)
        yield database
        await database.stop()


async def _upgrade(database: Database) -> None:
    result, created = await database.upgrade()
    assert (result.before, result.after, created) == ("0001", head_revision(), False)
    await database.start()


async def test_finished_requests_still_show_with_their_slack_messages(
    harness: Harness, store: Database
) -> None:
    for request_id, state in ((1, RequestState.COMPLETED), (2, RequestState.FAILED)):
        record, instances = await harness.requests.get(request_id)
        assert record.state is state
        expected = SUMMARY[f"VF-{request_id}"]
        assert [[i.name, i.state.value, i.server_id] for i in instances] == expected["servers"]
        channel, ts, notice_ts = expected["slack"]
        assert record.channel == channel
        assert await store.slack_store().message(Thread.REQUEST, request_id) == SlackMessage(
            channel=channel, ts=ts, notice_ts=notice_ts
        )
    async with harness.uow() as uow:
        operation = await uow.operations.get(1)
        events = await uow.events.list_for_request(1)
    assert operation is not None and operation.server_id == SUMMARY["OP-1"]["server_id"]
    assert operation.state.value == SUMMARY["OP-1"]["state"]
    assert [e.kind for e in events].count(INSTANCE_BUILT) == 2
    assert await harness.undelivered("slack") == []  # 61aa0d7's notifier had delivered all


async def test_the_request_left_approved_runs_to_completion_once(
    harness: Harness, clock: FakeClock
) -> None:
    harness.panel.next_server_id = FIRST_NEW_SERVER_ID
    clock.advance(7 * 86400)  # vfbot was down for a week during the upgrade

    record = await harness.run_until_done(3)

    assert record.state is RequestState.COMPLETED
    _, instances = await harness.requests.get(3)
    assert [(i.name, i.state) for i in instances] == [
        ("app-1", InstanceState.BUILT),
        ("app-2", InstanceState.BUILT),
    ]
    assert sorted(i.server_id for i in instances) == [FIRST_NEW_SERVER_ID, FIRST_NEW_SERVER_ID + 1]
    assert creates(harness.panel) == 2
    assert len(harness.panel.calls("POST", r"^/servers/\d+/build$")) == 2
    kinds = [e.kind for e in await harness.events(3)]
    assert kinds.count(INSTANCE_CREATED) == 2 and kinds.count(REQUEST_FINISHED) == 1
    # Nothing older moved: the finished requests kept their servers.
    _, first = await harness.requests.get(1)
    assert [i.server_id for i in first] == [101, 102]
