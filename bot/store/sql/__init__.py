"""SQL adapter of the store (SQLite/aiosqlite and PostgreSQL/asyncpg); never commits for the caller.

The only package importing SQLAlchemy. Every state change is one compare-and-set
``UPDATE ... WHERE state IN (:expected)`` and every claim is one atomic statement, so SQLite (one
writer at a time) and PostgreSQL (``FOR UPDATE SKIP LOCKED`` / ``ON CONFLICT``) agree. One module
per table group: ``requests``, ``instances``, ``events`` (outbox and audit), ``operations`` and
``slack`` (the Slack adapter's own tables). Around them: ``database`` (engines, units of work),
``schema`` (Alembic revisions; scripts in ``migrations/``), ``errors`` (driver errors become
`DatabaseUnavailableError`) and ``sqlite`` (pragmas, file checks, backups).
"""

from bot.store.sql.database import (
    Database,
    SqlUnitOfWork,
    check_database_url,
    database_password,
    normalize_database_url,
)

__all__ = [
    "Database",
    "SqlUnitOfWork",
    "check_database_url",
    "database_password",
    "normalize_database_url",
]
