"""The sandbox panel's API behaviour over real loopback HTTP, with a fake clock."""

from __future__ import annotations

import ipaddress
from typing import Any

import aiohttp
import pytest

from bot.sandbox import BuildTiming, FakeClock, PanelState, SandboxServer, running_sandbox
from tests.sandbox.conftest import Api, create

DOC_V4 = [
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
]
PAGINATOR_KEYS = {
    "current_page",
    "data",
    "first_page_url",
    "from",
    "last_page",
    "last_page_url",
    "links",
    "next_page_url",
    "path",
    "per_page",
    "prev_page_url",
    "to",
    "total",
}


def _ipv4s(server: dict[str, Any]) -> list[str]:
    network = server["network"]
    assert isinstance(network, dict)
    return [ip["address"] for ip in network["interfaces"][0]["ipv4"]]


# -- auth, routing ------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_bad_or_missing_token_is_401_with_empty_body(api: Api, token: str | None) -> None:
    for path in ("/connect", "/servers", "/servers/101", "/compute/hypervisors"):
        reply = await api.call("GET", path, token=token)
        assert reply.status == 401
        assert reply.raw == ""


async def test_unknown_route_404_and_wrong_method_405(api: Api) -> None:
    reply = await api.get("/nope")
    assert reply.status == 404
    assert isinstance(reply.body, dict) and "message" in reply.body
    reply = await api.call("DELETE", "/connect")
    assert reply.status == 405


async def test_token_without_compute_scope_gets_403_on_compute(api: Api, state: PanelState) -> None:
    state.token_scopes = {"servers"}
    assert (await api.get("/connect")).status == 200
    reply = await api.get("/compute/hypervisors/groups", params={"results": "1"})
    assert reply.status == 403
    assert reply.body == {"msg": "This action is unauthorized."}
    assert (await api.get("/servers")).status == 200


# -- envelopes and pagination ------------------------------------------------------------------


async def test_hypervisor_list_is_a_laravel_paginator(api: Api) -> None:
    reply = await api.get("/compute/hypervisors")
    assert reply.status == 200
    body = reply.body
    assert isinstance(body, dict) and set(body) == PAGINATOR_KEYS
    assert body["per_page"] == 20 and body["total"] == 4 and body["next_page_url"] is None
    first = body["data"][0]
    assert first["name"] == "prg-hv1" and first["group"]["name"] == "Prague"
    assert {n["id"] for n in first["networks"]} == {10}
    for key in ("ipAlt", "sshPort", "nfType", "maxServers", "maxCpu", "maxMemory", "storage"):
        assert key in first
    assert "usedMemory" not in first and "status" not in first


async def test_pagination_walks_pages_with_results_2(api: Api, sandbox: SandboxServer) -> None:
    for _ in range(5):
        await create(api)
    seen: list[int] = []
    page = 1
    while True:
        reply = await api.get("/servers", params={"results": "2", "page": str(page)})
        body = reply.body
        assert isinstance(body, dict)
        assert body["per_page"] == 2 and body["total"] == 5 and body["last_page"] == 3
        assert body["current_page"] == page
        seen += [row["id"] for row in body["data"]]
        if body["next_page_url"] is None:
            break
        assert body["next_page_url"] == f"{sandbox.api_url}/servers?page={page + 1}"
        page += 1
    assert seen == [101, 102, 103, 104, 105]
    assert body["from"] == 5 and body["to"] == 5
    assert body["prev_page_url"] == f"{sandbox.api_url}/servers?page=2"
    labels = [link["label"] for link in body["links"]]
    assert labels == ["&laquo; Previous", "1", "2", "3", "Next &raquo;"]
    beyond = (await api.get("/servers", params={"results": "2", "page": "9"})).body
    assert isinstance(beyond, dict) and beyond["data"] == [] and beyond["from"] is None


@pytest.mark.parametrize("results", ["0", "201", "abc"])
async def test_results_out_of_range_is_422(api: Api, results: str) -> None:
    reply = await api.get("/compute/hypervisors/groups", params={"results": results})
    assert reply.status == 422
    assert isinstance(reply.body, dict) and isinstance(reply.body["errors"][0], str)


