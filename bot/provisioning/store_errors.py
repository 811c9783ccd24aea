"""The failures the store may raise, in the domain's terms: the adapters translate the drivers'
errors into these, and the surfaces word them (`vfbot db`, Slack's "try again" notes).

`bot.provisioning.ports` re-exports them beside the repositories that raise them.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "DatabaseProblem",
    "DatabaseUnavailableError",
    "ServerAlreadyClaimedError",
    "StoreError",
]


class StoreError(Exception):
    """Base class for expected failures raised by the store."""


class DatabaseProblem(Enum):
    """Why the database cannot be used; the adapter decides which from the driver's error."""

    MISSING = "missing"  # nothing at DATABASE_URL (no SQLite file, no such database, no tables)
    VANISHED = "vanished"  # the SQLite file was deleted or replaced while vfbot had it open
    OUTDATED = "outdated"  # an older schema: `vfbot db upgrade` brings it up to date
    UNKNOWN_SCHEMA = "unknown schema"  # a newer vfbot's schema, or tables vfbot did not write
    READ_ONLY = "read-only"
    DISK_FULL = "disk full"
    LOCKED = "locked"  # another process holds a lock longer than the wait allows
    UNREACHABLE = "unreachable"  # the server does not answer, or dropped the connection
    REFUSED = "refused"  # the server answered but refused the login or the access
    IO_ERROR = "I/O error"  # the file is damaged or the disk fails

    @property
    def transient(self) -> bool:
        """True when trying again later may work without anyone changing anything."""
        return self in (DatabaseProblem.LOCKED, DatabaseProblem.UNREACHABLE)

    @property
    def setup(self) -> bool:
        """True when the fix is in the setup (DATABASE_URL, a missing upgrade), not at run time."""
        return self in (
            DatabaseProblem.MISSING,
            DatabaseProblem.OUTDATED,
            DatabaseProblem.UNKNOWN_SCHEMA,
            DatabaseProblem.REFUSED,
        )


class DatabaseUnavailableError(StoreError):
    """The database cannot be used; ``str()`` is one line naming the cause and what to do.

    Raised by the SQL adapter in place of the driver's error; nothing of the failed unit of work
    was committed, so no intent is lost by it.
    """

    def __init__(self, problem: DatabaseProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem

    @property
    def transient(self) -> bool:
        """True when trying again later may work (a lock, a connection)."""
        return self.problem.transient


class ServerAlreadyClaimedError(StoreError):
    """A panel server id is already recorded on another instance (server ids are unique)."""

    def __init__(self, server_id: int) -> None:
        super().__init__(f"server {server_id} is already claimed by another instance")
        self.server_id = server_id
