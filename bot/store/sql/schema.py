"""Schema revisions: which one a database is at, and upgrading it with Alembic (the only caller).

The scripts are in ``migrations/versions`` (0001 is the schema of commit 61aa0d7). A database
written before vfbot had migrations has no ``alembic_version`` table; its revision is read from
its tables (`_unversioned_revision`) and recorded before anything is applied. Everything here is
synchronous and runs inside the caller's transaction (``Connection.run_sync``), so an upgrade
that fails changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.store.sql.errors import Target

__all__ = [
    "BASELINE",
    "MIGRATIONS",
    "Revision",
    "SchemaStatus",
    "UpgradeResult",
    "head_revision",
    "read_status",
    "upgrade",
]

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
"""The schema vfbot wrote at commit 61aa0d7, before it had migrations."""

# Written by `create_all` after 61aa0d7 and before migrations: the slack_messages schema.
_LAST_UNVERSIONED = "0002"
_BASELINE_TABLES = frozenset(
    {
        "requests",
        "instances",
        "events",
        "event_deliveries",
        "audit_log",
        "slack_events",
        "operations",
    }
)
_KNOWN_TABLES = _BASELINE_TABLES | {"slack_messages"}


@dataclass(frozen=True)
class Revision:
    """One migration: its id and the first line of its description."""

    id: str
    title: str

    def __str__(self) -> str:
        return f"{self.id} ({self.title})"


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands: `current` is None when it holds no vfbot tables yet."""

    current: str | None
    head: str
    pending: tuple[Revision, ...]  # oldest first
    versioned: bool  # False: tables written before vfbot had migrations

    @property
    def up_to_date(self) -> bool:
        return self.versioned and self.current == self.head


@dataclass(frozen=True)
class UpgradeResult:
    """What `upgrade` did: from `before` (None: empty) to `after`, applying `applied`."""

    before: str | None
    after: str
    applied: tuple[Revision, ...]
    adopted: bool  # recorded the revision of a database written before migrations


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this vfbot knows."""
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - the package ships its scripts
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


def _pending(current: str | None) -> tuple[Revision, ...]:
    scripts = _scripts()
    steps = list(scripts.iterate_revisions(head_revision(), current or "base"))
    return tuple(
        Revision(step.revision, (step.doc or "").splitlines()[0].rstrip("."))
        for step in reversed(steps)
    )


def _unversioned_revision(conn: Connection, target: Target) -> str | None:
    """The revision of tables written without migrations, by their shape; None: no tables."""
    inspector = inspect(conn)
    tables = set(inspector.get_table_names()) & _KNOWN_TABLES
    if not tables:
        return None
    request_columns = (
        {c["name"] for c in inspector.get_columns("requests")} if "requests" in tables else set()
    )
    if tables == _BASELINE_TABLES and "slack_ts" in request_columns:
        return BASELINE
    event_columns = (
        {c["name"] for c in inspector.get_columns("events")} if "events" in tables else set()
    )
    if (
        tables == _KNOWN_TABLES
        and "slack_ts" not in request_columns
        and "operation_id" in event_columns
    ):
        return _LAST_UNVERSIONED
    missing = ", ".join(sorted(_BASELINE_TABLES - tables)) or "none"
    raise DatabaseUnavailableError(
        DatabaseProblem.UNKNOWN_SCHEMA,
        f"{target.subject} holds vfbot tables of no version this vfbot knows (missing tables: "
        f"{missing}); it predates the 61aa0d7 baseline or was changed by hand. Restore a backup, "
        "or point DATABASE_URL at another database.",
    )


def read_status(conn: Connection, target: Target) -> SchemaStatus:
    """The database's revision and what an upgrade would apply.

    Raises `DatabaseUnavailableError` (UNKNOWN_SCHEMA) for a revision this vfbot does not know
    (a newer vfbot upgraded it) or tables it cannot place.
    """
    current = MigrationContext.configure(conn).get_current_revision()  # None: no version row
    versioned = current is not None
    if current is None:
        current = _unversioned_revision(conn, target)
    elif not _known(current):
        raise DatabaseUnavailableError(
            DatabaseProblem.UNKNOWN_SCHEMA,
            f"{target.subject} is at schema revision {current}, which this vfbot does not know "
            f"(it knows up to {head_revision()}): a newer vfbot upgraded it. Run that version, "
            "or restore the backup taken before the upgrade.",
        )
    return SchemaStatus(current, head_revision(), _pending(current), versioned)


def _known(revision: str) -> bool:
    return any(script.revision == revision for script in _scripts().walk_revisions())


def upgrade(conn: Connection, target: Target) -> UpgradeResult:
    """Apply every pending revision on `conn` (inside the caller's transaction and lock).

    On SQLite the caller turns foreign keys off (tables are rebuilt); they are checked here
    before returning, so a migration that broke a reference fails and rolls back.
    """
    status = read_status(conn, target)
    adopted = not status.versioned and status.current is not None
    if adopted and status.current is not None:
        command.stamp(_config(conn), status.current)
    if status.pending:
        command.upgrade(_config(conn), "head")
    if target.dialect == "sqlite":
        broken = conn.execute(text("PRAGMA foreign_key_check")).fetchall()
        if broken:
            tables = ", ".join(sorted({str(row[0]) for row in broken}))
            raise DatabaseUnavailableError(
                DatabaseProblem.IO_ERROR,
                f"{target.subject} has {len(broken)} row(s) whose references point at rows that "
                f"do not exist (in {tables}); the upgrade changed nothing. See them with "
                f"`sqlite3 {target.path} 'PRAGMA foreign_key_check'`, or restore a backup.",
            )
    return UpgradeResult(status.current, head_revision(), status.pending, adopted)
