"""`vfbot` day-2 commands end to end: `main()` against the threaded sandbox and a SQLite file."""

from __future__ import annotations

import json
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


# -- day-2, part 2 (issue 13): the exact bodies each command sends --------------------------------


def _sent(panel: ThreadedSandbox, method: str, path: str) -> list[object]:
    return [c.body for c in panel.state.calls(method, path)]


def test_rebuild_asks_first_then_is_followed_to_built(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = vfbot("rebuild", "test-server")  # no terminal: nothing to confirm with
    assert refused.code == EXIT_FAILED
    assert f"Not rebuilt. Add --yes to rebuild server {server_id} (test-server)" in refused.out
    assert len(_sent(panel, "POST", rf"^/servers/{server_id}/build$")) == 1  # the create's

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    result = vfbot("rebuild", "test-server", "debian-12")

    assert result.code == EXIT_OK, result.out + result.err
    assert "OS install of Debian 12 Bookworm, 1 SSH key kept started" in result.out
    assert "rebuilt with Debian 12 Bookworm" in result.out
    assert "password" not in result.out.lower()  # the server has an SSH key: nothing to show
    assert _sent(panel, "POST", rf"^/servers/{server_id}/build$")[-1] == {
        "operatingSystemId": 3,
        "name": "test-server",
        "hostname": "test-server",
        "sshKeys": [1],
    }
    assert len(_sent(panel, "POST", rf"^/servers/{server_id}/build$")) == 2
    audit = vfbot("audit", "-n", "5").out
    assert "server.rebuild" in audit and "started" in audit


def test_rebuild_without_keys_prints_the_password_here_only(
    panel: ThreadedSandbox, vfbot: Vfbot, isolated_cwd: Path
) -> None:
    request = {
        "project_name": "keyless",
        "instances": [{"name": "bare", "hypervisor_group": "Prague", "template": "ubuntu-22.04"}],
    }
    (isolated_cwd / "bare.json").write_text(json.dumps(request))
    assert vfbot("create", "-f", "bare.json", "--yes", "--wait").code == EXIT_OK
    (server,) = panel.state.servers.values()

    result = vfbot("-v", "rebuild", "bare", "--yes")

    assert result.code == EXIT_OK, result.out + result.err
    secret = panel.state.issued_secrets[-1]
    assert f"New root password (shown once, keep it to yourself): {secret}" in result.out
    assert "no SSH key" in result.out
    assert secret not in result.logs and secret not in result.err
    assert "sshKeys" not in _sent(panel, "POST", rf"^/servers/{server.id}/build$")[-1]
    assert secret not in vfbot("audit", "-n", "10").out


def test_resize_memory_cpu_and_package(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    result = vfbot("resize", "test-server", "--memory", "2048", "--cpu", "2", "--yes")

    assert result.code == EXIT_OK, result.out + result.err
    assert "memory 1,024 → 2,048 MB, CPU 1 → 2 cores" in result.out
    assert "A restart applies it" in result.out
    assert _sent(panel, "PUT", rf"^/servers/{server_id}/modify/(memory|cpuCores)$") == [
        {"memory": 2048},
        {"cores": 2},
    ]
    package = vfbot("resize", str(server_id), "--package", "2", "--yes")
    assert package.code == EXIT_OK, package.out
    (body,) = _sent(panel, "PUT", rf"^/servers/{server_id}/package/2$")
    assert isinstance(body, dict) and body["backupPlan"] is False and body["cpu"] is True
    too_big = vfbot("resize", "test-server", "--memory", "999999", "--yes")
    assert too_big.code == EXIT_CONFIG and "memory must be between" in too_big.out
    nothing = vfbot("resize", "test-server", "--yes")
    assert nothing.code == EXIT_CONFIG and "Say what to change" in nothing.out


def test_rename_follows_in_vfbots_records(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    result = vfbot("rename", "test-server", "db-1")

    assert result.code == EXIT_OK, result.out + result.err
    assert _sent(panel, "PUT", rf"^/servers/{server_id}/modify/name$") == [{"name": "db-1"}]
    assert "db-1" in vfbot("status", "VF-1").out
    assert vfbot("traffic", "db-1").code == EXIT_OK  # known by its new name at once
    bad = vfbot("rename", "db-1", "DB_1")
    assert bad.code == EXIT_CONFIG and "lowercase" in bad.out


def test_password_is_printed_here_and_never_logged_or_mailed(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    result = vfbot("-v", "password", "test-server")

    assert result.code == EXIT_OK, result.out + result.err
    secret = panel.state.issued_secrets[-1]
    assert f"The root password of server {server_id} (test-server) is set." in result.out
    assert secret in result.out
    assert secret not in result.logs and secret not in result.err
    assert _sent(panel, "POST", rf"^/servers/{server_id}/resetPassword$") == [
        {"user": "root", "sendMail": False}
    ]
    assert panel.state.password_mails == []
    assert secret not in vfbot("audit", "-n", "3").out


def test_firewall_show_on_off_and_rulesets(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    assert "off" in vfbot("firewall", "test-server").out
    assert vfbot("firewall", "test-server", "on").code == EXIT_OK
    refused = vfbot("firewall", "test-server", "rulesets", "1,2")
    assert refused.code == EXIT_FAILED and "Add --yes" in refused.out
    assert vfbot("firewall", "test-server", "rulesets", "1,2", "--yes").code == EXIT_OK
    shown = vfbot("firewall", "test-server").out
    assert "on" in shown and 'port="443"' in shown
    assert vfbot("firewall", "test-server", "off", "--yes").code == EXIT_OK
    base = rf"^/servers/{server_id}/firewall/primary"
    assert [
        (c.api_path.rsplit("/", 1)[1], c.query, c.body) for c in panel.state.calls("POST", base)
    ] == [
        ("enable", {"sync": "true"}, None),
        ("rules", {"sync": "true"}, {"rulesets": [1, 2]}),
        ("disable", {"sync": "true"}, None),
    ]
    invalid = vfbot("firewall", "test-server", "rulesets", "7", "--yes")
    assert invalid.code == EXIT_FAILED and "Invalid or disabled firewall ruleset" in invalid.out


def test_ip_add_remove_and_the_last_address_asks_twice(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    (first,) = [ip.address for ip in panel.state.servers[server_id].ipv4]
    added = vfbot("ip", "test-server", "add", "1")
    assert added.code == EXIT_OK, added.out
    (new,) = [ip.address for ip in panel.state.servers[server_id].ipv4 if ip.address != first]
    assert _sent(panel, "POST", rf"^/servers/{server_id}/ipv4Qty$") == [
        {"interface": "primary", "quantity": 1}
    ]
    assert vfbot("ip", "test-server", "remove", new, "--yes").code == EXIT_OK
    once = vfbot("ip", "test-server", "remove", first, "--yes")
    assert once.code == EXIT_FAILED and "give --yes twice" in once.out
    assert [ip.address for ip in panel.state.servers[server_id].ipv4] == [first]
    twice = vfbot("ip", "test-server", "remove", first, "--yes", "--yes")
    assert twice.code == EXIT_OK and "no IPv4 address" in twice.out
    assert _sent(panel, "DELETE", rf"^/servers/{server_id}/ipv4$") == [
        {"interface": "primary", "ip": [new]},
        {"interface": "primary", "ip": [first]},
    ]


def test_backups_are_listed_and_the_api_limit_is_said(
    panel: ThreadedSandbox, vfbot: Vfbot, server_id: int
) -> None:
    empty = vfbot("backups", "test-server")
    assert empty.code == EXIT_OK and "has no backups" in empty.out
    backup = panel.state.add_backup(panel.state.servers[server_id])
    listed = vfbot("backups", "test-server")
    assert str(backup.id) in listed.out and "complete" in listed.out
    assert "cannot take or restore a backup" in listed.out
