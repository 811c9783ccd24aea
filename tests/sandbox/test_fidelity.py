"""The sandbox sends what the spec's official examples show (tests/samples/spec_*.json): the same
JSON type for every field both have, and nothing the spec does not have where vfbot could be
tempted to read it. vfbot's own tests run on the sandbox, so a shape a real panel never sends
here would let them pass for the wrong reason (issue 9, item 20)."""

from __future__ import annotations

from bot.sandbox import FakeClock, PanelState
from bot.virtfusion import PACKAGE_FLAGS
from tests.sandbox.conftest import Api, create
from tests.virtfusion._support import sample


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "null")


def type_mismatches(ours: object, spec: object, path: str = "") -> list[str]:
    """Paths where both have a value and its JSON type differs (a null in the spec says
    nothing about the type; arrays are compared by their first elements)."""
    if spec is None or ours is None:
        return []
    if _kind(ours) != _kind(spec):
        return [f"{path or '.'}: sandbox {_kind(ours)} {ours!r:.40}, spec {_kind(spec)}"]
    if isinstance(ours, dict) and isinstance(spec, dict):
        return [
            problem
            for key in sorted(set(ours) & set(spec))
            for problem in type_mismatches(ours[key], spec[key], f"{path}.{key}")
        ]
    if isinstance(ours, list) and isinstance(spec, list) and ours and spec:
        return type_mismatches(ours[0], spec[0], f"{path}[0]")
    return []


async def _built_server(api: Api, clock: FakeClock, state: PanelState) -> int:
    sid = (await create(api, additionalStorage1Enable=True, additionalStorage1Capacity=5))["id"]
    build = {"operatingSystemId": 1, "name": "web-1", "hostname": "web-1", "ipv6": True}
    assert (await api.post(f"/servers/{sid}/build", build)).status == 200
    clock.advance(60)
    assert state.servers[sid].commission_status(clock()) == 3
    return sid


def test_the_type_comparison_catches_what_issue_9_found() -> None:
    spec = {"a": {"commissioned": True, "enabled": 1}, "s": [{"status": 3}], "n": None}
    ours = {"a": {"commissioned": 1, "enabled": True}, "s": [{"status": "active"}], "n": 5}
    assert type_mismatches(ours, spec) == [
        ".a.commissioned: sandbox number 1, spec boolean",
        ".a.enabled: sandbox boolean True, spec number",
        ".s[0].status: sandbox string 'active', spec number",
    ]