async def test_groups_and_group_resources(api: Api) -> None:
    groups = (await api.get("/compute/hypervisors/groups")).body
    assert isinstance(groups, dict)
    assert [g["name"] for g in groups["data"]] == ["Prague", "Amsterdam", "Frankfurt"]
    group = (await api.get("/compute/hypervisors/groups/1")).data()
    assert set(group) >= {"id", "name", "label", "description", "distributionType", "enabled"}
    assert (await api.get("/compute/hypervisors/groups/99")).status == 404
    await create(api)
    rows = (await api.get("/compute/hypervisors/groups/1/resources")).body
    assert isinstance(rows, dict) and rows["total"] == 2
    row = rows["data"][0]
    assert set(row["hypervisor"]) == {"id", "name", "enabled", "prohibit", "accept", "commissioned"}
    memory = row["resources"]["memory"]
    assert memory["units"] == "MB" and memory["allocated"] == 1024
    assert memory["free"] == memory["max"] - 1024
    assert row["resources"]["localStorage"]["units"] == "GB"
    assert row["resources"]["network"]["total"]["ipv4"]["free"] == 49


async def test_single_hypervisor_and_404(api: Api) -> None:
    assert (await api.get("/compute/hypervisors/2")).data()["name"] == "prg-hv2"
    assert (await api.get("/compute/hypervisors/77")).status == 404


async def test_catalogue_endpoints(api: Api) -> None:
    packages = (await api.get("/packages")).body
    assert isinstance(packages, dict) and set(packages) == {"data"}
    small = packages["data"][0]
    assert small["memory"] == 1024 and small["primaryStorage"] == 25
    assert small["primaryNetworkProfile"] == 1
    assert (await api.get("/packages/2")).data()["name"] == "Medium"
    templates = (await api.get("/media/templates/fromServerPackageSpec/1")).body
    assert isinstance(templates, dict)
    flat = {(t["name"], t["version"]): t for g in templates["data"] for t in g["templates"]}
    assert flat["Ubuntu", "22.04"]["id"] == 1 and flat["Debian", "10"]["eol"] is True
    assert (await api.get("/media/templates/fromServerPackageSpec/9")).status == 404
    user = (await api.get("/users/2/byExtRelation")).data()
    assert user["name"] == "Alice" and user["extRelationId"] == 2
    assert (await api.get("/users/42/byExtRelation")).status == 404


async def test_ssh_keys_list_get_and_add(api: Api) -> None:
    keys = (await api.get("/ssh_keys/user/1")).body
    assert isinstance(keys, dict)
    assert [k["name"] for k in keys["data"]] == ["default", "ops-team"]
    assert (await api.get("/ssh_keys/3")).data()["name"] == "alice"
    public_key = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD new"
    )
    reply = await api.post("/ssh_keys", {"userId": 1, "name": "ci", "publicKey": public_key})
    assert reply.status == 201
    assert set(reply.data()) == {"id", "name", "type", "createdAt"}
    assert reply.data()["id"] == 4
    again = await api.post("/ssh_keys", {"userId": 1, "name": "ci2", "publicKey": public_key})
    assert again.status == 422
    for bad in ({"userId": 1, "name": "x"}, {"userId": "1", "name": "x", "publicKey": public_key}):
        assert (await api.post("/ssh_keys", bad)).status == 422


# -- create --------------------------------------------------------------------------------------


async def test_create_returns_201_allocated_server_with_ipv4(api: Api, clock: FakeClock) -> None:
    server = await create(api)
    assert server["id"] == 101
    assert server["name"] == "" and server["hostname"] is None
    assert server["commissionStatus"] == 0 and server["state"] == "allocated"
    assert server["buildFailed"] is False and server["built"] is None
    assert server["suspended"] is False and server["protected"] is False
    assert server["hypervisorId"] in (1, 2)  # a real hypervisor of group 1, not the group
    assert server["created"] == clock().isoformat(timespec="seconds")
    assert server["settings"]["resources"] == {
        "memory": 1024,
        "storage": 25,
        "traffic": 1000,
        "cpuCores": 1,
    }
    assert "decryptedPassword" not in server["settings"]
    addresses = _ipv4s(server)
    assert len(addresses) == 1
    assert all(any(ipaddress.ip_address(a) in net for net in DOC_V4) for a in addresses)


