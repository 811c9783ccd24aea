"""`vfbot serve` on a database written by vfbot 61aa0d7: it upgrades at start, says so, and the
request that database left approved is built with its progress in the request's old thread."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bot.provisioning.model import RequestState
from tests.slack.conftest import CHANNEL, SlackHarness
from tests.store.legacy import SQLITE, SUMMARY


async def test_serve_upgrades_at_start_and_continues_the_old_threads(
    slack_env: Any, tmp_path: Path
) -> None:
    shutil.copyfile(SQLITE, tmp_path / "slack.db")  # where the harness's DATABASE_URL points
    h: SlackHarness = await slack_env()
    assert any(
        "Upgraded the SQLite file" in r.getMessage()
        and "from schema revision 0001 to 0002" in r.getMessage()
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
