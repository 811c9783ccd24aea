"""The sandbox's day-2 endpoints over loopback HTTP: what each changes and how it refuses."""

from __future__ import annotations

from typing import Any

from bot.sandbox import FakeClock, PanelState
from tests.sandbox.conftest import Api, create


async def _built(api: Api, clock: FakeClock) -> int:
    sid = int((await create(api))["id"])
    build = {"operatingSystemId": 1, "name": "web-1", "hostname": "web-1", "sshKeys": [1]}
    assert (await api.post(f"/servers/{sid}/build", build)).status == 200
    clock.advance(60)
    return sid


async def _put(api: Api, path: str, body: object) -> Any:
    return await api.call("PUT", path, json=body)


async def test_rename_changes_the_name_and_validates_it(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built(api, clock)
    reply = await _put(api, f"/servers/{sid}/modify/name", {"name": "db-1"})
    assert (reply.status, reply.raw) == (201, "")
    assert state.servers[sid].name == "db-1"
    missing = await _put(api, f"/servers/{sid}/modify/name", {})
    assert (missing.status, missing.body) == (422, {"errors": ["The name field is required."]})
    too_long = await _put(api, f"/servers/{sid}/modify/name", {"name": "x" * 256})
    assert too_long.body["errors"] == ["The name field must not be greater than 255 characters."]
    assert (await _put(api, "/servers/9999/modify/name", {"name": "a"})).status == 404


async def test_memory_and_cpu_changes_wait_for_a_restart(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built(api, clock)
    assert (await _put(api, f"/servers/{sid}/modify/memory", {"memory": 2048})).status == 201
    assert (await _put(api, f"/servers/{sid}/modify/cpuCores", {"cores": 2})).status == 201
    server = state.servers[sid]
    assert (server.memory_mb, server.cpu_cores) == (2048, 2)
    data = (await api.get(f"/servers/{sid}")).data()
    assert data["settings"]["resources"]["memory"] == 2048
    assert [p["action"] for p in data["tasks"]["actions"]["pending"]] == [
        "Memory (2048 MB)",
        "CPU cores (2)",
    ]
    assert (await api.post(f"/servers/{sid}/power/restart")).status == 200
    clock.advance(60)
    assert (await api.get(f"/servers/{sid}")).data()["tasks"]["actions"]["pending"] == []

    low = await _put(api, f"/servers/{sid}/modify/memory", {"memory": 100})
    assert low.body == {"errors": ["The memory field must be at least 256."]}
    huge = await _put(api, f"/servers/{sid}/modify/memory", {"memory": 10**6})
    assert huge.status == 422 and "does not have 1000000 MB" in huge.body["errors"][0]
    wrong = await _put(api, f"/servers/{sid}/modify/cpuCores", {"cores": "2"})
    assert wrong.body == {"errors": ["The cores field must be an integer."]}


async def test_a_package_change_reports_what_it_left_alone(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built(api, clock)
    flags = {"cpu": True, "memory": True, "primaryDiskSize": True, "backupPlan": False}
    reply = await _put(api, f"/servers/{sid}/package/2", flags)
    assert reply.status == 200
    server = state.servers[sid]
    assert (server.package_id, server.memory_mb, server.cpu_cores, server.storage_gb) == (
        2,
        4096,
        2,
        80,
    )
    assert reply.body == {"info": []}
    again = await _put(api, f"/servers/{sid}/package/2", flags)
    assert again.body["info"] == [
        "CPU cores not updated. It matches the current value",
        "memory not updated. It matches the current value",
        "primary disk not updated. It either matches or is lower than the current value",
    ]
    assert (await _put(api, f"/servers/{sid}/package/99", flags)).status == 404
    bad = await _put(api, f"/servers/{sid}/package/1", {"cpu": "yes"})
    assert bad.body == {"errors": ["The cpu field must be true or false."]}


async def test_password_reset_is_queued_and_mails_only_when_asked(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built(api, clock)
    reply = await api.post(f"/servers/{sid}/resetPassword", {"user": "root", "sendMail": False})
    data = reply.data()
    assert data["expectedPassword"] in state.issued_secrets
    assert state.queue[data["queueId"]].action == "reset_password"
    assert state.password_mails == []
    clock.advance(60)
    await api.post(f"/servers/{sid}/resetPassword", {"user": "root"})  # sendMail defaults true
    assert state.password_mails == [sid]
    clock.advance(60)
    bad = await api.post(f"/servers/{sid}/resetPassword", {"user": "admin"})
    assert bad.body == {"errors": ["The selected user is invalid."]}
    unbuilt = (await create(api))["id"]
    refused = await api.post(f"/servers/{unbuilt}/resetPassword", {"user": "root"})
    assert refused.body == {"errors": ["The server has not been built."]}


async def test_firewall_enable_disable_and_rulesets(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built(api, clock)
    assert (await api.get(f"/servers/{sid}/firewall/primary")).data() == {
        "enabled": False,
        "rules": [],
    }
    on = await api.post(f"/servers/{sid}/firewall/primary/enable", params={"sync": "true"})
    assert (on.status, on.raw) == (200, "")
    rules = await api.post(f"/servers/{sid}/firewall/primary/rules", {"rulesets": [1, 2]})
    assert rules.status == 201
    data = (await api.get(f"/servers/{sid}/firewall/primary")).data()
    assert data["enabled"] is True and [r["port"] for r in data["rules"]] == ["22", "80", "443"]
    assert (await api.get(f"/servers/{sid}")).data()["network"]["interfaces"][0][
        "firewallEnabled"
    ] is True
    invalid = await api.post(f"/servers/{sid}/firewall/primary/rules", {"rulesets": [7]})
    assert invalid.body == {"errors": ["Invalid or disabled firewall ruleset"]}
    missing = await api.post(f"/servers/{sid}/firewall/primary/rules", {})
    assert missing.body == {"errors": ["The rulesets field is required."]}
    secondary = await api.get(f"/servers/{sid}/firewall/secondary")
    assert secondary.body == {"errors": ["The server has no secondary interface."]}
    off = await api.post(f"/servers/{sid}/firewall/primary/disable", params={"sync": "true"})
    assert off.status == 200 and not state.servers[sid].firewall_enabled


async def test_ipv4_addresses_are_added_from_the_pool_and_removed(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built(api, clock)
    (first,) = [ip.address for ip in state.servers[sid].ipv4]
    added = await api.post(f"/servers/{sid}/ipv4Qty", {"interface": "primary", "quantity": 2})
    assert len(added.body["data"]) == 2
    assert [ip.address for ip in state.servers[sid].ipv4] == [first, *added.body["data"]]
    gone = await api.call(
        "DELETE", f"/servers/{sid}/ipv4", json={"interface": "primary", "ip": [first]}
    )
    assert (gone.status, gone.raw) == (204, "")
    assert first not in [ip.address for ip in state.servers[sid].ipv4]
    again = await api.call(
        "DELETE", f"/servers/{sid}/ipv4", json={"interface": "primary", "ip": [first]}
    )
    assert again.body == {"errors": [f"The IP address {first} is not assigned to this server."]}
    bad = await api.call("DELETE", f"/servers/{sid}/ipv4", json={"ip": ["300.1.1.1"]})
    assert bad.body == {
        "errors": [
            "The interface field is required.",
            "The ip.0 field must be a valid IPv4 address.",
        ]
    }
    greedy = await api.post(f"/servers/{sid}/ipv4Qty", {"interface": "primary", "quantity": 999})
    assert greedy.status == 422 and "free IPv4" in greedy.body["errors"][0]


async def test_changes_to_a_busy_server_are_locked(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built(api, clock)
    assert (await api.post(f"/servers/{sid}/build", {"operatingSystemId": 2})).status == 200
    for method, path, body in (
        ("PUT", "/modify/name", {"name": "x"}),
        ("PUT", "/modify/memory", {"memory": 2048}),
        ("POST", "/resetPassword", {"user": "root"}),
        ("POST", "/firewall/primary/enable", None),
        ("POST", "/ipv4Qty", {"interface": "primary", "quantity": 1}),
    ):
        reply = await api.call(method, f"/servers/{sid}{path}", json=body)
        assert reply.status == 423, path


async def test_backups_are_listed_per_server(api: Api, clock: FakeClock, state: PanelState) -> None:
    sid = await _built(api, clock)
    assert (await api.get(f"/backups/server/{sid}")).body == {"data": []}
    backup = state.add_backup(state.servers[sid])
    (row,) = (await api.get(f"/backups/server/{sid}")).body["data"]
    assert (row["id"], row["serverId"], row["complete"], row["progress"]) == (
        backup.id,
        sid,
        True,
        False,
    )
    assert (await api.get("/backups/server/9999")).status == 404