async def test_a_server_has_the_spec_types_and_no_invented_fields(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built_server(api, clock, state)
    spec = sample("spec_server")["data"]
    for params in ({}, {"remoteState": "true"}):
        ours = (await api.get(f"/servers/{sid}", params=params)).data()
        assert type_mismatches(ours, spec) == []
        invented = set(ours) - set(spec) - {"customXML"}
        assert not invented, f"fields the spec's server object does not have: {invented}"
        assert ours["remoteState"] is False  # not an object of made-up power fields
        assert "os" not in ours  # the spec has no os{name,version}
    disks = ours["storage"]
    assert [(d["status"], d["enabled"]) for d in disks] == [(3, True), (3, True)]
    unbuilt = await create(api, additionalStorage1Enable=True, additionalStorage1Capacity=5)
    assert [(d["status"], d["enabled"]) for d in unbuilt["storage"]] == [(3, True), (1, False)]


async def test_a_per_user_row_has_the_spec_types(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    await _built_server(api, clock, state)
    (ours,) = (await api.get("/servers/user/1")).body["data"]
    spec = sample("spec_user_servers")["data"][0]
    assert type_mismatches(ours, spec) == []
    assert set(ours) <= set(spec)
    assert ours["vnc"]["enabled"] == 0 and set(ours["os"]) == {"screen"}


async def test_hypervisor_rows_and_group_resources_have_the_spec_types(api: Api) -> None:
    await create(api)
    hypervisor = (await api.get("/compute/hypervisors")).body["data"][0]
    assert type_mismatches(hypervisor, sample("spec_hypervisors")["data"][0]) == []
    assert hypervisor["commissioned"] == 3
    row = (await api.get("/compute/hypervisors/groups/1/resources")).body["data"][0]
    assert type_mismatches(row, sample("spec_group_resources")["data"][1]) == []
    assert row["hypervisor"]["commissioned"] is True
    assert row["resources"]["localStorage"]["enabled"] == 1
    assert row["resources"]["servers"]["units"] == "#"


async def test_a_build_on_a_built_server_is_a_rebuild_answered_200(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    # The spec's build example is a rebuild of a server built months before: 200, queued,
    # the old `built` kept. (The sandbox used to answer 422, which made vfbot's exactly-once
    # tests lean on the sandbox instead of on vfbot.)
    sid = await _built_server(api, clock, state)
    built = (await api.get(f"/servers/{sid}")).data()["built"]
    again = await api.post(f"/servers/{sid}/build", {"operatingSystemId": 2})
    assert again.status == 200
    data = again.data()
    assert (data["commissionStatus"], data["state"], data["built"]) == (1, "queued", built)
    assert data["settings"]["osTemplateInstallId"] == 2
    assert (await api.post(f"/servers/{sid}/build", {"operatingSystemId": 2})).status == 423
    clock.advance(60)
    rebuilt = (await api.get(f"/servers/{sid}")).data()
    assert rebuilt["commissionStatus"] == 3 and rebuilt["built"] != built


async def test_connect_answers_the_spec_example(api: Api) -> None:
    reply = await api.get("/connect")
    assert (reply.status, reply.body) == (200, [])


# -- day-2 endpoints (issue 13): the same comparison for every answer vfbot reads ----------------


async def test_day2_answers_have_the_spec_types(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built_server(api, clock, state)
    templates = (await api.get(f"/servers/{sid}/templates")).body
    spec_templates = sample("spec_server_templates")
    assert type_mismatches(templates, spec_templates) == []
    assert set(templates["data"][0]) == set(spec_templates["data"][0])
    assert set(templates["data"][0]["templates"][0]) == set(
        spec_templates["data"][0]["templates"][0]
    )

    reset = await api.post(f"/servers/{sid}/resetPassword", {"user": "root", "sendMail": False})
    assert reset.status == 200
    assert type_mismatches(reset.body, sample("spec_reset_password")) == []
    assert set(reset.data()) == set(sample("spec_reset_password")["data"])
    clock.advance(60)  # the reset's queue task ends; the server is unlocked again

    firewall = await api.get(f"/servers/{sid}/firewall/primary")
    assert type_mismatches(firewall.body, sample("spec_firewall")) == []
    assert set(firewall.data()) == {"enabled", "rules"}

    added = await api.post(f"/servers/{sid}/ipv4Qty", {"interface": "primary", "quantity": 2})
    assert added.status == 200
    assert type_mismatches(added.body, sample("spec_ipv4_qty")) == []

    change = await api.call("PUT", f"/servers/{sid}/package/2", json=_ALL_FLAGS)
    assert change.status == 200
    assert type_mismatches(change.body, sample("spec_package_change")) == []
    assert set(change.body) == {"info"}

    state.add_backup(state.servers[sid])
    backups = (await api.get(f"/backups/server/{sid}")).body
    spec_backups = sample("spec_backups")
    assert type_mismatches(backups, spec_backups) == []
    assert set(backups["data"][0]) == set(spec_backups["data"][0])


_ALL_FLAGS = dict.fromkeys(PACKAGE_FLAGS, True)


async def test_a_pending_change_has_the_create_examples_shape(
    api: Api, clock: FakeClock, state: PanelState
) -> None:
    sid = await _built_server(api, clock, state)
    assert (await api.call("PUT", f"/servers/{sid}/modify/memory", json={"memory": 2048})).status
    ours = (await api.get(f"/servers/{sid}")).data()
    (pending,) = ours["tasks"]["actions"]["pending"]
    # The spec's create example (trimmed in this sample) also has `created` on each action.
    spec = sample("create_server_201")["data"]["tasks"]["actions"]["pending"][0]
    assert type_mismatches(pending, spec) == []
    assert set(pending) == set(spec) | {"created"}
    assert "restart" in pending["requires"]