async def test_create_spreads_by_free_memory_and_honours_overrides(api: Api) -> None:
    first = await create(api)
    second = await create(api)
    assert {first["hypervisorId"], second["hypervisorId"]} == {1, 2}
    big = await create(
        api,
        hypervisorId=2,
        memory=2048,
        cpuCores=2,
        storage=40,
        ipv4=2,
        firewallRulesets=[2, 3],
        additionalStorage1Enable=True,
        additionalStorage1Capacity=10,
    )
    assert big["hypervisorId"] == 3
    assert len(_ipv4s(big)) == 2
    assert [d["capacity"] for d in big["storage"]] == [40, 10]
    assert big["tasks"]["actions"]["pending"][0]["action"] == "Create HDD (sdb)"
    none = await create(api, ipv4=0)
    assert _ipv4s(none) == []


async def test_dry_run_validates_without_creating(api: Api, state: PanelState) -> None:
    reply = await api.post(
        "/servers", {"packageId": 1, "userId": 1, "hypervisorId": 1}, {"dryRun": "true"}
    )
    assert reply.status == 200
    assert "id" not in reply.data()
    assert state.servers == {}
    bad = await api.post(
        "/servers", {"packageId": 1, "userId": 1, "hypervisorId": 9}, {"dryRun": "true"}
    )
    assert bad.status == 422
    assert state.servers == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"userId": 1, "hypervisorId": 1}, "package id field is required"),
        ({"packageId": "1", "userId": 1, "hypervisorId": 1}, "package id field must be an integer"),
        ({"packageId": 1, "userId": 1, "hypervisorId": "1"}, "hypervisor id field must be an"),
        ({"packageId": 1, "userId": 1.0, "hypervisorId": 1}, "user id field must be an integer"),
        ({"packageId": 1, "userId": True, "hypervisorId": 1}, "user id field must be an integer"),
        ({**{"packageId": 1, "userId": 1, "hypervisorId": 1}, "memory": "1024"}, "memory"),
        ({**{"packageId": 1, "userId": 1, "hypervisorId": 1}, "memory": 1}, "at least 128"),
        ({**{"packageId": 1, "userId": 1, "hypervisorId": 1}, "firewallRulesets": ["2"]}, "0"),
        ({**{"packageId": 1, "userId": 1, "hypervisorId": 1}, "firewallRulesets": [9]}, "9"),
        ({"packageId": 9, "userId": 1, "hypervisorId": 1}, "selected package id is invalid"),
        ({"packageId": 1, "userId": 9, "hypervisorId": 1}, "selected user id is invalid"),
        ({"packageId": 1, "userId": 1, "hypervisorId": 9}, "selected hypervisor id is invalid"),
    ],
)
async def test_create_validation_errors_are_a_list_of_strings(
    api: Api, state: PanelState, body: dict[str, object], fragment: str
) -> None:
    reply = await api.post("/servers", body)
    assert reply.status == 422, reply.raw
    assert isinstance(reply.body, dict)
    errors = reply.body["errors"]
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors)
    assert any(fragment in e for e in errors), errors
    assert state.servers == {}


async def test_firewall_minus_one_means_none(api: Api, state: PanelState) -> None:
    server = await create(api, firewallRulesets=[-1])
    assert state.servers[server["id"]].firewall_rulesets == []
    assert server["network"]["interfaces"][0]["firewallEnabled"] is False
    ruled = await create(api, firewallRulesets=[2])
    assert ruled["network"]["interfaces"][0]["firewallEnabled"] is True


async def test_network_profile_cases(api: Api, state: PanelState) -> None:
    # Exists and is attached in Prague: the seed example (profile 2 in Prague) works.
    ok = await create(api, networkProfile=2)
    iface = ok["network"]["interfaces"][0]
    assert iface["networkProfile"] == 2 and iface["hypervisorNetwork"] in (10, 11)
    # Exists but attached only in Prague, requested in Amsterdam.
    reply = await api.post(
        "/servers", {"packageId": 1, "userId": 1, "hypervisorId": 2, "networkProfile": 2}
    )
    assert reply.status == 422
    assert reply.body == {
        "errors": ["Invalid network profile. The specified profile is not in use"]
    }
    # Exists but attached nowhere.
    reply = await api.post("/servers", {**_body(), "networkProfile": 4})
    assert reply.body == {
        "errors": ["Invalid network profile. The specified profile is not in use"]
    }
    # Does not exist at all (e.g. a bridge id mistaken for a profile id).
    reply = await api.post("/servers", {**_body(), "networkProfile": 10})
    assert reply.status == 422
    assert isinstance(reply.body, dict)
    assert reply.body["errors"][0].startswith("Invalid network profile.")
    assert "not in use" not in reply.body["errors"][0]
    # Omitted: the package default applies and must be in use in the group.
    state.packages[1].primary_network_profile = 3
    reply = await api.post("/servers", _body())
    assert reply.body == {
        "errors": ["Invalid network profile. The specified profile is not in use"]
    }
    assert len(state.servers) == 1


