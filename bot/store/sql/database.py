"""The engine, sessions and unit of work; the only module that creates SQLAlchemy engines."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Self

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.store.sql.errors import Target, translate, unavailable
from bot.store.sql.errors import install as install_translation
from bot.store.sql.events import SqlAuditRepo, SqlEventRepo
from bot.store.sql.hooks import SqlHookStore
from bot.store.sql.instances import SqlInstanceRepo
from bot.store.sql.marks import SqlMarkRepo
from bot.store.sql.operations import SqlOperationRepo
from bot.store.sql.requests import SqlRequestRepo
from bot.store.sql.schema import SchemaStatus, UpgradeResult, read_status
from bot.store.sql.schema import upgrade as upgrade_schema
from bot.store.sql.slack import SqlSlackStore
from bot.store.sql.sqlite import (
    BUSY_TIMEOUT_MS,
    BackupResult,
    FileIdentity,
    file_url,
    set_pragmas,
)
from bot.store.sql.sqlite import backup as backup_file

__all__ = [
    "Database",
    "SqlUnitOfWork",
    "check_database_url",
    "database_password",
    "normalize_database_url",
]

_SCHEME_ALIASES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Serialises upgrades across replicas starting at once (arbitrary constant key).
_DDL_LOCK_KEY = 0x76666274


def normalize_database_url(url: str) -> str:
    """Rewrite ``postgres://``, ``postgresql://`` and ``sqlite://`` URLs to their async drivers.

    Raises ``ValueError`` for any other scheme (the message names the scheme, never the URL).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("database URL must look like scheme://...")
    target = _SCHEME_ALIASES.get(scheme.lower())
    if target is None:
        raise ValueError(f"unsupported database URL scheme {scheme!r}")
    return f"{target}://{rest}"


def check_database_url(url: str) -> None:
    """Raise ``ValueError`` saying what makes `url` unusable (never echoing the URL itself)."""
    scheme, sep, _ = url.strip().partition("://")
    if not sep:
        raise ValueError("is not a URL of the form scheme://…")
    if scheme.lower() not in _SCHEME_ALIASES:
        raise ValueError(f"has the scheme {scheme!r}; vfbot supports SQLite and PostgreSQL")
    try:
        parsed = make_url(normalize_database_url(url.strip()))
        port = parsed.port
    except (ArgumentError, ValueError):
        raise ValueError("is malformed (check the port and any special characters)") from None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"has the port {port}, outside 1-65535")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "names an in-memory SQLite database, lost when vfbot exits; name a file"
            )
    elif not parsed.database:
        raise ValueError("names no database; put its name after the host")


def database_password(url: str) -> str | None:
    """The password in `url`, if any (for the log redactor)."""
    try:
        return make_url(url.strip()).password
    except (ArgumentError, ValueError):
        return None


