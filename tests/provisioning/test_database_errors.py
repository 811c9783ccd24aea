"""A database that fails mid-tick loses no intent: the create committed before the panel call is
found again and adopted, never created twice (the store raises what the SQL adapter raises)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.provisioning.model import InstanceState, RequestState
from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError, UnitOfWork
from bot.sandbox import PanelState
from bot.store.sql import Database
from tests.databases import open_database
from tests.provisioning.conftest import Harness, creates


class FailsOnceAfterACreate:
    """The SQLite store, whose disk fills up right after the panel accepted a create: the unit
    of work that would record the answer fails as the SQL adapter fails it."""

    def __init__(self, database: Database, panel: PanelState) -> None:
        self.database = database
        self.panel = panel
        self.failed = False

    def uow(self) -> UnitOfWork:
        if not self.failed and creates(self.panel) == 1:
            self.failed = True
            raise DatabaseUnavailableError(
                DatabaseProblem.DISK_FULL, "The disk holding the SQLite file x is full."
            )
        return self.database.uow()


@pytest.fixture
async def store(tmp_path: Path, panel: PanelState) -> AsyncIterator[FailsOnceAfterACreate]:
    async with open_database("sqlite", tmp_path) as database:
        yield FailsOnceAfterACreate(database, panel)


async def test_a_create_whose_answer_could_not_be_recorded_is_adopted_not_repeated(
    harness: Harness, store: FailsOnceAfterACreate
) -> None:
    record = await harness.submit_file("create.json")

    with pytest.raises(DatabaseUnavailableError):  # the tick stops, one line for the worker
        await harness.engine.run_once()
    assert store.failed and creates(harness.panel) == 1
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is InstanceState.CREATING  # the intent survived

    finished = await harness.run_until_done(record.id, step_s=30)

    assert finished.state is RequestState.COMPLETED
    assert creates(harness.panel) == 1
    _, (instance,) = await harness.requests.get(record.id)
    assert instance.state is InstanceState.BUILT and instance.server_id is not None
