"""The docs stay true: the README's settings table, `make demo`, and the examples in docs."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import demo
from bot.cli.common import panel_error_text as cli_panel_error_text
from bot.config import Settings
from bot.metrics import Metrics
from bot.provisioning.reading import parse_request
from bot.virtfusion import (
    PACKAGE_FLAGS,
    BuildServerBody,
    CreateServerBody,
    ForbiddenError,
    HttpRequest,
)
from bot.virtfusion import _day2 as day2
from bot.virtfusion import _sansio as sansio

ROOT = Path(__file__).parents[1]


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"README configuration table lacks {sorted(missing)}"


def test_make_demo_runs_a_full_create(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo configures vfbot through os.environ; keep that from leaking into other tests.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    assert demo.main(fast=True) == 0
    out = capsys.readouterr().out
    assert "ready to use it" in out  # vfbot check
    assert "Prague" in out and "Amsterdam" in out  # vfbot hypervisors
    assert "test-server: built (192.0.2." in out  # vfbot create, then vfbot worker
    assert "completed" in out
    assert "server.build (202)" in out  # the panel's webhook reached the worker
    assert "rebuilt with Debian 12 Bookworm" in out  # vfbot rebuild: one day-2 change


@pytest.mark.parametrize("name", ["create.json", "create-with-network.json", "request-format.json"])
def test_example_requests_are_valid(name: str) -> None:
    parse_request((ROOT / "examples" / name).read_bytes())


def test_json_examples_in_docs_are_valid_requests() -> None:
    for doc in ("docs/request-format.md", "docs/field-mapping.md", "README.md"):
        text = (ROOT / doc).read_text()
        for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
            if '"project_name"' in block and '"instances"' in block:
                parse_request(block)


def test_inline_create_examples_in_the_readme_are_valid_requests() -> None:
    readme = (ROOT / "README.md").read_text()
    examples = re.findall(r"`/vf create (\{.*?\})`", readme)
    assert examples, "the README shows /vf create {json}"
    for example in examples:
        if '"instances"' in example:
            parse_request(example)


def test_every_slack_subcommand_is_documented() -> None:
    from bot.slack import commands

    reference = (ROOT / "docs" / "commands.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in commands.names():
        assert f"`/vf {name}" in reference, f"docs/commands.md does not describe /vf {name}"
        assert f"`/vf {name}" in readme, f"README's Slack commands table lacks /vf {name}"
    assert "/vf cancel" in commands.help_message()


def test_operations_doc_lists_every_metric_family() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    families = {m.name for m in Metrics().registry.collect() if m.name.startswith("vfbot_")}
    counters = {
        "vfbot_panel_requests": "_total",
        "vfbot_engine_outcomes": "_total",
        "vfbot_webhooks": "_total",
    }
    missing = {f"{n}{counters.get(n, '')}" for n in families} - set(
        re.findall(r"`(vfbot_\w+)`", doc)
    )
    assert not missing, f"docs/operations.md does not describe {sorted(missing)}"


# -- the VirtFusion API page and the claims around it (issue 9, item 21) --------------------------

DOCS = [
    ROOT / "README.md",
    ROOT / "manifest.yml",
    ROOT / ".env.example",
    *sorted((ROOT / "docs").glob("*.md")),
]
API_DOC = ROOT / "docs" / "virtfusion-api.md"

# Every endpoint builder of the client, called once, with the path template the docs use.
ENDPOINTS: dict[str, tuple[Callable[[], HttpRequest], str]] = {
    "connect": (sansio.connect, "GET /connect"),
    "list_hypervisors": (lambda: sansio.list_hypervisors(1), "GET /compute/hypervisors"),
    "get_hypervisor": (
        lambda: sansio.get_hypervisor(7),
        "GET /compute/hypervisors/{hypervisorId}",
    ),
    "list_groups": (lambda: sansio.list_groups(1), "GET /compute/hypervisors/groups"),
    "get_group": (lambda: sansio.get_group(7), "GET /compute/hypervisors/groups/{groupId}"),
    "group_resources": (
        lambda: sansio.group_resources(7, 1),
        "GET /compute/hypervisors/groups/{groupId}/resources",
    ),
    "get_package": (lambda: sansio.get_package(7), "GET /packages/{packageId}"),
    "package_templates": (
        lambda: sansio.package_templates(7),
        "GET /media/templates/fromServerPackageSpec/{packageId}",
    ),
    "user_ssh_keys": (lambda: sansio.user_ssh_keys(7), "GET /ssh_keys/user/{userId}"),
    "create_server": (lambda: sansio.create_server(CREATE), "POST /servers"),
    "build_server": (
        lambda: sansio.build_server(7, BuildServerBody(operating_system_id=1)),
        "POST /servers/{serverId}/build",
    ),
    "list_servers": (lambda: sansio.list_servers(1), "GET /servers"),
    "user_servers": (lambda: sansio.user_servers(7), "GET /servers/user/{userId}"),
    "get_server": (lambda: sansio.get_server(7), "GET /servers/{serverId}"),
    "delete_server": (lambda: sansio.delete_server(7), "DELETE /servers/{serverId}"),
    "suspend_server": (lambda: sansio.suspend_server(7), "POST /servers/{serverId}/suspend"),
    "unsuspend_server": (
        lambda: sansio.unsuspend_server(7),
        "POST /servers/{serverId}/unsuspend",
    ),
    "power": (lambda: sansio.power(7, "boot"), "POST /servers/{serverId}/power/{action}"),
    "get_queue": (lambda: sansio.get_queue(7), "GET /queue/{queueId}"),
    "set_backup_plan": (
        lambda: sansio.set_backup_plan(7, 7),
        "PUT /servers/{serverId}/backups/plan/{planId}",
    ),
    "change_owner": (
        lambda: sansio.change_owner(7, 7),
        "PUT /servers/{serverId}/owner/{newOwnerId}",
    ),
    "set_vnc": (lambda: sansio.set_vnc(7, enabled=True), "POST /servers/{serverId}/vnc"),
    "traffic": (lambda: sansio.traffic(7), "GET /servers/{serverId}/traffic"),
    "cpu_throttle": (
        lambda: sansio.cpu_throttle(7, 1),
        "PUT /servers/{serverId}/modify/cpuThrottle",
    ),
    # day-2 (issue 13)
    "server_templates": (lambda: day2.server_templates(7), "GET /servers/{serverId}/templates"),
    "rename_server": (
        lambda: day2.rename_server(7, "a"),
        "PUT /servers/{serverId}/modify/name",
    ),
    "change_package": (
        lambda: day2.change_package(7, 7, dict.fromkeys(PACKAGE_FLAGS, True)),
        "PUT /servers/{serverId}/package/{packageId}",
    ),
    "modify_memory": (
        lambda: day2.modify_memory(7, 1024),
        "PUT /servers/{serverId}/modify/memory",
    ),
    "modify_cpu_cores": (
        lambda: day2.modify_cpu_cores(7, 1),
        "PUT /servers/{serverId}/modify/cpuCores",
    ),
    "reset_password": (
        lambda: day2.reset_password(7),
        "POST /servers/{serverId}/resetPassword",
    ),
    "firewall": (lambda: day2.firewall(7), "GET /servers/{serverId}/firewall/{interface}"),
    "set_firewall": (
        lambda: day2.set_firewall(7, enabled=True),
        "POST /servers/{serverId}/firewall/{interface}/{action}",
    ),
    "apply_firewall_rulesets": (
        lambda: day2.apply_firewall_rulesets(7, [1]),
        "POST /servers/{serverId}/firewall/{interface}/rules",
    ),
    "add_ipv4": (lambda: day2.add_ipv4(7, 1), "POST /servers/{serverId}/ipv4Qty"),
    "remove_ipv4": (lambda: day2.remove_ipv4(7, ["192.0.2.1"]), "DELETE /servers/{serverId}/ipv4"),
    "server_backups": (lambda: day2.server_backups(7), "GET /backups/server/{serverId}"),
}
CREATE = CreateServerBody(package_id=1, user_id=1, hypervisor_group_id=1)


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_repository_docs_never_point_at_the_shared_reference() -> None:
    for path in DOCS:
        text = path.read_text()
        assert "shared/reference" not in text and "../shared" not in text, path.name


def test_every_endpoint_the_client_builds_is_documented() -> None:
    builders = {
        name
        for module in (sansio, day2)
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__
        and inspect.signature(function).return_annotation == "HttpRequest"
        and name != "build_request"
        and not name.startswith("_")  # private helpers that the endpoints build with
    }
    assert builders == set(ENDPOINTS), "add the new endpoint to ENDPOINTS and the docs"
    text = API_DOC.read_text()
    for name, (build, template) in ENDPOINTS.items():
        request = build()
        method, path = template.split(" ", 1)
        pattern = re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(path))
        assert request.method == method and re.fullmatch(pattern, request.path), name
        assert f"`{template}" in text, f"{template} is not described in {API_DOC.name}"


def test_the_token_permission_list_is_exactly_the_calls_made() -> None:
    section = _section(API_DOC.read_text(), "API token permissions")
    listed = set(re.findall(r"`((?:GET|POST|PUT|DELETE) /[^`]*)`", section))
    assert listed == {template for _, template in ENDPOINTS.values()}


def test_the_token_permissions_are_described_in_one_place() -> None:
    # README, the Slack setup, .env.example and `vfbot check` point to the list; none keeps its
    # own (they disagreed: "compute and servers", "compute, servers, packages, users, ...").
    for path in ("README.md", "docs/slack-setup.md", ".env.example"):
        text = (ROOT / path).read_text()
        assert "virtfusion-api.md" in text, path
        assert "compute (hypervisors) and servers" not in text
        assert "users, media, ssh_keys and queue" not in text
    forbidden = ForbiddenError("403", method="GET", path="/compute", status=403)
    assert "docs/virtfusion-api.md" in cli_panel_error_text(forbidden)


def _slack_methods(text: str) -> set[str]:
    return set(
        re.findall(
            r"`((?:chat|files|usergroups|conversations|views|auth|apps)\.\w+(?:\.\w+)?)`", text
        )
    )


def test_slack_scopes_and_methods_are_the_ones_vfbot_uses() -> None:
    setup = (ROOT / "docs" / "slack-setup.md").read_text()
    scopes = _section(setup, "Scopes")
    table = scopes.split("Scopes vfbot deliberately does **not** request")[0]
    code = "".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    for method in _slack_methods(table):
        assert method.replace(".", "_") + "(" in code, f"{method} is listed but never called"
    manifest = (ROOT / "manifest.yml").read_text()
    bot_scopes = manifest.split("scopes:")[1].split("settings:")[0]
    in_manifest = set(re.findall(r"^      - ([a-z:.]+)", bot_scopes, flags=re.M))
    in_table = set(re.findall(r"^\| `([a-z:.]+)` \|", table, flags=re.M))
    assert (
        in_manifest
        == in_table
        == {
            "commands",
            "chat:write",
            "files:read",
            "usergroups:read",
            "im:write",
        }
    )


def test_no_doc_says_vnc_credentials_come_by_direct_message() -> None:
    for path in DOCS:
        for sentence in re.split(r"(?<=\.)\s", path.read_text()):
            if "VNC" in sentence:
                assert "direct message" not in sentence and " DM" not in sentence, path.name


def test_env_example_describes_every_setting_as_the_code_uses_it() -> None:
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert {name.upper() for name in Settings.model_fields} <= named
    assert "Slack milestone" not in text
    comments = {
        m[1]: m[0]
        for m in re.findall(r"((?:^# (?![A-Z_]+=)[^\n]*\n)+)(?:# )?([A-Z_]+)=", text, flags=re.M)
    }
    assert "user-group membership" in comments["VF_GROUP_CACHE"]  # not the hypervisor groups
    assert "user-group ids" in comments["VF_REQUESTERS"]
    assert "completion notice" in comments["VF_NOTIFY_CHANNEL"]
