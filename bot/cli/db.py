"""`vfbot db upgrade`, `db current` and `db backup`: the database's schema and its backups.

They read DATABASE_URL (and LOG_LEVEL) only, so they run without the panel's settings: an
init container or a cron job needs nothing else.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bot.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, AddParser
from bot.config import ConfigError, DatabaseSettings, Settings, load_database_settings
from bot.provisioning.servers.model import format_bytes

__all__ = ["add_parsers", "cmd_db_backup", "cmd_db_current", "cmd_db_upgrade"]

_DOC = "docs/operations.md, 'Database'"


def _database_url(args: argparse.Namespace) -> str:
    settings = args.settings
    if not isinstance(settings, (Settings, DatabaseSettings)):
        raise ConfigError(["this command needs DATABASE_URL"])
    return settings.database_url


async def cmd_db_upgrade(args: argparse.Namespace, out: Console) -> int:
    """Create the database if it is missing, or apply the migrations it lacks."""
    from bot.factories import make_database  # SQLAlchemy and Alembic: only when a db command runs

    db = make_database(_database_url(args))
    result, created = await db.upgrade()
    where, subject = db.target.name, db.target.subject
    if created:
        out.print(
            f"Created the database: {where}, at schema revision {result.after}.", markup=False
        )
        return EXIT_OK
    if result.adopted:
        out.print(
            f"{subject} was written before vfbot had migrations; recorded it as revision "
            f"{result.before}.",
            markup=False,
        )
    if not result.applied:
        out.print(f"{subject} is up to date (schema revision {result.after}).", markup=False)
        return EXIT_OK
    out.print(
        f"Upgraded {where} from schema revision {result.before} to {result.after}:", markup=False
    )
    for revision in result.applied:
        out.print(f"  {revision}", markup=False)
    return EXIT_OK


async def cmd_db_current(args: argparse.Namespace, out: Console) -> int:
    """The database's schema revision and whether it is up to date: exit 0 up to date, 1 an
    upgrade is pending, 2 no database."""
    from bot.factories import make_database  # SQLAlchemy and Alembic: only when a db command runs

    db = make_database(_database_url(args))
    status = await db.status()
    out.print(f"Database: {db.target.name}", markup=False)
    if status.current is None:
        out.print(
            f"Schema revision: none (no vfbot tables yet; this vfbot needs {status.head}). "
            "Run `vfbot db upgrade` to create them.",
            markup=False,
        )
        return EXIT_FAILED
    before = "" if status.versioned else " (written before vfbot had migrations)"
    out.print(f"Schema revision: {status.current}{before}", markup=False)
    if status.up_to_date:
        out.print(f"Up to date: this vfbot needs {status.head}.", markup=False)
        return EXIT_OK
    count = len(status.pending)
    out.print(
        f"Behind: this vfbot needs {status.head}; {count} migration{'s' if count != 1 else ''} "
        "to apply:",
        markup=False,
    )
    for revision in status.pending:
        out.print(f"  {revision}", markup=False)
    out.print(
        "Back the database up (`vfbot db backup FILE` on SQLite, pg_dump on PostgreSQL), then "
        "run `vfbot db upgrade`; `vfbot serve` and `vfbot worker` also upgrade when they start.",
        markup=False,
    )
    return EXIT_FAILED


async def cmd_db_backup(args: argparse.Namespace, out: Console) -> int:
    """A consistent copy of the live SQLite database, -wal included, to a new FILE."""
    from bot.factories import make_database  # SQLAlchemy and Alembic: only when a db command runs

    db = make_database(_database_url(args))
    target = Path(args.file)
    if db.target.path is None:
        out.print(
            f"vfbot db backup copies SQLite files; DATABASE_URL names {db.target.name}. Back it "
            f"up with pg_dump, e.g. `pg_dump --format=custom --file={target} "
            f"{db.target.database}` ({_DOC}).",
            markup=False,
        )
        return EXIT_CONFIG
    try:
        result = await db.backup(target)
    except FileExistsError:
        out.print(
            f"{target} already exists; name a new file (vfbot never overwrites a backup).",
            markup=False,
        )
        return EXIT_CONFIG
    except OSError as error:
        out.print(f"Cannot write {target}: {error.strerror or error}.", markup=False)
        return EXIT_FAILED
    out.print(
        f"Backed up {db.target.name} to {result.path} ({format_bytes(result.size_bytes)}, "
        "integrity check ok). Restore: stop vfbot, copy the file over DATABASE_URL's file, "
        "delete any -wal and -shm files beside it, start vfbot.",
        markup=False,
    )
    return EXIT_OK


def add_parsers(add_parser: AddParser) -> None:
    """Add `db upgrade`, `db current` and `db backup` to `vfbot`'s sub-commands."""
    db = add_parser(
        "db",
        help="the database: upgrade its schema, show its revision, back it up",
        description="Commands for the database DATABASE_URL names; they need no panel settings.",
    )
    db.set_defaults(load_settings=load_database_settings)
    sub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    sub.add_parser(
        "upgrade", help="create the database, or apply the migrations it lacks"
    ).set_defaults(run=cmd_db_upgrade)
    sub.add_parser(
        "current", help="the schema revision, and whether an upgrade is pending (exit 1)"
    ).set_defaults(run=cmd_db_current)
    backup = sub.add_parser("backup", help="copy the live SQLite database to a new file")
    backup.add_argument("file", help="the new backup file (never overwritten)")
    backup.set_defaults(run=cmd_db_backup)