def _body() -> dict[str, object]:
    return {"packageId": 1, "userId": 1, "hypervisorId": 1}


async def test_capacity_exhaustion_per_resource(api: Api, state: PanelState) -> None:
    amsterdam = {"packageId": 1, "userId": 1, "hypervisorId": 2}
    state.hypervisors[3].max_memory_mb = 1536
    assert (await api.post("/servers", amsterdam)).status == 201
    reply = await api.post("/servers", amsterdam)
    assert reply.status == 422
    assert reply.body == {
        "errors": ["No hypervisor in group Amsterdam has enough free memory (needs 1024 MB)"]
    }
    state.hypervisors[3].max_memory_mb = 40960
    state.hypervisors[3].ipv4_pool.addresses = state.hypervisors[3].ipv4_pool.addresses[:1]
    reply = await api.post("/servers", amsterdam)
    assert isinstance(reply.body, dict) and "IPv4" in reply.body["errors"][0]
    assert (await api.post("/servers", {**amsterdam, "ipv4": 0})).status == 201
    state.hypervisors[3].max_storage_gb = 60
    reply = await api.post("/servers", {**amsterdam, "ipv4": 0})
    assert isinstance(reply.body, dict) and "storage (needs 25 GB)" in reply.body["errors"][0]
    # Frankfurt's only hypervisor is in maintenance.
    reply = await api.post("/servers", {"packageId": 1, "userId": 1, "hypervisorId": 3})
    assert reply.status == 422
    assert isinstance(reply.body, dict) and "Frankfurt" in reply.body["errors"][0]


async def test_prague_holds_forty_small_servers(api: Api) -> None:
    for _ in range(40):
        await create(api)
    reply = await api.post("/servers", _body())
    assert reply.status == 422


# -- build lifecycle ------------------------------------------------------------------------------


async def test_build_progresses_with_the_clock(api: Api, clock: FakeClock) -> None:
    server = await create(api)
    sid = server["id"]
    reply = await api.post(
        f"/servers/{sid}/build",
        {
            "operatingSystemId": 1,
            "name": "web-1",
            "hostname": "web-1.example.com",
            "sshKeys": [1, 2],
            "vnc": False,
            "ipv6": True,
            "swap": 512,
            "email": True,
        },
    )
    assert reply.status == 200
    data = reply.data()
    assert data["state"] == "queued" and data["commissionStatus"] == 1
    assert data["tasks"]["active"] is True
    assert data["name"] == "web-1" and data["hostname"] == "web-1.example.com"
    password = data["settings"]["decryptedPassword"]
    assert isinstance(password, str) and len(password) >= 12

    got = (await api.get(f"/servers/{sid}")).data()
    assert "decryptedPassword" not in got["settings"]
    assert password not in (await api.get(f"/servers/{sid}")).raw

    clock.advance(2)
    got = (await api.get(f"/servers/{sid}")).data()
    assert (got["commissionStatus"], got["state"]) == (2, "building")
    clock.advance(7.9)
    assert (await api.get(f"/servers/{sid}")).data()["commissionStatus"] == 2
    clock.advance(0.1)
    got = (await api.get(f"/servers/{sid}")).data()
    assert (got["commissionStatus"], got["state"]) == (3, "complete")
    assert got["built"] == clock().isoformat(timespec="seconds")
    assert got["tasks"]["active"] is False
    assert got["buildFailed"] is False
    # No invented `os{name,version}`: the template id is all the spec gives.
    assert "os" not in got and got["settings"]["osTemplateInstallId"] == 1
    ipv6 = got["network"]["interfaces"][0]["ipv6"][0]
    assert ipaddress.ip_address(ipv6["addresses"][0]) in ipaddress.ip_network("2001:db8::/32")
    simple = (await api.get("/servers")).body
    assert isinstance(simple, dict) and simple["data"][0]["commissioned"] == 3
    assert "commissionStatus" not in simple["data"][0]
    rows = (await api.get("/servers/user/1")).body
    assert isinstance(rows, dict) and rows["data"][0]["commissionStatus"] == 3
    assert "created" not in rows["data"][0]


