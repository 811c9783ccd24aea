"""SQL only: URL normalisation, `Database` lifecycle, schema creation and SQLite pragmas."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.provisioning.ports import NewAudit
from bot.store.sql import Database, normalize_database_url
from bot.store.sql.tables import Base
from tests.databases import PG_URL, postgres_reachable
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
    database = Database(f"postgresql://postgres@127.0.0.1:{port}/test")
    with pytest.raises(OSError):
        await database.start()
    assert await database.ping() is False
    with pytest.raises(RuntimeError):
        database.uow()


async def test_start_creates_every_table_and_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vfbot.db'}"
    first = Database(url)
    await first.start()
    try:
        async with first.uow() as uow:
            await uow.audit.add(NewAudit("a", "x", "t", "ok"), at=NOW)
            await uow.commit()
    finally:
        await first.stop()
    # A restart (or a second replica) finds the tables and creates nothing twice.
    second = Database(url)
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
    assert names == TABLES == set(Base.metadata.tables)


async def test_postgresql_schema_is_created_and_holds_the_tables() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    schema = f"t_{uuid.uuid4().hex}"
    database = Database(PG_URL, schema=schema)
    admin = create_async_engine(PG_URL)
    try:
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
        assert names == TABLES
    finally:
        await database.stop()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'p.db'}")
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
    db = Database(f"sqlite:///{tmp_path / 'busy.db'}", busy_timeout_ms=1)
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


async def test_an_in_memory_sqlite_database_still_starts(tmp_path: Path) -> None:
    db = Database("sqlite:///:memory:")
    await db.start()
    assert await db.ping()
    await db.stop()
