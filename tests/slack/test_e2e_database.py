"""`vfbot serve` and its database: a 61aa0d7 database is upgraded at start and its approved
request built in the old thread; a database file deleted under it is said, never recreated."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from bot.provisioning.model import RequestState
from bot.store.sql.schema import head_revision
from tests.databases import delete_sqlite_files, sqlite_files
from tests.slack.conftest import CHANNEL, SlackHarness
from tests.store.legacy import SQLITE, SUMMARY


async def test_serve_upgrades_at_start_and_continues_the_old_threads(
    slack_env: Any, tmp_path: Path
) -> None:
    shutil.copyfile(SQLITE, tmp_path / "slack.db")  # where the harness's DATABASE_URL points
    h: SlackHarness = await slack_env()
    assert any(
        "Upgraded the SQLite file" in r.getMessage()
        and f"from schema revision 0001 to {head_revision()}" in r.getMessage()
        for r in h.logs
    )
    roots = {name: SUMMARY[name]["slack"][1] for name in ("VF-1", "VF-2", "VF-3", "OP-1")}
    for name, ts in roots.items():  # the workspace still holds what 61aa0d7 posted
        h.slack.seed_message(CHANNEL, ts, text=name)
    h.sandbox.state.next_server_id = 1000

    await h.run_engine(ticks=12)

    record, instances = await h.runtime.core.requests.get(3)
    assert record.state is RequestState.COMPLETED
    assert sorted(i.server_id for i in instances) == [1000, 1001]
    thread = h.slack.thread(CHANNEL, roots["VF-3"])
    texts = "\n".join(str(m.get("text", "")) for m in thread)
    assert "app-1" in texts and "app-2" in texts
    assert [m for m in thread if m.get("reply_broadcast")], "the completion notice"
    updates = [c.params["ts"] for c in h.slack.calls_to("chat.update")]
    assert roots["VF-3"] in updates  # the old root message shows the new state
    for finished in ("VF-1", "VF-2", "OP-1"):  # nothing new happened to them
        assert h.slack.thread(CHANNEL, roots[finished]) == []
        assert roots[finished] not in updates


async def test_a_deleted_database_file_is_said_and_never_recreated(
    slack_env: Any, tmp_path: Path
) -> None:
    h: SlackHarness = await slack_env()
    delete_sqlite_files(tmp_path / "slack.db")

    await h.command("status VF-1")
    assert any(
        "vfbot's database cannot be used (vanished), so nothing changed" in t
        for t in h.ephemeral_texts()
    )
    await h.runtime.ops.readiness.refresh(force=True)  # what the background check does
    async with h.http.get(f"http://127.0.0.1:{h.runtime.bound_port}/readyz") as response:
        assert response.status == 503
        assert (await response.json())["checks"]["database"]["ok"] is False
    logged = [r.getMessage() for r in h.logs if r.levelno >= logging.ERROR]
    assert any("was deleted or replaced while vfbot had it open" in m for m in logged)
    assert not any(r.exc_info for r in h.logs if r.levelno >= logging.ERROR)
    assert sqlite_files(tmp_path / "slack.db") == []