class SqlUnitOfWork:
    """One session per unit; leaving the ``async with`` block without ``commit`` rolls back."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self.requests = SqlRequestRepo(session, dialect)
        self.instances = SqlInstanceRepo(session, dialect)
        self.events = SqlEventRepo(session, dialect)
        self.audit = SqlAuditRepo(session, dialect)
        self.operations = SqlOperationRepo(session, dialect)
        self.marks = SqlMarkRepo(session, dialect)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # close() rolls back anything not committed and returns the connection to the pool.
        await self._session.close()

    async def commit(self) -> None:
        """Commit the work so far; the unit stays usable for a new transaction."""
        await self._session.commit()

    async def rollback(self) -> None:
        """Discard the work since the last commit."""
        await self._session.rollback()


class Database:
    """Owns the async engine and session factory of one database.

    ``start()`` opens an existing database whose schema is up to date and creates nothing;
    ``upgrade()`` creates or migrates it (`vfbot db upgrade`, and `serve`/`worker` at start).
    Driver errors surface as `DatabaseUnavailableError` (``bot.store.sql.errors``).
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        schema: str | None = None,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        """`busy_timeout_ms`: how long SQLite waits for another process's write lock."""
        self._url = make_url(normalize_database_url(url))
        self._target = Target.of(self._url)
        self._dialect = self._target.dialect
        if schema is not None:
            if self._dialect != "postgresql":
                raise ValueError("schema is only supported on PostgreSQL")
            if not _SCHEMA_NAME.fullmatch(schema):
                raise ValueError("schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        self._schema = schema
        self._echo = echo
        self._busy_timeout_ms = busy_timeout_ms
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._file: FileIdentity | None = None

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    @property
    def target(self) -> Target:
        """What DATABASE_URL points at, safe to show."""
        return self._target

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema the tables live in (None: the search path's default)."""
        return self._schema

    def _create_engine(self, *, migrating: bool = False) -> AsyncEngine:
        url = self._url
        connect_args: dict[str, object] = {}
        if self._schema is not None:
            connect_args["server_settings"] = {"search_path": self._schema}
        pool: dict[str, int] = {}
        if self._target.path is not None:
            url = file_url(url, self._target.path, create=migrating)
            # One connection: this process's writers queue for it instead of racing for
            # SQLite's single write lock, so a busy moment waits instead of failing with
            # "database is locked" (busy_timeout covers other processes on the file).
            pool = {"pool_size": 1, "max_overflow": 0}
        engine = create_async_engine(url, echo=self._echo, connect_args=connect_args, **pool)
        install_translation(engine, self._target)
        if self._dialect == "sqlite":
            set_pragmas(engine, migrating=migrating, busy_ms=self._busy_timeout_ms)
        return engine

    def _missing(self) -> bool:
        return self._target.path is not None and not self._target.path.exists()

    async def start(self) -> None:
        """Open the database; it must exist and be at this vfbot's schema revision.

        Raises `DatabaseUnavailableError`: MISSING (no SQLite file, or no vfbot tables),
        OUTDATED (run `vfbot db upgrade`), UNKNOWN_SCHEMA, or what connecting ran into.
        """
        if self._engine is not None:
            return
        if self._missing():
            raise unavailable(DatabaseProblem.MISSING, self._target)
        engine = self._create_engine()
        try:
            async with engine.connect() as conn:
                status = await conn.run_sync(read_status, self._target)
            _require_current(status, self._target)
            if self._target.path is not None:
                self._file = FileIdentity.of(self._target.path)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def upgrade(self) -> tuple[UpgradeResult, bool]:
        """Create the database if it is missing and apply every pending migration; returns what
        was done and whether vfbot's tables were created now (a new, empty database).

        Safe to run from several processes at once: SQLite serialises on ``BEGIN IMMEDIATE``,
        PostgreSQL on an advisory lock held for the transaction, and the late ones find the
        work done. One transaction: a failed upgrade changes nothing.
        """
        engine = self._create_engine(migrating=True)
        try:
            async with engine.begin() as conn:
                if self._dialect == "postgresql":
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK_KEY}
                    )
                    if self._schema is not None:
                        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"'))
                result = await conn.run_sync(upgrade_schema, self._target)
        finally:
            await engine.dispose()
        return result, result.before is None

    async def status(self) -> SchemaStatus:
        """The schema revision of the database and what `upgrade` would apply; creates nothing.

        Raises `DatabaseUnavailableError` (MISSING for a missing SQLite file).
        """
        if self._missing():
            raise unavailable(DatabaseProblem.MISSING, self._target)
        engine = self._create_engine()
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read_status, self._target)
        finally:
            await engine.dispose()

    async def backup(self, target: Path) -> BackupResult:
        """Copy the SQLite database to `target` online (``bot.store.sql.sqlite.backup``).

        Raises `DatabaseUnavailableError` for a missing file or a driver error, ``ValueError`` on
        PostgreSQL, ``FileExistsError`` if `target` exists and ``OSError`` if it cannot be
        written.
        """
        source = self._target.path
        if source is None:
            raise ValueError("only SQLite files are backed up by vfbot; use pg_dump")
        if self._missing():
            raise unavailable(DatabaseProblem.MISSING, self._target)
        try:
            return await asyncio.to_thread(backup_file, source, target)
        except sqlite3.Error as error:
            translated = translate(error, self._target)
            if translated is None:
                raise
            raise translated from error

    async def stop(self) -> None:
        """Dispose of the engine and its pooled connections; safe to call twice."""
        engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    def _session(self) -> AsyncSession:
        if self._sessions is None:
            raise RuntimeError("Database.start() has not been called")
        self.check_file()
        return self._sessions()

    def check_file(self) -> None:
        """Raise `DatabaseUnavailableError` (VANISHED) if the SQLite file opened at start was
        deleted or replaced since; one ``stat``, done before every unit of work."""
        if self._file is not None and not self._file.still_there():
            raise unavailable(DatabaseProblem.VANISHED, self._target)

    def uow(self) -> SqlUnitOfWork:
        """Return a new unit of work (one session); raises ``RuntimeError`` before ``start()``."""
        return SqlUnitOfWork(self._session(), self._dialect)

    def slack_store(self) -> SqlSlackStore:
        """The Slack adapter's store over this database (sessions opened per call)."""
        return SqlSlackStore(self._session, self._dialect)

    def hook_store(self) -> SqlHookStore:
        """The webhook receiver's record of handled deliveries (sessions opened per call)."""
        return SqlHookStore(self._session, self._dialect)

    async def ping(self) -> bool:
        """Return True if the database answers ``SELECT 1`` (and its file is still there)."""
        if self._engine is None:
            return False
        try:
            self.check_file()
            async with self._engine.connect() as conn:
                await conn.execute(select(1))
        except (SQLAlchemyError, OSError, DatabaseUnavailableError):
            return False
        return True


def _require_current(status: SchemaStatus, target: Target) -> None:
    if status.up_to_date:
        return
    if status.current is None:
        raise DatabaseUnavailableError(
            DatabaseProblem.MISSING,
            f"{target.subject} holds no vfbot tables; run `vfbot db upgrade` to create them, or "
            "check DATABASE_URL.",
        )
    raise DatabaseUnavailableError(
        DatabaseProblem.OUTDATED,
        f"{target.subject} has an older schema (revision {status.current}; this vfbot needs "
        f"{status.head}). Back it up, then run `vfbot db upgrade` (docs/operations.md, "
        "'Database').",
    )
