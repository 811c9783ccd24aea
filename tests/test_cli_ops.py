"""`vfbot` day-2 commands end to end: `main()` against the threaded sandbox and a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from bot.provisioning.servers.model import TrafficSummary, format_bytes
from tests.conftest import ThreadedSandbox, Vfbot
from tests.databases import new_sqlite_file

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "create.json"


@pytest.fixture
def panel(
    sandbox_thread: ThreadedSandbox, isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> ThreadedSandbox:
    """Settings pointing at the sandbox, a SQLite file in tmp_path, plain wide output."""
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    settings = {
        "VIRTFUSION_HOST": sandbox_thread.url,
        "VIRTFUSION_API_TOKEN": "sandbox-token",
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
        "VIRTFUSION_RATE_LIMIT": "1000",
        "VIRTFUSION_TIMEOUT": "5s",
        "DATABASE_URL": f"sqlite+aiosqlite:///{new_sqlite_file(isolated_cwd / 'vfbot.db')}",
        "VF_POLL_INTERVAL": "0.05",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    # Queue tasks finish at once, so `power` never has to wait for the sandbox's clock.
    sandbox_thread.state.timing.power_s = 0
    return sandbox_thread


@pytest.fixture
def server_id(panel: ThreadedSandbox, vfbot: Vfbot) -> int:
    """A server built by `vfbot create --wait` (named test-server)."""
    result = vfbot("create", "-f", str(EXAMPLE), "--yes", "--wait")
    assert result.code == EXIT_OK, result.out + result.err
    (server,) = panel.state.servers.values()
    return server.id


def test_human_units() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(int(12.3 * 1024**3)) == "12.3 GiB"
    used = TrafficSummary(1, "a", None, None, 0, 0, int(12.3 * 1024**3), 1000)
    assert used.usage_text() == "12.3 GiB of 1,000 GB (1.2 %)"
    unlimited = TrafficSummary(1, "a", None, None, 0, 0, 2048, 0)
    assert unlimited.usage_text() == "2.0 KiB (unlimited)"


def test_delete_asks_first_then_deletes(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = vfbot("delete", "test-server")  # no terminal: nothing to confirm with
    assert refused.code == EXIT_FAILED
    assert f"Not deleted. Add --yes to delete server {server_id} (test-server)" in refused.out
    assert server_id in panel.state.servers

    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "y"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", answer)
    result = vfbot("delete", "test-server")

    assert result.code == EXIT_OK, result.out + result.err
    assert prompts == [f"Delete server {server_id} (test-server)? This cannot be undone. [y/N] "]
    assert f"server {server_id} (test-server) deleted." in result.out
    assert server_id not in panel.state.servers

    again = vfbot("delete", str(server_id), "--yes")
    assert again.code == EXIT_FAILED
    assert f"There is no server {server_id} on the panel." in again.out


def test_delete_with_delay_and_yes(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    result = vfbot("delete", str(server_id), "--delay", "10", "--yes")

    assert result.code == EXIT_OK, result.out + result.err
    assert "will be deleted by the panel in 10 min" in result.out
    assert panel.state.calls("DELETE", "^/servers/")[0].query["delay"] == "10"

    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        vfbot("delete", str(server_id), "--delay", "50000")
    assert usage.value.code == EXIT_CONFIG


def test_suspend_and_unsuspend(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    result = vfbot("suspend", "test-server")
    assert result.code == EXIT_OK, result.out + result.err
    assert f"server {server_id} (test-server) is suspended." in result.out
    assert panel.state.servers[server_id].suspended is True

    result = vfbot("unsuspend", str(server_id))
    assert result.code == EXIT_OK
    assert panel.state.servers[server_id].suspended is False


def test_power(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    result = vfbot("power", "test-server", "restart")

    assert result.code == EXIT_OK, result.out + result.err
    assert f"restart of server {server_id} (test-server): done." in result.out
    assert panel.state.count("POST", rf"^/servers/{server_id}/power/restart$") == 1


def test_traffic(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    result = vfbot("traffic", "test-server")

    assert result.code == EXIT_OK, result.out + result.err
    assert f"Traffic of server {server_id} (test-server)" in result.out
    assert "iB of 1,000 GB (0.1 %)" in result.out
    assert "  in " in result.out and ", out " in result.out


def test_vnc_prints_credentials_here_only(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    result = vfbot("-v", "vnc", "test-server", "enable")

    assert result.code == EXIT_OK, result.out + result.err
    password = panel.state.servers[server_id].vnc_password
    assert password and f"password  {password}" in result.out
    assert password not in result.logs
    assert "GET /" in result.logs or "POST /" in result.logs  # DEBUG logging was on
    audit = vfbot("audit", "-n", "1")
    assert password not in audit.out
    assert '{"vnc": "enabled"}' in audit.out

    off = vfbot("vnc", "test-server", "disable")
    assert off.code == EXIT_OK
    assert "VNC is disabled" in off.out


def test_backup_plan(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    assert vfbot("backup-plan", "test-server", "2").code == EXIT_OK
    assert panel.state.servers[server_id].backup_plan_id == 2
    removed = vfbot("backup-plan", "test-server", "none")
    assert removed.code == EXIT_OK and "no backup plan" in removed.out
    assert panel.state.servers[server_id].backup_plan_id == 0
    refused = vfbot("backup-plan", "test-server", "99")
    assert refused.code == EXIT_FAILED
    assert "The selected backup plan is invalid" in refused.out
    assert vfbot("backup-plan", "test-server", "daily").code == EXIT_CONFIG
    superscript = vfbot("backup-plan", "test-server", "²")  # passes str.isdigit(), not int()
    assert superscript.code == EXIT_CONFIG and "not a backup plan id" in superscript.out


def test_owner(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    result = vfbot("owner", "test-server", "2")

    assert result.code == EXIT_OK, result.out + result.err
    assert "now belongs to user 2; vfbot no longer lists it under its owner" in result.out
    assert panel.state.servers[server_id].owner_id == 2


def test_throttle(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    assert vfbot("throttle", "test-server", "30").code == EXIT_OK
    assert panel.state.servers[server_id].cpu_throttle == 30

    too_much = vfbot("throttle", "test-server", "100")
    assert too_much.code == EXIT_CONFIG
    assert "0 to 99" in too_much.out


def test_unknown_server_suggests_names(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    result = vfbot("suspend", "test-srv")

    assert result.code == EXIT_FAILED
    assert "vfbot manages no server called 'test-srv'" in result.out
    assert "Did you mean test-server?" in result.out


def test_audit(panel: ThreadedSandbox, vfbot: Vfbot, server_id: int) -> None:
    vfbot("throttle", "test-server", "5")

    result = vfbot("audit", "-n", "5")

    assert result.code == EXIT_OK, result.out + result.err
    assert "server.throttle" in result.out
    assert f"server {server_id} (test-server)" in result.out
    assert "request.submit" in result.out
