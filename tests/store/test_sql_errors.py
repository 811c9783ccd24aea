"""Database errors: the drivers' real errors become one `DatabaseUnavailableError` line naming the
cause and what to do; the errors the store expects pass through; a vanished file is noticed."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError, NewAudit
from bot.store.sql import Database
from bot.store.sql.errors import Target, translate
from tests.databases import (
    PG_HOST,
    PG_PORT,
    PG_URL,
    delete_sqlite_files,
    new_sqlite_file,
    open_database,
    postgres_reachable,
    sqlite_files,
)
from tests.store.conftest import NOW

P = DatabaseProblem


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    path = new_sqlite_file(tmp_path / "vfbot.db")
    database = Database(f"sqlite:///{path}")
    await database.start()
    yield database, path
    await database.stop()


async def _write_after(database: Database, *pragmas: str) -> None:
    """An audit row written on a session first given `pragmas` (to provoke the driver)."""
    async with database.uow() as uow:
        session = uow._session  # the test reaches for the connection's own settings
        for pragma in pragmas:
            await session.execute(text(pragma))
        for n in range(50):
            await uow.audit.add(NewAudit("a", "x" * 100, str(n), "ok"), at=NOW)
        await uow.commit()


@pytest.mark.parametrize(
    ("pragmas", "problem", "says"),
    [
        (("PRAGMA query_only=ON",), P.READ_ONLY, "is read-only (attempt to write a readonly"),
        (("PRAGMA max_page_count=1",), P.DISK_FULL, "is full; free space there"),
    ],
)
async def test_sqlite_write_errors_name_the_cause(
    sqlite_db: tuple[Database, Path], pragmas: tuple[str, ...], problem: P, says: str
) -> None:
    database, path = sqlite_db
    with pytest.raises(DatabaseUnavailableError) as info:
        await _write_after(database, *pragmas)
    assert info.value.problem is problem and not info.value.transient
    assert str(info.value).startswith(f"The SQLite file {path}") or str(path) in str(info.value)
    assert says in str(info.value)
    assert "\n" not in str(info.value)
    async with database.uow() as uow:  # nothing of the failed unit was kept
        assert await uow.audit.list_recent() == []


async def test_a_lock_held_by_another_process_is_named_and_transient(
    sqlite_db: tuple[Database, Path],
) -> None:
    database, path = sqlite_db
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseUnavailableError) as info:
            # busy_timeout=0: the 5 s wait of production, without the wait
            await _write_after(database, "PRAGMA busy_timeout=0")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert info.value.problem is P.LOCKED and info.value.transient
    assert f"is locked by another process (database is locked); find it with `fuser {path}`" in (
        str(info.value)
    )
    await _write_after(database)  # released: it works again


def test_translate_leaves_the_errors_the_store_expects() -> None:
    target = Target.of(make_url("sqlite+aiosqlite:////tmp/x.db"))
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as duplicate:
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as typo:
        conn.execute("SELEC 1")
    assert translate(duplicate.value, target) is None
    assert translate(typo.value, target) is None


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just text long enough " * 20)
    with pytest.raises(sqlite3.DatabaseError) as info:
        sqlite3.connect(path).execute("SELECT * FROM sqlite_master")
    translated = translate(info.value, Target.of(make_url(f"sqlite:///{path}")))
    assert translated is not None and translated.problem is P.IO_ERROR
    assert f"The SQLite file {path} cannot be read or written" in str(translated)


async def test_a_deleted_file_stops_every_unit_of_work_and_is_not_recreated(
    sqlite_db: tuple[Database, Path],
) -> None:
    database, path = sqlite_db
    await _write_after(database)
    delete_sqlite_files(path)
    with pytest.raises(DatabaseUnavailableError) as info:
        database.uow()
    assert info.value.problem is P.VANISHED and not info.value.transient
    assert str(info.value).startswith(f"The SQLite file {path} was deleted or replaced")
    with pytest.raises(DatabaseUnavailableError):
        await database.slack_store().remember_event("Ev1", NOW)
    assert await database.ping() is False
    assert sqlite_files(path) == []  # opened with mode=rw: never created again


async def test_a_replaced_file_is_noticed_too(sqlite_db: tuple[Database, Path]) -> None:
    database, path = sqlite_db
    new_sqlite_file(path.with_name("other.db")).replace(path)  # same name, another file
    with pytest.raises(DatabaseUnavailableError) as info:
        database.uow()
    assert info.value.problem is P.VANISHED


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database("postgresql", tmp_path) as database:
        yield database


async def test_postgresql_read_only_transactions_are_named(pg: Database) -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        await _write_after(pg, "SET TRANSACTION READ ONLY")
    assert info.value.problem is P.READ_ONLY
    assert str(info.value).startswith(f'PostgreSQL database "test" at {PG_HOST}:{PG_PORT}')
    assert "point DATABASE_URL at the primary server, not a standby" in str(info.value)


async def test_postgresql_lock_timeouts_are_transient(pg: Database) -> None:
    async with pg.uow() as holder:
        await holder._session.execute(text("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(DatabaseUnavailableError) as info:
            await _write_after(pg, "SET LOCAL lock_timeout = '10ms'")
    assert info.value.problem is P.LOCKED and info.value.transient


@pytest.mark.parametrize(
    ("url", "problem", "says"),
    [
        (
            PG_URL.rsplit("/", 1)[0] + "/vfbot_no_such_db",
            P.MISSING,
            'database "vfbot_no_such_db" does not exist); create it (createdb vfbot_no_such_db)',
        ),
        (
            PG_URL.replace("postgres@", "vfbot_no_such_role:pw-x1@"),
            P.REFUSED,
            "check the user and password in DATABASE_URL",
        ),
    ],
    ids=["missing database", "unknown role"],
)
async def test_postgresql_setup_problems_are_named(url: str, problem: P, says: str) -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    with pytest.raises(DatabaseUnavailableError) as info:
        await Database(url).start()
    assert info.value.problem is problem and problem.setup
    assert says in str(info.value)
    assert "pw-x1" not in str(info.value)
