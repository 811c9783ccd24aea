"""SQL only: URL checks, `Database` lifecycle, creating nothing by accident, SQLite pragmas."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError, NewAudit
from bot.store.sql import Database, check_database_url, normalize_database_url
from bot.store.sql.schema import head_revision
from bot.store.sql.tables import Base
from tests.databases import PG_URL, new_sqlite_file, postgres_reachable
from tests.store.conftest import NOW

TABLES = {
    "requests",
    "instances",
    "events",
    "event_deliveries",
    "audit_log",
    "operations",
    "slack_events",
    "slack_messages",
    "webhook_events",
    "marks",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("POSTGRESQL://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/vfbot.db", "sqlite+aiosqlite:///var/vfbot.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalize_database_url(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u:secret@h/db", "postgresql+psycopg2://u@h/db", "x.db"])
def test_normalize_database_url_rejects_other_schemes(url: str) -> None:
    with pytest.raises(ValueError) as info:
        normalize_database_url(url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("vfbot.db", "is not a URL of the form scheme://…"),
        ("mysql://u:secret@h/db", "has the scheme 'mysql'; vfbot supports SQLite and PostgreSQL"),
        ("postgresql://u:secret@h:port/db", "is malformed (check the port"),
        ("postgresql://u:secret@h:99999/db", "has the port 99999, outside 1-65535"),
        ("postgresql://u:secret@h", "names no database; put its name after the host"),
        ("sqlite://", "names an in-memory SQLite database, lost when vfbot exits"),
        ("sqlite:///:memory:", "names an in-memory SQLite database, lost when vfbot exits"),
    ],
)
def test_check_database_url_says_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        check_database_url(url)
    assert str(info.value).startswith(problem)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["sqlite:///vfbot.db", "sqlite+aiosqlite:////var/lib/vfbot/vfbot.db", "postgres://u:p@h/db"],
)
def test_check_database_url_accepts_usable_urls(url: str) -> None:
    check_database_url(url)


def test_schema_is_validated() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        Database("sqlite:///x.db", schema="s")
    with pytest.raises(ValueError, match="identifier"):
        Database("postgresql://u@h/db", schema='x"; DROP TABLE y; --')


def test_dialect_follows_the_url() -> None:
    assert Database("sqlite:///x.db").dialect == "sqlite"
    assert Database("postgres://u@h/db").dialect == "postgresql"


def test_uow_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        Database("sqlite:///x.db").uow()


async def test_slack_store_before_start_raises() -> None:
    slack = Database("sqlite:///x.db").slack_store()
    with pytest.raises(RuntimeError):
        await slack.remember_event("Ev1", NOW)


async def test_ping_and_idempotent_start_stop(db: Database) -> None:
    await db.start()  # second start is a no-op
    assert await db.ping() is True
    await db.stop()
    assert await db.ping() is False
    await db.stop()


async def test_start_fails_cleanly_when_unreachable() -> None:
    # A port that was free a moment ago: connecting is refused, no fixed port is assumed.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database = Database(f"postgresql://postgres:hunter2@127.0.0.1:{port}/test")
    with pytest.raises(DatabaseUnavailableError) as info:
        await database.start()
    assert info.value.problem is DatabaseProblem.UNREACHABLE and info.value.transient
    assert str(info.value) == (
        f'Cannot reach PostgreSQL database "test" at 127.0.0.1:{port} (connection refused); '
        "check that PostgreSQL is running and that DATABASE_URL's host and port are right."
    )
    assert await database.ping() is False
    with pytest.raises(RuntimeError):
        database.uow()


async def test_start_never_creates_a_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "vfbot.db"
    database = Database(f"sqlite:///{path}")
    for attempt in (database.start, database.status):
        with pytest.raises(DatabaseUnavailableError) as info:
            await attempt()
        assert info.value.problem is DatabaseProblem.MISSING
        assert str(info.value) == (
            f"There is no database at {path}; run `vfbot db upgrade` to create it, or check "
            "DATABASE_URL."
        )
    assert os.listdir(tmp_path) == []


async def test_upgrade_creates_every_table_and_a_restart_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vfbot.db'}"
    first = Database(url)
    result, created = await first.upgrade()
    assert created and result.after == head_revision()
    await first.start()
    try:
        async with first.uow() as uow:
            await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=NOW)
            await uow.commit()
    finally:
        await first.stop()
    # A restart (or a second replica) upgrades nothing and finds the data.
    second = Database(url)
    result, created = await second.upgrade()
    assert not created and result.applied == ()
    await second.start()
    try:
        async with second.uow() as uow:
            assert [a.actor for a in await uow.audit.list_recent()] == ["a"]
    finally:
        await second.stop()
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert names == TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == TABLES


async def test_postgresql_schema_is_created_and_holds_the_tables() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    schema = f"t_{uuid.uuid4().hex}"
    database = Database(PG_URL, schema=schema)
    admin = create_async_engine(PG_URL)
    try:
        await database.upgrade()
        await database.start()
        async with database.uow() as uow:
            await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=NOW)
            await uow.commit()
        async with admin.connect() as conn:
            found = await conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
            names = {name for (name,) in found}
            actors = await conn.execute(text(f'SELECT actor FROM "{schema}".audit_log'))
            assert [actor for (actor,) in actors] == ["a"]
        assert names == TABLES | {"alembic_version"}
    finally:
        await database.stop()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{new_sqlite_file(tmp_path / 'p.db')}")
    await database.start()
    try:
        async with database.uow() as uow:
            session = uow._session  # the test looks at the connection's settings
            values = {
                name: (await session.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await database.stop()
    # FULL (2): a power loss must not lose a committed create intent.
    assert values == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


async def test_sqlite_writers_in_one_process_queue_instead_of_failing_as_locked(
    tmp_path: Path,
) -> None:
    """Many concurrent writers, each holding its transaction across an await: they queue for
    the one connection. With a connection each, they would race for SQLite's write lock and,
    past the busy timeout (1 ms here, to make that race certain), fail with "database is
    locked"."""
    db = Database(f"sqlite:///{new_sqlite_file(tmp_path / 'busy.db')}", busy_timeout_ms=1)
    await db.start()
    try:

        async def write(n: int) -> None:
            for round_ in range(5):
                async with db.uow() as uow:
                    await uow.audit.add(NewAudit("u", "a", f"t{n}-{round_}", "ok"), at=NOW)
                    await asyncio.sleep(0)  # other writers run while this one holds the lock
                    await uow.audit.add(NewAudit("u", "b", f"t{n}-{round_}", "ok"), at=NOW)
                    await uow.commit()

        await asyncio.gather(*(write(n) for n in range(20)))
        async with db.uow() as uow:
            assert len(await uow.audit.list_recent(500)) == 200
    finally:
        await db.stop()