async def test_build_failure_sets_build_failed_and_stays_building(
    api: Api, state: PanelState, clock: FakeClock
) -> None:
    state.timing.fail_next = 1
    sid = (await create(api))["id"]
    assert (await api.post(f"/servers/{sid}/build", {"operatingSystemId": 3})).status == 200
    clock.advance(5)
    got = (await api.get(f"/servers/{sid}")).data()
    assert got["buildFailed"] is False and got["commissionStatus"] == 2
    clock.advance(10)
    got = (await api.get(f"/servers/{sid}")).data()
    assert got["buildFailed"] is True
    assert (got["commissionStatus"], got["state"], got["built"]) == (2, "building", None)
    assert got["tasks"]["active"] is False
    # The next build succeeds: fail_next was consumed.
    sid2 = (await create(api))["id"]
    await api.post(f"/servers/{sid2}/build", {"operatingSystemId": 3})
    clock.advance(60)
    assert (await api.get(f"/servers/{sid2}")).data()["commissionStatus"] == 3


async def test_fail_shape_state_failed_is_the_official_example(
    api: Api, state: PanelState, clock: FakeClock
) -> None:
    state.timing.update({"fail_next": 1, "fail_shape": "state_failed"})
    sid = (await create(api))["id"]
    await api.post(f"/servers/{sid}/build", {"operatingSystemId": 3})
    state.timing.fail_shape = "build_failed"  # a later change does not alter this build
    clock.advance(5)
    got = (await api.get(f"/servers/{sid}")).data()
    assert (got["commissionStatus"], got["state"], got["buildFailed"]) == (2, "building", False)
    clock.advance(10)
    got = (await api.get(f"/servers/{sid}")).data()
    assert (got["commissionStatus"], got["state"], got["buildFailed"]) == (2, "failed", False)
    assert got["tasks"]["active"] is False  # over: the server is no longer locked
    (row,) = [r for r in (await api.get("/servers/user/1")).body["data"] if r["id"] == sid]
    assert (row["commissionStatus"], row["state"], row["buildFailed"]) == (2, "failed", False)
    with pytest.raises(ValueError, match="fail_shape must be one of"):
        state.timing.update({"fail_shape": "exploded"})


async def test_fail_ratio_uses_the_seeded_rng(clock: FakeClock) -> None:
    state = PanelState(clock=clock, timing=BuildTiming(fail_ratio=1.0))
    async with running_sandbox(state) as srv, aiohttp.ClientSession() as session:
        api = Api(session, srv.api_url, token="sandbox-token")
        sid = (await create(api))["id"]
        await api.post(f"/servers/{sid}/build", {"operatingSystemId": 1})
        clock.advance(100)
        assert (await api.get(f"/servers/{sid}")).data()["buildFailed"] is True


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "operating system id field is required"),
        ({"operatingSystemId": "1"}, "must be an integer"),
        ({"operatingSystemId": 99}, "operating system id is invalid"),
        ({"operatingSystemId": 1, "sshKeys": ["1"]}, "sshKeys.0"),
        ({"operatingSystemId": 1, "sshKeys": [3]}, "does not belong"),
        ({"operatingSystemId": 1, "sshKeys": [99]}, "ssh key 99 is invalid"),
        ({"operatingSystemId": 1, "swap": 300}, "swap"),
        ({"operatingSystemId": 1, "vnc": "yes"}, "true or false"),
        ({"operatingSystemId": 1, "hostname": "bad host"}, "hostname"),
    ],
)
async def test_build_validation(
    api: Api, state: PanelState, body: dict[str, object], fragment: str
) -> None:
    sid = (await create(api))["id"]
    reply = await api.post(f"/servers/{sid}/build", body)
    assert reply.status == 422, reply.raw
    assert isinstance(reply.body, dict)
    assert any(fragment in e for e in reply.body["errors"]), reply.body
    assert state.servers[sid].build is None


