"""What only SQLite needs: connection pragmas, never creating a file by accident, noticing the file
vanish, and online backups with the sqlite3 backup API."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["BackupResult", "FileIdentity", "backup", "file_url", "set_pragmas"]

# How long a statement waits for another process's lock before SQLITE_BUSY. Migrations wait
# longer: a second replica starting at once waits for the first one's upgrade to finish.
BUSY_TIMEOUT_MS = 5000
MIGRATION_BUSY_TIMEOUT_MS = 60000


def file_url(url: URL, path: Path, *, create: bool) -> URL:
    """`url` opening `path` through a SQLite URI: ``mode=rw`` never creates a missing file (a
    deleted database must not come back empty); ``mode=rwc`` may (`vfbot db upgrade`)."""
    return url.set(
        database=f"file:{quote(str(path))}",
        query={**url.query, "mode": "rwc" if create else "rw", "uri": "true"},
    )


def _pragmas(dbapi_connection: DBAPIConnection, *, busy_ms: int, foreign_keys: bool) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL may itself wait for a lock.
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: a power loss must not roll back a committed create intent, or the
        # engine would create that server a second time (docs/benchmarks.md has the cost).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    finally:
        cursor.close()


def set_pragmas(
    engine: AsyncEngine, *, migrating: bool = False, busy_ms: int = BUSY_TIMEOUT_MS
) -> None:
    """Pragmas for every connection of `engine`, and ``BEGIN IMMEDIATE`` for every transaction.

    The driver's own transaction handling is off: each transaction takes the write lock when it
    begins, waiting for it up to the busy timeout. A deferred one that read, then writes after
    another connection committed, cannot wait: SQLite fails it at once with "database is
    locked", whatever the timeout. So concurrent writers queue instead of failing, and the
    whole upgrade, DDL included, is one transaction that commits or rolls back as a unit.

    `migrating`: foreign keys off (Alembic rebuilds tables, and dropping a referenced table
    would cascade), and a longer wait for the lock (another replica's upgrade).
    """

    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        _pragmas(
            dbapi_connection,
            busy_ms=MIGRATION_BUSY_TIMEOUT_MS if migrating else busy_ms,
            foreign_keys=not migrating,
        )

    def on_begin(conn: Connection) -> None:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock up front
        except Exception as error:
            if not _read_only(error):
                raise
            conn.exec_driver_sql("BEGIN")  # a read-only file can still be read

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)


def _read_only(error: BaseException) -> bool:
    """Whether SQLite refused the write lock because the database is read-only."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlite3.Error) and getattr(seen, "sqlite_errorname", "").startswith(
            "SQLITE_READONLY"
        ):
            return True
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "orig", None)
    return False


@dataclass(frozen=True)
class FileIdentity:
    """The database file as it was when opened (device and inode)."""

    path: Path
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """The identity of `path` now; raises ``OSError`` if it is missing."""
        stat = os.stat(path)
        return cls(path, stat.st_dev, stat.st_ino)

    def still_there(self) -> bool:
        """False when the file was deleted, or replaced by another file (one ``stat``)."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == (self.device, self.inode)


@dataclass(frozen=True)
class BackupResult:
    """A finished backup: where, how big, and that SQLite found it intact."""

    path: Path
    size_bytes: int


def backup(source: Path, target: Path) -> BackupResult:
    """Copy the live database `source` to the new file `target` with the backup API.

    Consistent while vfbot runs (one read transaction, so writers are not blocked in WAL
    mode) and includes what is still in the ``-wal`` file. The copy is written beside
    `target` and renamed into place once `PRAGMA integrity_check` passes; it is a plain
    single-file database (journal_mode=DELETE). Raises ``FileExistsError`` if `target` exists,
    ``sqlite3.Error`` or ``OSError`` on failure.
    """
    if target.exists():
        raise FileExistsError(str(target))
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{quote(str(source))}?mode=rw", uri=True)
    try:
        src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"the copy failed its integrity check: {verdict}")
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return BackupResult(target, target.stat().st_size)
