"""Migrations: they build the models' schema, 0001 is 61aa0d7's schema, old databases upgrade in
place (data moved), and upgrades are safe to run at once, atomic and never silently wrong."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import setuptools
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.slack.threads import SlackMessage, Thread
from bot.store.sql import Database
from bot.store.sql.schema import BASELINE, MIGRATIONS, head_revision
from bot.store.sql.tables import Base
from tests.databases import PG_URL, create_schema, postgres_reachable
from tests.store.legacy import SUMMARY, legacy_postgres, legacy_sqlite, snapshot

# Every revision, in order, and the ones after the create_all era's schema (0002).
REVISIONS = sorted(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
AFTER_CREATE_ALL = tuple(r for r in REVISIONS if r > "0002")
# Tables added after the create_all era: an old create_all never wrote them.
NEWER_TABLES = {"marks", "webhook_events"}

ENGINES = ["sqlite", "postgresql"]


class Place:
    """Where a test's database lives: a SQLite file or a PostgreSQL schema (dropped after)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.schema = f"t_{uuid.uuid4().hex}" if kind == "postgresql" else None
        self.path = tmp_path / "vfbot.db"

    @property
    def url(self) -> str:
        return PG_URL if self.kind == "postgresql" else f"sqlite:///{self.path}"

    def database(self) -> Database:
        return Database(self.url, schema=self.schema)

    def engine(self) -> AsyncEngine:
        """A plain engine on the same place (for looking, or for old-style set-ups)."""
        if self.schema is None:
            return create_async_engine(f"sqlite+aiosqlite:///{self.path}")
        return create_async_engine(
            PG_URL,
            connect_args={"server_settings": {"search_path": self.schema}},
        )

    async def run(self, work: Any) -> Any:
        """`work(sync_connection)` in one committed transaction."""
        engine = self.engine()
        try:
            async with engine.begin() as conn:
                if self.schema is not None:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                return await conn.run_sync(work)
        finally:
            await engine.dispose()


@pytest.fixture(params=ENGINES)
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    if request.param == "postgresql" and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    found = Place(request.param, tmp_path)
    yield found
    if found.schema is not None:
        admin = create_async_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{found.schema}" CASCADE'))
        await admin.dispose()