async def test_a_building_server_is_locked(api: Api, clock: FakeClock) -> None:
    sid = (await create(api))["id"]
    await api.post(f"/servers/{sid}/build", {"operatingSystemId": 1})
    for action in ("build", "suspend", "unsuspend", "power/boot"):
        reply = await api.post(f"/servers/{sid}/{action}")
        assert reply.status == 423
        assert isinstance(reply.body, dict) and isinstance(reply.body["msg"], str)
    clock.advance(10)
    assert (await api.post(f"/servers/{sid}/suspend")).status == 204
    assert (await api.get(f"/servers/{sid}")).data()["suspended"] is True
    assert (await api.post(f"/servers/{sid}/unsuspend")).status == 204


async def test_build_on_unknown_server_is_404(api: Api) -> None:
    reply = await api.post("/servers/999/build", {"operatingSystemId": 1})
    assert (reply.status, reply.body) == (404, {"msg": "server not found"})


# -- delete ---------------------------------------------------------------------------------------


async def test_delete_then_404_and_capacity_freed(api: Api, state: PanelState) -> None:
    server = await create(api)
    sid = server["id"]
    reply = await api.call("DELETE", f"/servers/{sid}")
    assert (reply.status, reply.raw) == (204, "")
    for method, path in (
        ("GET", f"/servers/{sid}"),
        ("DELETE", f"/servers/{sid}"),
        ("POST", f"/servers/{sid}/suspend"),
        ("POST", f"/servers/{sid}/unsuspend"),
    ):
        gone = await api.call(method, path)
        assert (gone.status, gone.body) == (404, {"msg": "server not found"})
    again = await create(api)
    assert _ipv4s(again) == _ipv4s(server)  # the address went back to the pool


async def test_delete_with_delay_waits_for_the_clock(api: Api, clock: FakeClock) -> None:
    sid = (await create(api))["id"]
    assert (await api.call("DELETE", f"/servers/{sid}", params={"delay": "5"})).status == 204
    assert (await api.get(f"/servers/{sid}")).status == 200
    clock.advance(5 * 60)
    assert (await api.get(f"/servers/{sid}")).status == 404


@pytest.mark.parametrize("delay", ["-1", "43801", "soon"])
async def test_delete_delay_out_of_range_is_422(api: Api, delay: str) -> None:
    sid = (await create(api))["id"]
    reply = await api.call("DELETE", f"/servers/{sid}", params={"delay": delay})
    assert reply.status == 422


# -- power, queue, remote state --------------------------------------------------------------


async def test_power_queue_and_remote_state(api: Api, clock: FakeClock) -> None:
    sid = (await create(api))["id"]
    await api.post(f"/servers/{sid}/build", {"operatingSystemId": 2})
    clock.advance(10)
    # Only `"remoteState": false` is documented; the sandbox invents no live object.
    for params in ({"remoteState": "true"}, {"remoteState": "false"}, {}):
        assert (await api.get(f"/servers/{sid}", params=params)).data()["remoteState"] is False

    reply = await api.post(f"/servers/{sid}/power/shutdown")
    assert reply.status == 200
    queue_id = reply.data()["queueId"]
    assert isinstance(queue_id, int)
    task = (await api.get(f"/queue/{queue_id}")).data()
    assert task["finished"] is None and task["failed"] is False and task["serverId"] == sid
    assert (await api.post(f"/servers/{sid}/power/boot")).status == 423
    clock.advance(1.5)
    assert (await api.get(f"/queue/{queue_id}")).data()["progress"] == 50
    clock.advance(1.5)
    task = (await api.get(f"/queue/{queue_id}")).data()
    assert task["progress"] == 100 and task["finished"] is not None
    assert (await api.post(f"/servers/{sid}/power/reboot")).status == 404
    assert (await api.get("/queue/1")).status == 404


async def test_power_on_unbuilt_server_fails_the_task(api: Api, clock: FakeClock) -> None:
    sid = (await create(api))["id"]
    queue_id = (await api.post(f"/servers/{sid}/power/boot")).data()["queueId"]
    clock.advance(5)
    task = (await api.get(f"/queue/{queue_id}")).data()
    assert task["failed"] is True
    assert task["errors"]["exception"]["message"]


# -- other server operations ---------------------------------------------------------------------


