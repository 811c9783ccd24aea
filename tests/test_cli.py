"""`vfbot` end to end: `main()` against the sandbox panel (own thread) and a SQLite file."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

import bot.cli
import bot.cli.panel
from bot.cli import main
from bot.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    check_step_text,
    error_text,
    panel_error_text,
)
from bot.config import Settings
from bot.provisioning.errors import (
    NotOursReason,
    ServerBuildingError,
    UnknownRequestError,
    UnknownServerError,
)
from bot.provisioning.servers.checks import CheckStep, Outcome
from bot.virtfusion import (
    AiohttpVirtFusionClient,
    AuthError,
    ConnectError,
    ForbiddenError,
    PanelTimeoutError,
    RetryPolicy,
    VirtFusionClient,
)
from tests.conftest import ThreadedSandbox, Vfbot
from tests.databases import new_sqlite_file

TOKEN = "sandbox-token"
WRONG_TOKEN = "wrong-token-8d2f6c1e"  # obviously fake
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "create.json"


@pytest.fixture
def console_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain, wide rich output whatever the developer's terminal settings are."""
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def panel(
    sandbox_thread: ThreadedSandbox,
    isolated_cwd: Path,
    console_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> ThreadedSandbox:
    """A configured environment pointing at the sandbox, with a SQLite database in tmp_path."""
    settings = {
        "VIRTFUSION_HOST": sandbox_thread.url,
        "VIRTFUSION_API_TOKEN": TOKEN,
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
        "VIRTFUSION_RATE_LIMIT": "1000",  # the default 5/s would make every test crawl
        "VIRTFUSION_TIMEOUT": "5s",
        "DATABASE_URL": f"sqlite+aiosqlite:///{new_sqlite_file(isolated_cwd / 'vfbot.db')}",
        "VF_POLL_INTERVAL": "0.05",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return sandbox_thread


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The panel client's backoff sleeps, recorded instead of slept (the client takes `sleep`)."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def make_client(settings: Settings) -> VirtFusionClient:
        return AiohttpVirtFusionClient(
            settings.panel_api_url,
            settings.virtfusion_api_token,
            timeout_s=settings.virtfusion_timeout,
            rate_limit_per_s=settings.virtfusion_rate_limit,
            concurrency=settings.virtfusion_concurrency,
            sleep=sleep,
        )

    monkeypatch.setattr(bot.cli.panel, "make_client", make_client)
    return waits


def closed_port() -> int:
    """A loopback port nothing listens on (bound by us, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- vfbot check --------------------------------------------------------------------------------


def test_check_passes_against_the_sandbox(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    result = vfbot("check")

    assert result.code == EXIT_OK, result.everything
    assert f"✓ configuration loaded (panel {panel.api_url})" in result.out
    assert "✓ API token accepted (GET /connect)" in result.out
    assert "✓ token can read compute resources" in result.out
    assert "✓ package 1 exists (VIRTFUSION_PACKAGE_ID)" in result.out
    assert "✓ token can read the package's OS templates" in result.out
    assert "✓ user 1 exists (VIRTFUSION_USER_ID); token can read its servers and keys" in (
        result.out
    )
    assert "✓ user 1 can get package 1 servers in group 1 (dry run)" in result.out
    assert "VIRTFUSION_HYPERVISOR_GROUP_ID is not set" in result.out
    assert "Prague (1), Amsterdam (2)" in result.out
    assert "✗" not in result.out
    assert result.err == ""
    assert panel.state.servers == {}  # the create probe was a dry run


def test_check_with_a_default_group(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTFUSION_HYPERVISOR_GROUP_ID", "2")
    monkeypatch.setenv("VIRTFUSION_FAILOVER_GROUP_IDS", "1")

    result = vfbot("check")

    assert result.code == EXIT_OK, result.everything
    assert "✓ hypervisor group 2 exists (VIRTFUSION_HYPERVISOR_GROUP_ID)" in result.out
    assert "✓ hypervisor group 1 exists (VIRTFUSION_FAILOVER_GROUP_IDS)" in result.out
    assert "servers in group 2 (dry run)" in result.out
    assert "is not set" not in result.out


def test_check_with_a_wrong_token_names_the_variable_and_never_shows_it(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTFUSION_API_TOKEN", WRONG_TOKEN)

    result = vfbot("-v", "check")

    assert result.code == EXIT_FAILED
    assert "✗ API token accepted" in result.out
    assert "VIRTFUSION_API_TOKEN" in result.out
    assert "401" in result.out
    assert "GET /connect -> 401" in result.logs  # DEBUG logging really was on and captured
    assert WRONG_TOKEN not in result.everything
    assert panel.state.count("*", "^/connect$") == 1  # a rejected token is not retried


def test_check_with_missing_config_lists_every_variable(
    isolated_cwd: Path, console_env: None, vfbot: Vfbot
) -> None:
    result = vfbot("check")

    assert result.code == EXIT_CONFIG
    assert result.out == ""
    assert "(4 problems)" in result.err
    for variable in (
        "VIRTFUSION_HOST",
        "VIRTFUSION_API_TOKEN",
        "VIRTFUSION_USER_ID",
        "VIRTFUSION_PACKAGE_ID",
    ):
        assert f"{variable} is not set" in result.err


def test_config_errors_never_show_the_token(
    isolated_cwd: Path, console_env: None, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTFUSION_HOST", "http://panel.example.com")
    monkeypatch.setenv("VIRTFUSION_API_TOKEN", WRONG_TOKEN)
    monkeypatch.setenv("VIRTFUSION_USER_ID", "1")
    monkeypatch.setenv("VIRTFUSION_PACKAGE_ID", "1")

    result = vfbot("check")

    assert result.code == EXIT_CONFIG
    assert "VIRTFUSION_HOST" in result.err
    assert "VIRTFUSION_ALLOW_INSECURE" in result.err
    assert WRONG_TOKEN not in result.everything


def test_config_is_read_from_dotenv_in_the_working_directory(
    panel: ThreadedSandbox, vfbot: Vfbot, isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIRTFUSION_PACKAGE_ID")
    (isolated_cwd / ".env").write_text("VIRTFUSION_PACKAGE_ID=2\n", encoding="utf-8")

    result = vfbot("check")

    assert result.code == EXIT_OK, result.everything
    assert "✓ package 2 exists" in result.out


def test_check_with_an_unreachable_panel_names_the_host_variable(
    panel: ThreadedSandbox,
    vfbot: Vfbot,
    retry_waits: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIRTFUSION_HOST", f"http://127.0.0.1:{closed_port()}")

    result = vfbot("check")

    assert result.code == EXIT_FAILED
    assert len(retry_waits) == RetryPolicy().max_attempts - 1  # retried, but boundedly
    assert "✗ API token accepted" in result.out
    assert "Cannot connect to the panel at VIRTFUSION_HOST" in result.out
    assert TOKEN not in result.everything


def test_check_with_a_token_lacking_compute_scope_names_the_permission(
    panel: ThreadedSandbox, vfbot: Vfbot
) -> None:
    panel.state.token_scopes = {"servers", "packages", "users", "media", "ssh_keys", "queue"}

    result = vfbot("check")

    assert result.code == EXIT_FAILED
    assert "✓ API token accepted" in result.out
    assert "✗ token can read compute resources" in result.out
    assert "lacks a permission for GET /compute/hypervisors/groups (HTTP 403)" in result.out
    assert 'every call listed under "API token permissions" in docs/virtfusion-api.md' in (
        result.out.replace("\n", " ")
    )


@pytest.mark.parametrize(
    ("missing", "call"),
    [
        ("media", "GET /media/templates/fromServerPackageSpec/1"),
        ("ssh_keys", "GET /ssh_keys/user/1"),
    ],
)
def test_check_finds_every_area_the_token_needs(
    panel: ThreadedSandbox, vfbot: Vfbot, missing: str, call: str
) -> None:
    panel.state.token_scopes = {"compute", "servers", "packages", "media", "ssh_keys", "queue"}
    panel.state.token_scopes.discard(missing)

    result = vfbot("check")

    assert result.code == EXIT_FAILED
    assert f"lacks a permission for {call} (HTTP 403)" in result.out.replace("\n", " ")
    assert "dry run" not in result.out  # it stops at the first failure


def test_check_with_a_wrong_package_id_says_what_to_fix(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTFUSION_PACKAGE_ID", "77")

    result = vfbot("check")

    assert result.code == EXIT_FAILED
    assert "✗ package 77 exists (VIRTFUSION_PACKAGE_ID): not found on the panel" in result.out
    assert "fix the id" in result.out


def test_check_with_a_wrong_group_id_says_what_to_fix(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTFUSION_HYPERVISOR_GROUP_ID", "99")

    result = vfbot("check")

    assert result.code == EXIT_FAILED
    assert "✗ hypervisor group 99 exists (VIRTFUSION_HYPERVISOR_GROUP_ID)" in result.out


def test_check_with_a_wrong_user_id_names_the_setting(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTFUSION_USER_ID", "42")

    result = vfbot("check")

    assert result.code == EXIT_FAILED
    assert "✗ user 42 exists (VIRTFUSION_USER_ID)" in result.out
    assert "not found on the panel; fix the id in .env" in result.out


# -- panel read commands ------------------------------------------------------------------------


def test_hypervisors_lists_groups_with_capacity(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    result = vfbot("hypervisors")

    assert result.code == EXIT_OK, result.everything
    for text in ("Prague", "Amsterdam", "prg-hv1, prg-hv2", "ams-hv1", "fra-hv1 (maintenance)"):
        assert text in result.out
    assert "40,960 MB" in result.out
    assert "1,000 GB" in result.out


def test_hypervisors_without_compute_scope_fails(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    panel.state.token_scopes = {"servers"}

    result = vfbot("hypervisors")

    assert result.code == EXIT_FAILED
    assert "HTTP 403" in result.out


def test_servers_on_an_empty_panel(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    result = vfbot("servers")

    assert result.code == EXIT_OK, result.everything
    assert "0 servers" in result.out


def test_unknown_server_is_a_clear_failure(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    result = vfbot("server", "999999")

    assert result.code == EXIT_FAILED
    assert "Server 999999 does not exist on the panel." in result.out
    assert "vfbot servers" in result.out


def test_usage_errors_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["server", "not-a-number"], stdout=io.StringIO())

    assert info.value.code == EXIT_CONFIG
    assert "invalid int value" in capsys.readouterr().err


# -- engine commands ----------------------------------------------------------------------------


def test_create_wait_then_inspect_with_every_read_command(
    panel: ThreadedSandbox, vfbot: Vfbot
) -> None:
    created = vfbot("create", "-f", str(EXAMPLE), "--yes", "--wait")

    assert created.code == EXIT_OK, created.everything
    assert "Submitted VF-1." in created.out
    assert "VF-1 test-server: created server 101 in group Prague" in created.out
    assert "VF-1 test-server: built (192.0.2.100" in created.out
    assert "VF-1: finished: completed" in created.out
    assert panel.state.count("POST", r"^/servers$") == 2  # dry run while planning, then create
    assert panel.state.servers[101].name == "test-server"

    servers = vfbot("servers")
    assert servers.code == EXIT_OK
    assert "1 servers" in servers.out
    assert "101" in servers.out
    assert "test-server" in servers.out
    assert "192.0.2.100" in servers.out

    everyone = vfbot("servers", "--all")
    assert everyone.code == EXIT_OK
    assert "test-server" in everyone.out

    one = vfbot("server", "101")
    assert one.code == EXIT_OK, one.everything
    os_name = "Ubuntu 22.04 Server"  # from settings.osTemplateInstallId and the template list
    for text in (
        "Server 101",
        "test-server",
        "prg-hv1",
        "Prague",
        "192.0.2.100",
        "1024 MB",
        os_name,
    ):
        assert text in one.out
    assert "Running" not in one.out

    remote = vfbot("server", "101", "--remote")
    assert remote.code == EXIT_OK, remote.everything
    assert "Running" in remote.out
    assert "unknown (the panel's answer did not say)" in remote.out

    requests = vfbot("requests")
    assert requests.code == EXIT_OK
    assert "VF-1" in requests.out
    assert "talis-test" in requests.out
    assert "completed" in requests.out

    status = vfbot("status", "VF-1")
    assert status.code == EXIT_OK
    assert "VF-1 talis-test: completed" in status.out
    assert "101" in status.out
    assert "built" in status.out

    cancel = vfbot("cancel", "VF-1")
    assert cancel.code == EXIT_FAILED
    assert "VF-1 is completed" in cancel.out
    assert TOKEN not in "".join(r.everything for r in (created, servers, one, status))


def test_create_dry_run_prints_the_plan_and_creates_nothing(
    panel: ThreadedSandbox, vfbot: Vfbot
) -> None:
    result = vfbot("create", "-f", str(EXAMPLE), "--dry-run")

    assert result.code == EXIT_OK, result.everything
    assert "Project talis-test: 1 server(s), package Small (1)" in result.out
    assert "test-server: Ubuntu 22.04" in result.out
    assert "Dry run" in result.out
    assert "nothing was created" in result.out
    creates = panel.state.calls("POST", r"^/servers$")
    assert creates, "the plan is validated by the panel"
    assert all(call.query.get("dryRun") == "true" for call in creates)
    assert panel.state.count("POST", r"/build$") == 0
    assert panel.state.servers == {}
    assert "VF-1" not in vfbot("requests").out


def test_create_from_an_invalid_file_lists_json_paths(
    panel: ThreadedSandbox, vfbot: Vfbot, isolated_cwd: Path
) -> None:
    bad = isolated_cwd / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "project_name": "",
                "instances": [{"name": "web", "resources": {"memory": "lots", "disk": 25}}],
            }
        ),
        encoding="utf-8",
    )

    result = vfbot("create", "-f", "bad.json", "--dry-run")

    assert result.code == EXIT_CONFIG
    assert "bad.json is not a valid request" in result.out
    assert "project_name:" in result.out
    assert "instances[0].resources.memory:" in result.out
    assert "instances[0].template:" in result.out
    assert panel.state.log == []  # rejected before any panel call


def test_create_from_a_missing_file(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    result = vfbot("create", "-f", "absent.json")

    assert result.code == EXIT_CONFIG
    assert "Cannot read absent.json" in result.out


def test_create_without_yes_and_no_terminal_creates_nothing(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    result = vfbot("create", "-f", str(EXAMPLE))

    assert result.code == EXIT_FAILED
    assert "add --yes" in result.out
    assert panel.state.servers == {}


def test_submit_then_cancel_before_any_work(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    submitted = vfbot("create", "-f", str(EXAMPLE), "--yes")
    assert submitted.code == EXIT_OK, submitted.everything
    assert "Submitted VF-1." in submitted.out
    assert "vfbot status VF-1" in submitted.out

    cancelled = vfbot("cancel", "VF-1", "--delete")
    assert cancelled.code == EXIT_OK, cancelled.everything
    assert "VF-1: cancelling (a running worker finishes it); nothing new will be created" in (
        cancelled.out
    )
    assert "deleted" in cancelled.out

    # The request was already running, so the cancel is applied by the next engine tick.
    assert vfbot("worker", "--until-idle").code == EXIT_OK
    status = vfbot("status", "VF-1")
    assert status.code == EXIT_OK
    assert "VF-1 talis-test: cancelled" in status.out
    assert panel.state.count("POST", r"^/servers$") == 1  # only the planning dry run
    assert panel.state.servers == {}

    again = vfbot("cancel", "VF-1")
    assert again.code == EXIT_FAILED
    assert "VF-1" in again.out


def test_submit_then_worker_until_idle(panel: ThreadedSandbox, vfbot: Vfbot) -> None:
    assert vfbot("create", "-f", str(EXAMPLE), "--yes").code == EXIT_OK

    worker = vfbot("worker", "--until-idle")

    assert worker.code == EXIT_OK, worker.everything
    assert "VF-1 test-server: built" in worker.out
    assert "VF-1 talis-test: completed" in vfbot("status", "VF-1").out


@pytest.mark.parametrize("command", ["status", "cancel"])
def test_unknown_request(panel: ThreadedSandbox, vfbot: Vfbot, command: str) -> None:
    result = vfbot(command, "VF-9")

    assert result.code == EXIT_FAILED
    assert "There is no request VF-9" in result.out


@pytest.mark.parametrize("command", ["status", "cancel"])
def test_malformed_request_id(panel: ThreadedSandbox, vfbot: Vfbot, command: str) -> None:
    result = vfbot(command, "twelve")

    assert result.code == EXIT_CONFIG
    assert "use the form VF-12" in result.out


def test_unexpected_errors_exit_4_with_a_reference(
    panel: ThreadedSandbox, vfbot: Vfbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(args: object, out: object) -> int:
        raise RuntimeError(f"boom with {TOKEN}")

    monkeypatch.setattr(bot.cli.panel, "cmd_hypervisors", explode)

    result = vfbot("hypervisors")

    assert result.code == EXIT_INTERNAL
    assert "vfbot hypervisors failed unexpectedly (reference " in result.err
    assert "RuntimeError: boom with [redacted]" in result.err  # the stderr handler redacts
    assert TOKEN not in result.err


def test_serve_without_slack_credentials_says_what_to_set(
    isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIRTFUSION_HOST", "https://panel.example.com")
    monkeypatch.setenv("VIRTFUSION_API_TOKEN", "not-a-real-token-123")
    monkeypatch.setenv("VIRTFUSION_USER_ID", "1")
    monkeypatch.setenv("VIRTFUSION_PACKAGE_ID", "1")
    code = main(["serve"], stdout=io.StringIO())
    err = capsys.readouterr().err
    assert code == 2
    assert "SLACK_BOT_TOKEN" in err and "SLACK_APP_TOKEN" in err and "SLACK_SIGNING_SECRET" in err
    assert "docs/slack-setup.md" in err
    assert "not-a-real-token-123" not in err


# -- wording ------------------------------------------------------------------------------------


def test_error_text_adds_the_shell_next_step() -> None:
    assert error_text(UnknownRequestError(9)) == (
        "There is no request VF-9. Check the number: `vfbot requests` lists recent ones."
    )
    assert error_text(ServerBuildingError("web-1 (server 12)", 3)) == (
        "web-1 (server 12): VF-3 is still building it; cancel the request instead "
        "(`vfbot cancel VF-3`)."
    )
    unknown = UnknownServerError(NotOursReason.UNKNOWN_NAME, "vfbot manages no server called 'x'.")
    assert error_text(unknown).endswith(
        "Use its VirtFusion id, or list the servers with `vfbot servers`."
    )
    missing = UnknownServerError(NotOursReason.NOT_ON_PANEL, "There is no server 5 on the panel.")
    assert "`vfbot servers`" in error_text(missing)
    other = UnknownServerError(NotOursReason.OTHER_OWNER, "Server 5 belongs to another user.")
    assert error_text(other) == "Server 5 belongs to another user."
    assert "/vf" not in "".join(error_text(e) for e in (unknown, missing, other))


def test_panel_error_text_names_the_setting_to_fix() -> None:
    auth = AuthError("GET /connect -> 401", method="GET", path="/connect", status=401)
    assert panel_error_text(auth) == (
        "The panel rejected VIRTFUSION_API_TOKEN (HTTP 401): it is missing, wrong or expired. "
        "Create a token under Configuration → API in VirtFusion and set VIRTFUSION_API_TOKEN."
    )
    forbidden = ForbiddenError("403", method="GET", path="/compute", status=403)
    assert panel_error_text(forbidden).startswith(
        "The API token lacks a permission for GET /compute (HTTP 403). "
    )
    connect = ConnectError("refused", method="GET", path="/connect")
    assert panel_error_text(connect) == (
        "Cannot connect to the panel at VIRTFUSION_HOST (refused). "
        "Check the URL, DNS, firewall and that the panel is up."
    )
    timeout = PanelTimeoutError("no answer in 5 s", method="GET", path="/connect")
    assert "raise VIRTFUSION_TIMEOUT" in panel_error_text(timeout)


def test_check_step_text() -> None:
    assert check_step_text(CheckStep("package 1", Outcome.PASSED)) == ""
    assert check_step_text(CheckStep("package 1", Outcome.NOT_FOUND)) == (
        "not found on the panel; fix the id in .env"
    )
    no_groups = CheckStep("hypervisor groups", Outcome.NOT_FOUND, "the panel has no groups")
    assert check_step_text(no_groups) == "the panel has no groups; create one"
    refused = check_step_text(CheckStep("dry run", Outcome.REFUSED, "user 42 does not exist"))
    assert refused == (
        "the panel says: user 42 does not exist. Check VIRTFUSION_USER_ID, "
        "VIRTFUSION_PACKAGE_ID, VIRTFUSION_HYPERVISOR_GROUP_ID and VIRTFUSION_NETWORK_PROFILE_ID."
    )
    auth = AuthError("401", method="GET", path="/connect", status=401)
    failed = CheckStep("API token accepted", Outcome.PANEL_ERROR, error=auth)
    assert check_step_text(failed) == panel_error_text(auth)
    note = CheckStep("VIRTFUSION_HYPERVISOR_GROUP_ID is not set", Outcome.NOTE, "Groups: A (1)")
    assert check_step_text(note) == "Groups: A (1)"
