"""Driver errors become `DatabaseUnavailableError` here, and only here (sqlite3 and asyncpg codes).

Installed on every engine (`install`): SQLAlchemy's ``handle_error`` hook replaces a classified
error, and the connect hook catches what never reaches it (a refused TCP connection is an
``OSError``). Errors the store expects (``IntegrityError`` for a claimed server id) and
programming errors pass through unchanged.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError

__all__ = ["Target", "install", "translate", "unavailable"]

P = DatabaseProblem

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_EXACT: Mapping[str, DatabaseProblem] = {
    "3D000": P.MISSING,  # invalid_catalog_name: no such database
    "53100": P.DISK_FULL,
    "25006": P.READ_ONLY,  # read_only_sql_transaction: a standby, or default_transaction_read_only
    "42501": P.REFUSED,  # insufficient_privilege
    "55P03": P.LOCKED,  # lock_not_available
    "40P01": P.LOCKED,  # deadlock_detected
    "57P01": P.UNREACHABLE,  # admin_shutdown
    "57P02": P.UNREACHABLE,  # crash_shutdown
    "57P03": P.UNREACHABLE,  # cannot_connect_now (starting up)
}
_PG_CLASS: Mapping[str, DatabaseProblem] = {
    "08": P.UNREACHABLE,  # connection exception
    "28": P.REFUSED,  # invalid authorization (role, password)
    "53": P.UNREACHABLE,  # insufficient resources other than disk: too many connections, memory
}
# sqlite3's extended result code names (Python 3.11+ sets `sqlite_errorname`).
_SQLITE_PREFIX: tuple[tuple[str, DatabaseProblem], ...] = (
    ("SQLITE_READONLY_DBMOVED", P.VANISHED),  # the file was unlinked or renamed under us
    ("SQLITE_READONLY", P.READ_ONLY),
    ("SQLITE_FULL", P.DISK_FULL),
    ("SQLITE_BUSY", P.LOCKED),
    ("SQLITE_LOCKED", P.LOCKED),
    ("SQLITE_CANTOPEN", P.REFUSED),
    ("SQLITE_PERM", P.REFUSED),
    ("SQLITE_IOERR", P.IO_ERROR),
    ("SQLITE_CORRUPT", P.IO_ERROR),
    ("SQLITE_NOTADB", P.IO_ERROR),
)


@dataclass(frozen=True)
class Target:
    """What DATABASE_URL points at, in words safe to show (never the password)."""

    dialect: str  # "sqlite" or "postgresql"
    path: Path | None  # the SQLite file (absolute); None for PostgreSQL and in-memory SQLite
    host: str
    database: str
    user: str

    @classmethod
    def of(cls, url: URL) -> Target:
        if url.get_backend_name() == "sqlite":
            name = url.database or ""
            path = None if name in ("", ":memory:") else Path(name).absolute()
            return cls("sqlite", path, "", name, "")
        host = f"{url.host or 'localhost'}:{url.port or 5432}"
        return cls("postgresql", None, host, url.database or "", url.username or "")

    @property
    def subject(self) -> str:
        """`name` starting a sentence."""
        return self.name[:1].upper() + self.name[1:]

    @property
    def name(self) -> str:
        """``the SQLite file /srv/vfbot.db`` or ``PostgreSQL database "vfbot" at db:5432``."""
        if self.dialect == "sqlite":
            return f"the SQLite file {self.path}" if self.path else "an in-memory SQLite database"
        return f'PostgreSQL database "{self.database}" at {self.host}'


def _sqlite_problem(error: BaseException) -> DatabaseProblem | None:
    name = getattr(error, "sqlite_errorname", None)
    if not isinstance(name, str):
        return None
    return next((problem for prefix, problem in _SQLITE_PREFIX if name.startswith(prefix)), None)


def _pg_problem(error: BaseException) -> DatabaseProblem | None:
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    cause = error.__cause__
    if code is None and cause is not None:
        code = getattr(cause, "sqlstate", None)
    if isinstance(code, str) and code:
        return _PG_EXACT.get(code) or _PG_CLASS.get(code[:2])
    # asyncpg's InterfaceError "connection is closed" and friends carry no SQLSTATE.
    names = {type(error).__name__, type(cause).__name__ if cause is not None else ""}
    if names & {"ConnectionDoesNotExistError", "InterfaceError", "InternalClientError"}:
        text = str(cause or error).lower()
        if "closed" in text or "connection" in text:
            return P.UNREACHABLE
    return None


def _detail(error: BaseException) -> str:
    text = str(error.__cause__ or error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _advice(problem: DatabaseProblem, target: Target, detail: str) -> str:
    """One line: what is wrong with the database and what to do about it."""
    where, subject = target.name, target.subject
    if target.dialect == "sqlite":
        path = target.path
        advice = {
            P.MISSING: f"There is no database at {path}; run `vfbot db upgrade` to create it, "
            "or check DATABASE_URL.",
            P.VANISHED: f"{subject} was deleted or replaced while vfbot had it open; vfbot stopped "
            "using it so nothing is written to a lost file. Put the file back (or restore a "
            "backup), check DATABASE_URL, and start vfbot again.",
            P.READ_ONLY: f"{subject} is read-only ({detail}); let the user running vfbot write the "
            f"file and its directory {path.parent if path else ''} (SQLite writes -wal and -shm "
            "files beside it).",
            P.DISK_FULL: f"The disk holding {where} is full; free space there (vfbot changed "
            "nothing it could not finish).",
            P.LOCKED: f"{subject} is locked by another process ({detail}); find it with "
            f"`fuser {path}` (a long sqlite3 session or a copy tool), or wait.",
            P.REFUSED: f"Cannot open {where} ({detail}); check that its directory exists and "
            "that vfbot may write there, or fix DATABASE_URL.",
            P.IO_ERROR: f"{subject} cannot be read or written ({detail}); check the disk "
            "(dmesg), then restore the latest backup (`vfbot db backup` makes them).",
        }
    else:
        advice = {
            P.MISSING: f"There is no database at DATABASE_URL ({where}: {detail}); create it "
            f"(createdb {target.database}) and run `vfbot db upgrade`, or check DATABASE_URL.",
            P.READ_ONLY: f"{subject} accepts no writes ({detail}); point DATABASE_URL at the "
            "primary server, not a standby.",
            P.DISK_FULL: f"{subject} is out of disk space ({detail}); free space on the "
            "database server.",
            P.LOCKED: f"{subject} kept vfbot waiting on a lock ({detail}); it tries again.",
            P.UNREACHABLE: f"Cannot reach {where} ({detail}); check that PostgreSQL is running "
            "and that DATABASE_URL's host and port are right.",
            P.REFUSED: f"{subject} refused user {target.user!r} ({detail}); check the user and "
            "password in DATABASE_URL and the database's grants.",
            P.IO_ERROR: f"{subject} failed ({detail}); see the PostgreSQL server's log.",
        }
    return advice.get(problem, f"{subject}: {detail}")


def unavailable(
    problem: DatabaseProblem, target: Target, detail: str = ""
) -> DatabaseUnavailableError:
    """The error for `problem` at `target`, worded with what to do."""
    return DatabaseUnavailableError(problem, _advice(problem, target, detail))


def _connect_detail(error: OSError | TimeoutError) -> str:
    if isinstance(error, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno).lower()
    return _detail(error) if str(error) else "no answer in time"


def translate(error: BaseException, target: Target) -> DatabaseUnavailableError | None:
    """The `DatabaseUnavailableError` for a driver error, or None to let it pass unchanged."""
    if isinstance(error, DatabaseUnavailableError):
        return error
    if isinstance(error, (OSError, TimeoutError)) and target.dialect == "postgresql":
        return unavailable(P.UNREACHABLE, target, _connect_detail(error))
    orig = getattr(error, "orig", None) or error
    problem = _sqlite_problem(orig) if target.dialect == "sqlite" else _pg_problem(orig)
    if problem is P.REFUSED and target.path is not None and not target.path.exists():
        problem = P.MISSING  # SQLITE_CANTOPEN: vfbot opens files with mode=rw, never creating
    if problem is None:
        return None
    return unavailable(problem, target, _detail(orig))


def install(engine: AsyncEngine, target: Target) -> None:
    """Translate this engine's driver errors (statements, commits and connects)."""

    def on_error(context: ExceptionContext) -> None:
        translated = translate(context.original_exception, target)
        if translated is not None:
            raise translated from context.original_exception

    def on_connect(
        dialect: Dialect,
        _record: ConnectionPoolEntry,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
    ) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except (OSError, TimeoutError) as error:
            translated = translate(error, target)
            if translated is None:
                raise
            raise translated from error

    event.listen(engine.sync_engine, "handle_error", on_error)
    event.listen(engine.sync_engine, "do_connect", on_connect)