async def test_backup_owner_throttle_vnc_traffic(api: Api, state: PanelState) -> None:
    sid = (await create(api))["id"]
    assert (await api.call("PUT", f"/servers/{sid}/backups/plan/2")).status == 201
    assert (await api.get(f"/servers/{sid}")).data()["backupPlan"] == {"id": 2, "name": "Weekly"}
    assert (await api.call("PUT", f"/servers/{sid}/backups/plan/0")).status == 201
    assert (await api.call("PUT", f"/servers/{sid}/backups/plan/7")).status == 422
    assert (await api.call("PUT", f"/servers/{sid}/owner/2")).status == 201
    assert state.servers[sid].owner_id == 2
    assert (await api.call("PUT", f"/servers/{sid}/owner/9")).status == 422
    throttle = f"/servers/{sid}/modify/cpuThrottle"
    assert (
        await api.call("PUT", throttle, json={"percent": 50}, params={"sync": "true"})
    ).status == 201
    assert (await api.get(f"/servers/{sid}")).data()["cpu"]["throttle"] == 50
    for bad in ({"percent": 100}, {"percent": "5"}, {}):
        assert (await api.call("PUT", throttle, json=bad)).status == 422
    assert (await api.post(f"/servers/{sid}/vnc", {})).status == 422
    assert (await api.post(f"/servers/{sid}/vnc", {"action": "on"})).status == 422
    vnc = (await api.post(f"/servers/{sid}/vnc", {"action": "enable"})).data()
    assert isinstance(vnc["queueId"], int)
    assert vnc["vnc"]["enabled"] is True and vnc["vnc"]["password"]
    assert (await api.get(f"/servers/{sid}/vnc")).data()["vnc"]["enabled"] is True
    traffic = (await api.get(f"/servers/{sid}/traffic")).data()
    month = traffic["monthly"][0]
    assert month["total"] == month["rx"] + month["tx"] and month["limit"] == 1000


async def test_list_filters_by_hypervisor_and_full_type(api: Api) -> None:
    await create(api)
    await create(api)
    await create(api, hypervisorId=2)
    only3 = (await api.get("/servers", params={"hypervisorId": "3"})).body
    assert isinstance(only3, dict) and [r["hypervisorId"] for r in only3["data"]] == [3]
    both = (
        await api.get("/servers", params=[("hypervisorId[]", "1"), ("hypervisorId[]", "2")])
    ).body
    assert isinstance(both, dict) and both["total"] == 2
    full = (await api.get("/servers", params={"type": "full"})).body
    assert isinstance(full, dict) and "commissionStatus" in full["data"][0]
    assert (await api.get("/servers", params={"type": "bogus"})).status == 422


async def test_running_sandbox_rejects_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        async with running_sandbox(host="0.0.0.0"):
            pass


async def test_group_resources_and_creates_agree_on_room(api: Api, state: PanelState) -> None:
    # What `groups/{id}/resources` reports free is what a create may take: one more server
    # than fits is refused with 422 (dry run and create alike), and nothing is allocated.
    amsterdam = {"packageId": 1, "userId": 1, "hypervisorId": 2}
    state.hypervisors[3].max_memory_mb = 2048
    rows = (await api.get("/compute/hypervisors/groups/2/resources")).body["data"]  # type: ignore[index]
    assert [r["resources"]["memory"]["free"] for r in rows] == [2048]
    assert (await api.post("/servers", amsterdam)).status == 201
    assert (await api.post("/servers", amsterdam)).status == 201
    rows = (await api.get("/compute/hypervisors/groups/2/resources")).body["data"]  # type: ignore[index]
    assert [r["resources"]["memory"]["free"] for r in rows] == [0]
    assert (await api.post("/servers?dryRun=true", amsterdam)).status == 422
    reply = await api.post("/servers", amsterdam)
    assert reply.status == 422 and isinstance(reply.body, dict)
    assert isinstance(reply.body["errors"], list) and isinstance(reply.body["errors"][0], str)
    assert len(state.servers) == 2


async def test_a_server_limit_of_zero_means_no_limit(api: Api, state: PanelState) -> None:
    # Every resources example has servers.max 0 with free = -allocated: read as "no limit".
    state.hypervisors[3].max_servers = 0
    amsterdam = {"packageId": 1, "userId": 1, "hypervisorId": 2}
    assert (await api.post("/servers", amsterdam)).status == 201
    rows = (await api.get("/compute/hypervisors/groups/2/resources")).body["data"]  # type: ignore[index]
    assert rows[0]["resources"]["servers"]["max"] == 0
    assert rows[0]["resources"]["servers"]["free"] == -1
