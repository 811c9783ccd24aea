"""`vfbot db` and the database's life cycle from the shell: created only on purpose, refused when
missing or old, upgraded in place, backed up online, and its errors said in one line."""

from __future__ import annotations

import io
import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from bot.provisioning.engine import Engine
from bot.provisioning.ports import DatabaseProblem, DatabaseUnavailableError
from bot.store.sql.schema import head_revision
from tests.conftest import ThreadedSandbox, Vfbot
from tests.databases import delete_sqlite_files
from tests.store.legacy import SUMMARY, legacy_sqlite

HEAD = head_revision()

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "create.json"


@pytest.fixture(autouse=True)
def plain_output(isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty working directory and plain, wide rich output."""
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def db_path(isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATABASE_URL naming `vfbot.db` in the test's directory (not created)."""
    path = isolated_cwd / "vfbot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def panel(
    sandbox_thread: ThreadedSandbox, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ThreadedSandbox:
    """The panel settings too, pointing at the sandbox."""
    for name, value in {
        "VIRTFUSION_HOST": sandbox_thread.url,
        "VIRTFUSION_API_TOKEN": "sandbox-token",
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
        "VIRTFUSION_RATE_LIMIT": "1000",
        "VF_POLL_INTERVAL": "0.05",
    }.items():
        monkeypatch.setenv(name, value)
    return sandbox_thread


def test_db_commands_need_only_database_url(vfbot: Vfbot, db_path: Path) -> None:
    missing = vfbot("db", "current")
    assert missing.code == EXIT_CONFIG
    assert missing.out.strip() == (
        f"There is no database at {db_path}; run `vfbot db upgrade` to create it, or check "
        "DATABASE_URL."
    )
    assert not db_path.exists()

    created = vfbot("db", "upgrade")
    assert created.code == EXIT_OK, created.everything
    assert created.out.strip() == (
        f"Created the database: the SQLite file {db_path}, at schema revision {HEAD}."
    )
    again = vfbot("db", "upgrade")
    assert again.out.strip() == f"The SQLite file {db_path} is up to date (schema revision {HEAD})."
    current = vfbot("db", "current")
    assert current.code == EXIT_OK
    assert f"Schema revision: {HEAD}\nUp to date" in current.out
    assert "alembic" not in created.logs + again.logs  # vfbot says what was done, once


@pytest.mark.parametrize(
    "argv",
    [("requests",), ("status", "VF-1"), ("cancel", "VF-1"), ("audit",)],
)
def test_other_commands_refuse_a_missing_database_and_create_nothing(
    panel: ThreadedSandbox, vfbot: Vfbot, db_path: Path, argv: tuple[str, ...]
) -> None:
    result = vfbot(*argv)
    assert result.code == EXIT_CONFIG
    assert f"There is no database at {db_path}; run `vfbot db upgrade`" in result.out
    assert "DATABASE_URL" in result.out and "Traceback" not in result.everything
    assert not db_path.exists()


def test_an_old_database_is_refused_until_upgraded_then_shows_everything(
    panel: ThreadedSandbox, vfbot: Vfbot, db_path: Path
) -> None:
    legacy_sqlite(db_path.parent)

    refused = vfbot("status", "VF-1")
    assert refused.code == EXIT_CONFIG
    assert f"has an older schema (revision 0001; this vfbot needs {HEAD})" in refused.out
    assert "run `vfbot db upgrade`" in refused.out

    current = vfbot("db", "current")
    assert current.code == EXIT_FAILED
    assert "Schema revision: 0001 (written before vfbot had migrations)" in current.out
    assert "0002 (Slack message coordinates in their own table" in current.out

    upgraded = vfbot("db", "upgrade")
    assert upgraded.code == EXIT_OK
    upgrade_line = f"Upgraded the SQLite file {db_path} from schema revision 0001 to {HEAD}:"
    assert upgrade_line in upgraded.out

    status = vfbot("status", "VF-1")
    assert status.code == EXIT_OK, status.everything
    assert "VF-1 shop: completed" in status.out
    for name, state, server_id in SUMMARY["VF-1"]["servers"]:
        assert name in status.out and state in status.out and str(server_id) in status.out
    assert "VF-2 broken: failed" in vfbot("status", "VF-2").out


def _wal_with_an_unflushed_row(path: Path) -> sqlite3.Connection:
    """A writer that committed a row which sits in the -wal file only (no checkpoint yet)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, target, result, detail) "
        "VALUES ('2025-01-01 00:00:00', 'U1', 'create', 'VF-1', 'ok', '{}')"
    )
    return conn


def _actors(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [actor for (actor,) in conn.execute("SELECT actor FROM audit_log")]


def test_backup_is_consistent_online_and_includes_the_wal(vfbot: Vfbot, db_path: Path) -> None:
    assert vfbot("db", "upgrade").code == EXIT_OK
    writer = _wal_with_an_unflushed_row(db_path)
    try:
        assert Path(f"{db_path}-wal").stat().st_size > 0
        shutil.copyfile(db_path, db_path.with_name("cp.db"))  # what `cp` would have kept
        backup = vfbot("db", "backup", "nightly.db")
    finally:
        writer.close()
    assert backup.code == EXIT_OK, backup.everything
    assert f"Backed up the SQLite file {db_path} to nightly.db (" in backup.out
    assert "integrity check ok" in backup.out
    assert _actors(db_path.with_name("nightly.db")) == ["U1"]
    assert _actors(db_path.with_name("cp.db")) == []  # the row was only in the -wal file
    with sqlite3.connect(db_path.with_name("nightly.db")) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)

    again = vfbot("db", "backup", "nightly.db")
    assert again.code == EXIT_CONFIG
    assert "nightly.db already exists; name a new file" in again.out


def test_backup_of_postgresql_points_at_pg_dump(
    vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://vfbot:pw-3d1f@db.example.com/vfbot")
    result = vfbot("db", "backup", "vfbot.dump")
    assert result.code == EXIT_CONFIG
    assert "use pg_dump" in result.out.lower() or "pg_dump --format=custom" in result.out
    assert "pw-3d1f" not in result.everything


def test_backup_of_a_missing_database_creates_nothing(vfbot: Vfbot, db_path: Path) -> None:
    result = vfbot("db", "backup", "nightly.db")
    assert result.code == EXIT_CONFIG
    assert "There is no database at" in result.out
    assert not db_path.exists() and not db_path.with_name("nightly.db").exists()


@pytest.mark.parametrize("argv", [("requests",), ("db", "upgrade")])
def test_a_bad_database_url_is_a_configuration_error(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://vfbot:pw-3d1f@db:port/vfbot")
    result = vfbot(*argv)
    assert result.code == EXIT_CONFIG
    assert "DATABASE_URL is malformed" in result.err
    assert "pw-3d1f" not in result.everything and "Traceback" not in result.everything


def test_unreachable_postgresql_is_one_line(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:pw-3d1f@127.0.0.1:{port}/vfbot")
    result = vfbot("requests")
    assert result.code == EXIT_FAILED
    assert result.out.strip() == (
        f'Cannot reach PostgreSQL database "vfbot" at 127.0.0.1:{port} (connection refused); '
        "check that PostgreSQL is running and that DATABASE_URL's host and port are right."
    )
    assert "Traceback" not in result.everything and "pw-3d1f" not in result.everything


# -- the worker ---------------------------------------------------------------------------------


def test_first_worker_start_creates_the_database_and_says_so(
    panel: ThreadedSandbox, vfbot: Vfbot, db_path: Path
) -> None:
    result = vfbot("worker", "--until-idle")
    assert result.code == EXIT_OK, result.everything
    assert f"Created a new, empty database: the SQLite file {db_path} (DATABASE_URL)" in (
        result.logs
    )
    assert db_path.exists()


def test_worker_upgrades_an_old_database_and_finishes_its_work(
    panel: ThreadedSandbox, vfbot: Vfbot, db_path: Path
) -> None:
    legacy_sqlite(db_path.parent)
    panel.state.next_server_id = 1000  # past the ids the 61aa0d7 run recorded
    result = vfbot("worker", "--until-idle")
    assert result.code == EXIT_OK, result.everything
    assert f"Upgraded the SQLite file {db_path} from schema revision 0001 to {HEAD}" in result.logs
    assert "VF-3: finished: completed" in result.out
    status = vfbot("status", "VF-3")
    assert "app-1" in status.out and "app-2" in status.out and "built" in status.out


def test_worker_waits_out_a_locked_database(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert vfbot("db", "upgrade").code == EXIT_OK
    original = Engine.run_once
    failures = [2]

    async def locked_twice(self: Engine) -> object:
        if failures[0]:
            failures[0] -= 1
            raise DatabaseUnavailableError(
                DatabaseProblem.LOCKED, "The SQLite file x is locked by another process."
            )
        return await original(self)

    monkeypatch.setattr(Engine, "run_once", locked_twice)
    result = vfbot("worker", "--until-idle")
    assert result.code == EXIT_OK, result.everything
    assert result.logs.count("is locked by another process. Retrying until it answers") == 1
    assert "The database answers again; the worker carries on" in result.logs
    assert "Traceback" not in result.everything


def test_a_running_worker_whose_file_vanishes_stops_and_says_why(
    panel: ThreadedSandbox, vfbot: Vfbot, db_path: Path
) -> None:
    assert vfbot("db", "upgrade").code == EXIT_OK
    out = io.StringIO()
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(main(["worker"], stdout=out)))
    worker.start()
    deadline = time.monotonic() + 10
    while "started" not in out.getvalue():
        assert time.monotonic() < deadline and worker.is_alive(), out.getvalue()
        time.sleep(0.01)
    delete_sqlite_files(db_path)
    worker.join(timeout=10)
    assert not worker.is_alive() and codes == [EXIT_FAILED]
    assert f"The SQLite file {db_path} was deleted or replaced while vfbot had it open" in (
        out.getvalue()
    )
    assert not db_path.exists()


def test_serve_refuses_a_database_of_a_newer_vfbot_before_anything_else(
    panel: ThreadedSandbox, vfbot: Vfbot, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert vfbot("db", "upgrade").code == EXIT_OK
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-a-real-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "not-a-real-secret")
    monkeypatch.setenv("VF_APPROVERS", "U0APPROVER")
    with socket.socket() as sock:  # never bound: the database fails first
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("PORT", str(sock.getsockname()[1]))
    result = vfbot("serve")
    assert result.code == EXIT_CONFIG
    assert "is at schema revision 0099, which this vfbot does not know" in result.out
    assert "Traceback" not in result.everything and "Unclosed" not in result.everything
