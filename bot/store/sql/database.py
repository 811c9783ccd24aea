"""The engine, sessions and unit of work; the only module that creates SQLAlchemy engines."""

from __future__ import annotations

import re
from typing import Self

from sqlalchemy import Connection, event, select, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from bot.store.sql.events import SqlAuditRepo, SqlEventRepo
from bot.store.sql.instances import SqlInstanceRepo
from bot.store.sql.operations import SqlOperationRepo
from bot.store.sql.requests import SqlRequestRepo
from bot.store.sql.slack import SqlSlackStore
from bot.store.sql.tables import Base

__all__ = ["Database", "SqlUnitOfWork", "normalize_database_url"]

_SCHEME_ALIASES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Serialises `create_all` across replicas starting at once (arbitrary constant key).
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


class SqlUnitOfWork:
    """One session per unit; leaving the ``async with`` block without ``commit`` rolls back."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self.requests = SqlRequestRepo(session, dialect)
        self.instances = SqlInstanceRepo(session, dialect)
        self.events = SqlEventRepo(session, dialect)
        self.audit = SqlAuditRepo(session, dialect)
        self.operations = SqlOperationRepo(session, dialect)

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


def _set_sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL may itself wait for a lock.
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: a power loss must not roll back a committed create intent, or the
        # engine would create that server a second time (docs/benchmarks.md has the cost).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
    # The driver's own transaction handling off: `_begin_immediate` opens every transaction.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    """Every SQLite transaction takes the write lock at BEGIN, waiting for it (busy_timeout).

    A deferred transaction that reads, then writes after another connection committed cannot
    wait: SQLite fails it at once with "database is locked" (its snapshot is stale), whatever
    the busy timeout. Taking the lock up front makes concurrent writers queue instead.
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the async engine and session factory; ``start()`` also creates missing tables."""

    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None) -> None:
        self._url = normalize_database_url(url)
        self._dialect = "sqlite" if self._url.startswith("sqlite") else "postgresql"
        if schema is not None:
            if self._dialect != "postgresql":
                raise ValueError("schema is only supported on PostgreSQL")
            if not _SCHEMA_NAME.fullmatch(schema):
                raise ValueError("schema must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        self._schema = schema
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    async def start(self) -> None:
        """Create the engine and any missing tables (and the schema, if one was given)."""
        if self._engine is not None:
            return
        connect_args: dict[str, object] = {}
        if self._schema is not None:
            connect_args["server_settings"] = {"search_path": self._schema}
        engine = create_async_engine(self._url, echo=self._echo, connect_args=connect_args)
        if self._dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _begin_immediate)
        try:
            async with engine.begin() as conn:
                if self._dialect == "postgresql":
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK_KEY}
                    )
                    if self._schema is not None:
                        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"'))
                await conn.run_sync(Base.metadata.create_all)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def stop(self) -> None:
        """Dispose of the engine and its pooled connections; safe to call twice."""
        engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    def _session(self) -> AsyncSession:
        if self._sessions is None:
            raise RuntimeError("Database.start() has not been called")
        return self._sessions()

    def uow(self) -> SqlUnitOfWork:
        """Return a new unit of work (one session); raises ``RuntimeError`` before ``start()``."""
        return SqlUnitOfWork(self._session(), self._dialect)

    def slack_store(self) -> SqlSlackStore:
        """The Slack adapter's store over this database (sessions opened per call)."""
        return SqlSlackStore(self._session, self._dialect)

    async def ping(self) -> bool:
        """Return True if the database answers ``SELECT 1``."""
        if self._engine is None:
            return False
        try:
            async with self._engine.connect() as conn:
                await conn.execute(select(1))
        except (SQLAlchemyError, OSError):
            return False
        return True