def _differences(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def _alembic(conn: Connection, verb: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    getattr(command, verb)(config, revision)


def test_the_scripts_ship_in_the_package() -> None:
    """setuptools packages folders with an __init__.py only: the wheel and the image need them."""
    packages = setuptools.find_packages(str(MIGRATIONS.parents[3]), include=["bot*"])
    assert {"bot.store.sql.migrations", "bot.store.sql.migrations.versions"} <= set(packages)
    files = sorted(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    assert files[0] == BASELINE and files[-1] == head_revision()  # NNNN_what.py, in order


async def test_migrations_build_exactly_the_models(place: Place) -> None:
    db = place.database()
    result, created = await db.upgrade()
    assert created and result.before is None and result.after == head_revision()
    assert [r.id for r in result.applied] == REVISIONS
    assert await place.run(_differences) == []
    await db.start()  # and the store accepts it
    await db.stop()


async def test_baseline_is_the_schema_61aa0d7_wrote(place: Place, tmp_path: Path) -> None:
    """0001 alone gives the tables, columns, keys and index names 61aa0d7's create_all made."""
    await place.run(lambda conn: _alembic(conn, "upgrade", BASELINE))
    migrated = await place.run(snapshot)
    if place.kind == "sqlite":
        legacy = Place("sqlite", tmp_path / "legacy")
        legacy.path.parent.mkdir()
        legacy_sqlite(legacy.path.parent)
        written = await legacy.run(snapshot)
    else:
        schema = f"t_{uuid.uuid4().hex}"
        async with legacy_postgres(schema):
            other = Place("postgresql", tmp_path)
            other.schema = schema
            written = await other.run(snapshot)
    assert migrated == written
    assert "slack_ts" in [c[0] for c in migrated["requests"]["columns"]]


async def test_downgrade_returns_to_the_baseline_and_up_again(place: Place) -> None:
    db = place.database()
    await db.upgrade()
    head = await place.run(snapshot)
    await place.run(lambda conn: _alembic(conn, "downgrade", BASELINE))
    assert "slack_messages" not in await place.run(snapshot)
    await db.upgrade()
    assert await place.run(snapshot) == head
    assert await place.run(_differences) == []


async def test_a_database_made_by_create_all_is_recognised(place: Place) -> None:
    """Databases vfbot wrote between 61aa0d7 and migrations: the revision is recorded, nothing
    is applied, and the data stays. Those had none of the tables and columns later revisions
    add."""

    def create_all(conn: Connection) -> None:
        old = [t for t in Base.metadata.sorted_tables if t.name not in NEWER_TABLES]
        Base.metadata.create_all(conn, tables=old)

    await place.run(create_all)
    await place.run(_drop_after_0002)
    db = place.database()
    with pytest.raises(DatabaseUnavailableError) as refused:
        await db.start()
    assert refused.value.problem is DatabaseProblem.OUTDATED
    assert "vfbot db upgrade" in str(refused.value)
    status = await db.status()
    assert (status.current, status.versioned) == ("0002", False)
    assert tuple(r.id for r in status.pending) == AFTER_CREATE_ALL
    result, created = await db.upgrade()
    assert result.adopted and not created
    assert tuple(r.id for r in result.applied) == AFTER_CREATE_ALL
    assert (await db.status()).up_to_date
    assert await place.run(_differences) == []


def _drop_after_0002(conn: Connection) -> None:
    """What revision 0003 added, taken away again (a create_all of revision 0002)."""
    conn.execute(text("DROP INDEX ix_instances_expires_at"))
    for column in ("expires_at", "expiry_warned_for", "expiry_done_for"):
        conn.execute(text(f"ALTER TABLE instances DROP COLUMN {column}"))


async def test_legacy_database_upgrades_in_place(place: Place, tmp_path: Path) -> None:
    """The 61aa0d7 data: Slack coordinates move to slack_messages, nothing else changes."""
    if place.kind == "sqlite":
        legacy_sqlite(tmp_path)
        db = place.database()
        await _check_legacy_upgrade(db, place)
        return
    async with legacy_postgres(place.schema or ""):
        await _check_legacy_upgrade(place.database(), place)


async def _check_legacy_upgrade(db: Database, place: Place) -> None:
    with pytest.raises(DatabaseUnavailableError) as refused:
        await db.start()
    assert refused.value.problem is DatabaseProblem.OUTDATED
    assert "revision 0001" in str(refused.value)

    def counts(conn: Connection) -> dict[str, int]:
        tables = ("requests", "instances", "events", "event_deliveries", "audit_log", "operations")
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}

    before = await place.run(counts)
    result, created = await db.upgrade()
    assert not created and result.adopted and result.before == "0001"
    assert [r.id for r in result.applied] == REVISIONS[1:]
    assert await place.run(counts) == before
    assert await place.run(_differences) == []

    await db.start()
    try:
        slack = db.slack_store()
        for request_id in (1, 2, 3):
            channel, ts, notice_ts = SUMMARY[f"VF-{request_id}"]["slack"]
            assert await slack.message(Thread.REQUEST, request_id) == SlackMessage(
                channel=channel, ts=ts, notice_ts=notice_ts
            )
        channel, ts = SUMMARY["OP-1"]["slack"]
        assert await slack.message(Thread.OPERATION, 1) == SlackMessage(
            channel=channel, ts=ts, notice_ts=None
        )
        async with db.uow() as uow:
            request = await uow.requests.get(1)
            assert request is not None and request.channel == SUMMARY["channel"]
            operation = await uow.operations.get(1)
            assert operation is not None and operation.channel == SUMMARY["channel"]
    finally:
        await db.stop()


async def test_replicas_upgrading_at_once_apply_each_migration_once(place: Place) -> None:
    """Four processes' worth of `upgrade()` on one empty database: one creates, the rest wait
    for it (PostgreSQL advisory lock, SQLite BEGIN IMMEDIATE) and find nothing to do."""
    results = await asyncio.gather(*(place.database().upgrade() for _ in range(4)))
    created = [result for result, was_created in results if was_created]
    assert len(created) == 1 and [r.id for r in created[0].applied] == REVISIONS
    assert all(result.applied == () for result, was_created in results if not was_created)

    def versions(conn: Connection) -> list[str]:
        return [v for (v,) in conn.execute(text("SELECT version_num FROM alembic_version"))]

    assert await place.run(versions) == [head_revision()]


async def test_a_newer_revision_is_refused_not_touched(place: Place) -> None:
    def newer(conn: Connection) -> None:
        create_schema(conn)
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))

    await place.run(newer)
    db = place.database()
    for attempt in (db.start, db.upgrade, db.status):
        with pytest.raises(DatabaseUnavailableError) as refused:
            await attempt()
        assert refused.value.problem is DatabaseProblem.UNKNOWN_SCHEMA
        assert "0099" in str(refused.value) and "newer vfbot" in str(refused.value)


async def test_tables_of_no_known_version_are_refused(place: Place) -> None:
    await place.run(
        lambda conn: conn.execute(text("CREATE TABLE requests (id INTEGER PRIMARY KEY)"))
    )
    with pytest.raises(DatabaseUnavailableError) as refused:
        await place.database().upgrade()
    assert refused.value.problem is DatabaseProblem.UNKNOWN_SCHEMA
    assert "missing tables: audit_log" in str(refused.value)


async def test_an_empty_postgresql_schema_is_named_not_filled(tmp_path: Path) -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    place = Place("postgresql", tmp_path)
    await place.run(lambda conn: None)  # the schema exists, with no tables
    try:
        with pytest.raises(DatabaseUnavailableError) as refused:
            await place.database().start()
        assert refused.value.problem is DatabaseProblem.MISSING
        assert "holds no vfbot tables; run `vfbot db upgrade`" in str(refused.value)
        assert await place.run(snapshot) == {}
    finally:
        admin = create_async_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{place.schema}" CASCADE'))
        await admin.dispose()


async def test_a_failed_sqlite_upgrade_changes_nothing(tmp_path: Path) -> None:
    """The whole upgrade, table rebuilds included, is one transaction: a problem found at the
    end (a reference to a missing row) leaves the 61aa0d7 schema and data as they were."""
    path = legacy_sqlite(tmp_path)
    with sqlite3.connect(path) as conn:  # foreign keys are off in a plain connection
        conn.execute(
            "INSERT INTO event_deliveries (event_id, subscriber, worker) VALUES (999, 's', 'w')"
        )
    before = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    with pytest.raises(DatabaseUnavailableError) as refused:
        await Database(f"sqlite:///{path}").upgrade()
    assert "event_deliveries" in str(refused.value) and "changed nothing" in str(refused.value)
    with sqlite3.connect(path) as conn:
        after = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        ts = conn.execute("SELECT slack_ts FROM requests WHERE id = 1").fetchone()
    assert after == before and ts == (SUMMARY["VF-1"]["slack"][1],)
