"""`make_plan` and friends, called directly with hand-built PanelFacts: no event loop, no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.provisioning.errors import PlanError
from bot.provisioning.plan import (
    KBPS_PER_MBPS,
    PROFILE_FROM_ENV,
    PROFILE_FROM_PACKAGE,
    PROFILE_FROM_REQUEST,
    EngineDefaults,
    PanelFacts,
    Plan,
    make_plan,
    match_template,
    render_plan_text,
    resolve_group_list,
)
from bot.provisioning.reading import parse_request
from bot.provisioning.request import Problem, ProvisionRequest
from bot.virtfusion import (
    BuildServerBody,
    CreateServerBody,
    GroupCapacity,
    Hypervisor,
    HypervisorGroup,
    HypervisorResources,
    OsTemplate,
    Package,
    SshKey,
)

EXAMPLES = Path(__file__).parents[2] / "examples"

DEFAULTS = EngineDefaults(user_id=1, package_id=1)

SMALL = Package.model_validate(
    {
        "id": 1,
        "name": "Small",
        "enabled": True,
        "memory": 1024,
        "primaryStorage": 25,
        "traffic": 1000,
        "cpuCores": 1,
        "primaryNetworkSpeedIn": 125000,
        "primaryNetworkSpeedOut": 125000,
        "primaryNetworkProfile": 1,
        "primaryStorageProfile": 1,
    }
)
# A package an operator set up without a network profile ("missing network configuration").
BARE = Package.model_validate(
    {"id": 7, "name": "Bare", "memory": 512, "primaryStorage": 10, "cpuCores": 1}
)

GROUPS = [
    HypervisorGroup.model_validate({"id": 1, "name": "Prague", "enabled": True, "default": True}),
    HypervisorGroup.model_validate({"id": 2, "name": "Amsterdam", "enabled": True}),
    HypervisorGroup.model_validate({"id": 4, "name": "Oslo", "enabled": False}),
]
GROUP_LIST = "Prague (id 1), Amsterdam (id 2), Oslo (id 4)"


def hypervisor(hv_id: int, name: str, group_id: int | None, **extra: object) -> Hypervisor:
    group = {"id": group_id, "name": "?"} if group_id is not None else None
    return Hypervisor.model_validate({"id": hv_id, "name": name, "group": group, **extra})


HYPERVISORS: dict[int, Hypervisor | None] = {
    1: hypervisor(1, "prg-hv1", 1),
    2: hypervisor(2, "prg-hv2", 1),
    3: hypervisor(3, "ams-hv1", 2),
    5: hypervisor(5, "prg-hv5", 1, maintenance=True),
    6: hypervisor(6, "lost-hv", 99),
    99: None,  # the planner asked the panel: 404
}


def template(t_id: int, name: str, version: str, variant: str, **extra: object) -> OsTemplate:
    return OsTemplate.model_validate(
        {"id": t_id, "name": name, "version": version, "variant": variant, **extra}
    )


TEMPLATES = [
    template(1, "Ubuntu", "22.04", "Server"),
    template(2, "Ubuntu", "24.04", "Server"),
    template(3, "Debian", "12", "Bookworm"),
    template(4, "AlmaLinux", "9", "Minimal"),
    template(5, "Debian", "10", "Buster", eol=True),
]

KEYS = [
    SshKey.model_validate({"id": 1, "name": "default", "type": "ssh-ed25519", "enabled": True}),
    SshKey.model_validate({"id": 2, "name": "ops-team", "type": "ssh-ed25519", "enabled": True}),
    SshKey.model_validate({"id": 7, "name": "key-name", "type": "ssh-rsa", "enabled": True}),
    SshKey.model_validate({"id": 8, "name": "retired", "type": "ssh-rsa", "enabled": False}),
]
KEY_LIST = "default, key-name, ops-team, retired"


def resources_row(
    hv_id: int,
    *,
    memory: int = 20480,
    disk: int = 500,
    ipv4: int = 50,
    servers: int = 30,
    prohibit: bool = False,
) -> HypervisorResources:
    """One row of `GET /compute/hypervisors/groups/{id}/resources`, as the panel spells it."""
    return HypervisorResources.model_validate(
        {
            "hypervisor": {
                "id": hv_id,
                "name": f"hv{hv_id}",
                "enabled": True,
                "prohibit": prohibit,
                "accept": True,
                "commissioned": 1,
            },
            "resources": {
                "servers": {"max": 30, "allocated": 30 - servers, "free": servers},
                "memory": {"units": "MB", "max": 20480, "allocated": 0, "free": memory},
                "cpuCores": {"max": 32, "allocated": 0, "free": 32},
                "localStorage": {"units": "GB", "max": 500, "allocated": 0, "free": disk},
                "network": {"total": {"ipv4": {"free": ipv4}}},
            },
        }
    )


def group_capacity(group_id: int, *rows: HypervisorResources) -> GroupCapacity:
    return GroupCapacity.from_rows(group_id, list(rows))


def facts(
    *,
    package: Package = SMALL,
    templates: list[OsTemplate] | None = None,
    hypervisors: dict[int, Hypervisor | None] | None = None,
    capacity: dict[int, GroupCapacity] | None = None,
) -> PanelFacts:
    return PanelFacts(
        package=package,
        groups=list(GROUPS),
        templates=list(TEMPLATES if templates is None else templates),
        ssh_keys=list(KEYS),
        hypervisors=dict(HYPERVISORS if hypervisors is None else hypervisors),
        capacity=dict(capacity or {}),
    )


def instance(**fields: object) -> dict[str, object]:
    return {"name": "web", "template": "ubuntu-22.04", "hypervisor_group": "Prague", **fields}


def request(*instances: dict[str, object]) -> ProvisionRequest:
    return parse_request({"project_name": "demo", "instances": list(instances) or [instance()]})


def example(name: str) -> ProvisionRequest:
    return parse_request((EXAMPLES / name).read_bytes())


def plan(
    req: ProvisionRequest, panel: PanelFacts | None = None, defaults: EngineDefaults = DEFAULTS
) -> Plan:
    return make_plan(req, panel or facts(), defaults)


def problems_of(
    req: ProvisionRequest, panel: PanelFacts | None = None, defaults: EngineDefaults = DEFAULTS
) -> list[Problem]:
    with pytest.raises(PlanError) as caught:
        make_plan(req, panel or facts(), defaults)
    return caught.value.problems


def only_problem(
    req: ProvisionRequest, panel: PanelFacts | None = None, defaults: EngineDefaults = DEFAULTS
) -> Problem:
    problems = problems_of(req, panel, defaults)
    assert len(problems) == 1, problems
    return problems[0]


def assert_shape(body: dict[str, object], expected: dict[str, object]) -> None:
    """Equal keys and values AND identical types (`True == 1` would hide a bool-for-int bug)."""
    assert body == expected
    for key, value in expected.items():
        assert type(body[key]) is type(value), (key, body[key])
        if isinstance(value, list):
            actual = body[key]
            assert isinstance(actual, list)
            assert [type(v) for v in actual] == [type(v) for v in value], key


# -- the example files ---------------------------------------------------------------------------


def test_create_json_maps_every_field() -> None:
    result = plan(example("create.json"))

    (server,) = result.servers
    assert_shape(
        server.create_body.to_json(),
        {
            "packageId": 1,
            "userId": 1,
            "hypervisorId": 1,  # the GROUP Prague, although the request says hypervisor_id 2
            "memory": 1024,
            "storage": 25,
            "cpuCores": 1,
            "networkSpeedInbound": 125_000,
            "networkSpeedOutbound": 125_000,
            "networkProfile": 2,
        },
    )
    assert_shape(
        server.build_body.to_json(),
        {"operatingSystemId": 1, "name": "test-server", "hostname": "test-server", "sshKeys": [1]},
    )
    assert isinstance(server.create_body, CreateServerBody)
    assert isinstance(server.build_body, BuildServerBody)
    assert server.create_body.hypervisor_group_id == 1
    assert server.group_id == 1
    assert server.group_name == "Prague"
    assert server.hypervisor_hint == "prg-hv2"
    assert server.network_profile_source == PROFILE_FROM_REQUEST
    assert result.warnings == [
        "test-server: hypervisor_id 2 (prg-hv2) selects group Prague; VirtFusion places servers "
        "within a group, so the panel picks the hypervisor and the server may land on another one"
    ]


def test_create_with_network_json_adds_ipv4_and_firewall() -> None:
    (server,) = plan(example("create-with-network.json")).servers

    assert_shape(
        server.create_body.to_json(),
        {
            "packageId": 1,
            "userId": 1,
            "hypervisorId": 1,
            "ipv4": 1,
            "memory": 1024,
            "storage": 25,
            "cpuCores": 1,
            "networkSpeedInbound": 125_000,
            "networkSpeedOutbound": 125_000,
            "networkProfile": 2,
            "firewallRulesets": [2, 3],
        },
    )
    assert server.firewall_rulesets == [2, 3]
    assert server.ipv4 == 1


def test_request_format_json_maps_volume_to_additional_storage() -> None:
    result = plan(example("request-format.json"))

    (server,) = result.servers
    assert_shape(
        server.create_body.to_json(),
        {
            "packageId": 1,
            "userId": 1,
            "hypervisorId": 1,  # hypervisor_id 1 (prg-hv1) is in group Prague (1)
            "ipv4": 1,
            "memory": 1024,
            "storage": 25,
            "cpuCores": 1,
            "networkSpeedInbound": 125_000,
            "networkSpeedOutbound": 125_000,
            "networkProfile": 2,
            "additionalStorage1Enable": True,
            "additionalStorage1Capacity": 20,
        },
    )
    assert_shape(
        server.build_body.to_json(),
        {
            "operatingSystemId": 1,
            "name": "instance-name",
            "hostname": "instance-name",
            "sshKeys": [7],
        },
    )
    assert [(v.name, v.size_gb, v.mount_point) for v in server.volumes] == [
        ("volume-name", 20, "/mnt/data")
    ]
    assert (
        "instance-name: volume 'volume-name' (20 GB) is attached as an extra disk; VirtFusion "
        "does not format or mount it, so its name and mount point are not applied"
    ) in result.warnings
    assert result.total_disk_gb == 45
    assert [(g.group_id, g.servers, g.memory_mb, g.disk_gb, g.ipv4) for g in result.groups] == [
        (1, 1, 1024, 45, 1)
    ]


@pytest.mark.parametrize("name", ["create.json", "create-with-network.json", "request-format.json"])
def test_build_body_has_only_real_build_fields(name: str) -> None:
    (server,) = plan(example(name)).servers

    assert set(server.build_body.to_json()) == {"operatingSystemId", "name", "hostname", "sshKeys"}
    assert not {"template", "userData", "image", "name"} & set(server.create_body.to_json())


def test_plan_describes_the_request() -> None:
    result = plan(example("create.json"))

    assert result.project_name == "talis-test"
    assert (result.package_id, result.package_name, result.owner_user_id) == (1, "Small", 1)
    assert result.total_memory_mb == 1024


# -- create body details -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_ip", "expected"), [(True, 1), (False, 0)], ids=["public", "private"]
)
def test_public_ip_becomes_an_ipv4_count(public_ip: bool, expected: int) -> None:
    (server,) = plan(request(instance(network={"public_ip": public_ip}))).servers

    assert server.create_body.to_json()["ipv4"] == expected
    assert type(server.create_body.to_json()["ipv4"]) is int


def test_unset_public_ip_leaves_ipv4_to_the_package() -> None:
    (server,) = plan(request(instance(network={"bandwidth": 10}))).servers

    assert "ipv4" not in server.create_body.to_json()
    assert server.ipv4 is None


@pytest.mark.parametrize("mbps", [1, 1000, 100_000])
def test_bandwidth_is_converted_to_kilobytes_per_second(mbps: int) -> None:
    (server,) = plan(request(instance(network={"bandwidth": mbps}))).servers

    assert KBPS_PER_MBPS == 125
    assert server.create_body.to_json()["networkSpeedInbound"] == mbps * 125
    assert server.create_body.to_json()["networkSpeedOutbound"] == mbps * 125
    assert server.bandwidth_mbps == mbps


def test_without_resources_the_package_sizes_apply_and_nothing_is_sent() -> None:
    (server,) = plan(request(instance())).servers

    assert_shape(server.create_body.to_json(), {"packageId": 1, "userId": 1, "hypervisorId": 1})
    assert (server.memory_mb, server.disk_gb, server.cpu_cores) == (1024, 25, 1)


def test_only_the_resources_the_request_sets_are_sent() -> None:
    (server,) = plan(request(instance(resources={"memory": 2048}))).servers

    assert_shape(
        server.create_body.to_json(),
        {"packageId": 1, "userId": 1, "hypervisorId": 1, "memory": 2048},
    )
    assert (server.memory_mb, server.disk_gb, server.cpu_cores) == (2048, 25, 1)


def test_resources_missing_from_request_and_package_are_problems() -> None:
    bare = Package.model_validate({"id": 3, "name": "Empty", "primaryNetworkProfile": 1})

    problems = problems_of(request(instance(resources={"cpu": 2})), facts(package=bare))

    assert [p.path for p in problems] == [
        "instances[0].resources.memory",
        "instances[0].resources.disk",
    ]
    assert problems[0].message == (
        "not given and package Empty (3) has no default; set it in the request"
    )


def test_no_firewall_rulesets_means_package_rulesets() -> None:
    (server,) = plan(request(instance(network={"public_ip": True}))).servers

    assert "firewallRulesets" not in server.create_body.to_json()


def test_minus_one_firewall_ruleset_is_passed_through() -> None:
    (server,) = plan(request(instance(network={"firewall_rulesets": [-1]}))).servers

    assert server.create_body.to_json()["firewallRulesets"] == [-1]


def test_two_volumes_use_both_additional_storage_slots() -> None:
    volumes = [{"name": "data", "size_gb": 20}, {"name": "logs", "size_gb": 5}]

    result = plan(request(instance(volumes=volumes)))

    body = result.servers[0].create_body.to_json()
    assert body["additionalStorage1Enable"] is True
    assert body["additionalStorage1Capacity"] == 20
    assert body["additionalStorage2Enable"] is True
    assert body["additionalStorage2Capacity"] == 5
    assert (
        "web: volume 'logs' (5 GB) is attached as an extra disk; VirtFusion does not format or "
        "mount it, so its name is not applied"
    ) in result.warnings


def test_number_of_instances_expands_to_named_servers_with_one_body() -> None:
    result = plan(request(instance(number_of_instances=3)))

    assert [s.name for s in result.servers] == ["web-1", "web-2", "web-3"]
    assert [s.build_body.to_json()["hostname"] for s in result.servers] == [
        "web-1",
        "web-2",
        "web-3",
    ]
    assert len({str(s.create_body.to_json()) for s in result.servers}) == 1
    assert result.groups[0].servers == 3
    assert result.total_memory_mb == 3 * 1024


def test_no_ssh_key_sends_no_keys_and_warns() -> None:
    result = plan(request(instance()))

    assert "sshKeys" not in result.servers[0].build_body.to_json()
    assert result.warnings == [
        "web: no ssh_key_name, so the server gets no SSH key; the root password is only in the "
        "VirtFusion panel (vfbot never shows it)"
    ]


# -- group resolution ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "group_id"),
    [("Prague", 1), ("prague", 1), ("AMSTERDAM", 2), (2, 2), ("2", 2), (1, 1)],
)
def test_group_by_name_or_id(wanted: str | int, group_id: int) -> None:
    result = plan(request(instance(hypervisor_group=wanted)))

    assert result.servers[0].create_body.to_json()["hypervisorId"] == group_id
    assert result.servers[0].group_id == group_id


def test_hypervisor_id_alone_selects_its_group_with_a_warning() -> None:
    req = request(instance(hypervisor_group=None, hypervisor_id=3))

    groups, problems, warnings = resolve_group_list(req.instances[0], 0, facts(), DEFAULTS)

    assert [g.name for g in groups] == ["Amsterdam"]
    assert problems == []
    assert warnings == [
        "web: hypervisor_id 3 (ams-hv1) selects group Amsterdam; VirtFusion places servers "
        "within a group, so the panel picks the hypervisor and the server may land on another one"
    ]
    assert plan(req).servers[0].create_body.to_json()["hypervisorId"] == 2


def test_hypervisor_in_maintenance_is_mentioned() -> None:
    result = plan(request(instance(hypervisor_id=5)))

    assert (
        "hypervisor_id 5 (prg-hv5) selects group Prague (it is in maintenance)"
        in (result.warnings[0])
    )


def test_hypervisor_and_group_that_disagree_are_a_problem() -> None:
    problem = only_problem(request(instance(hypervisor_id=3, hypervisor_group="Prague")))

    assert problem == Problem(
        "instances[0].hypervisor_id",
        "hypervisor ams-hv1 (3) is in group Amsterdam, not in hypervisor_group Prague; make them "
        "agree or drop one",
    )


def test_unknown_hypervisor_id_is_a_problem() -> None:
    problem = only_problem(request(instance(hypervisor_id=99)))

    assert problem.path == "instances[0].hypervisor_id"
    assert problem.message.startswith("no hypervisor with id 99 on the panel")


def test_hypervisor_in_an_unknown_group_is_a_problem() -> None:
    problem = only_problem(request(instance(hypervisor_group=None, hypervisor_id=6)))

    assert problem == Problem(
        "instances[0].hypervisor_id",
        "hypervisor lost-hv (6) belongs to no known hypervisor group; give hypervisor_group "
        "instead",
    )


def test_unknown_group_lists_the_groups() -> None:
    problem = only_problem(request(instance(hypervisor_group="Berlin")))

    assert problem == Problem(
        "instances[0].hypervisor_group",
        f"no hypervisor group 'Berlin' on the panel; use one of: {GROUP_LIST}",
    )


def test_unknown_group_id_lists_the_groups() -> None:
    problem = only_problem(request(instance(hypervisor_group=9)))

    assert problem.path == "instances[0].hypervisor_group"
    assert problem.message == f"no hypervisor group 9 on the panel; use one of: {GROUP_LIST}"


def test_non_ascii_digits_are_a_name_not_an_id() -> None:
    # "²".isdigit() is True but int("²") raises: this used to crash make_plan.
    problem = only_problem(request(instance(hypervisor_group="²")))

    assert problem.path == "instances[0].hypervisor_group"


def test_no_group_and_no_default_lists_the_groups() -> None:
    problem = only_problem(request(instance(hypervisor_group=None)))

    assert problem == Problem(
        "instances[0].hypervisor_group",
        "no hypervisor group given and VIRTFUSION_HYPERVISOR_GROUP_ID is not set; set "
        f"hypervisor_group to one of: {GROUP_LIST}",
    )


def test_default_group_setting_is_used() -> None:
    defaults = EngineDefaults(user_id=1, package_id=1, default_group_id=2)

    result = plan(request(instance(hypervisor_group=None)), defaults=defaults)

    assert result.servers[0].create_body.to_json()["hypervisorId"] == 2
    assert result.servers[0].group_name == "Amsterdam"
    assert not [w for w in result.warnings if "hypervisor" in w]


def test_request_group_beats_default_group() -> None:
    defaults = EngineDefaults(user_id=1, package_id=1, default_group_id=2)

    result = plan(request(instance(hypervisor_group="Prague")), defaults=defaults)

    assert result.servers[0].create_body.to_json()["hypervisorId"] == 1


def test_default_group_missing_from_panel_is_a_problem() -> None:
    defaults = EngineDefaults(user_id=1, package_id=1, default_group_id=42)

    problem = only_problem(request(instance(hypervisor_group=None)), defaults=defaults)

    assert problem == Problem(
        "instances[0].hypervisor_group",
        "VIRTFUSION_HYPERVISOR_GROUP_ID=42 is not a group on the panel; fix the setting or give "
        f"hypervisor_group: {GROUP_LIST}",
    )


def test_disabled_group_is_a_problem() -> None:
    problem = only_problem(request(instance(hypervisor_group="Oslo")))

    assert problem == Problem(
        "instances[0].hypervisor_group",
        "hypervisor group Oslo is disabled on the panel; pick another: Prague (id 1), "
        "Amsterdam (id 2)",
    )


# -- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "template_id"),
    [
        ("ubuntu-22.04", 1),
        ("Ubuntu 22.04", 1),
        ("UBUNTU-22.04", 1),
        ("Ubuntu 22.04 Server", 1),
        ("1", 1),
        ("debian-12", 3),
        ("4", 4),
    ],
)
def test_template_matches(wanted: str, template_id: int) -> None:
    found = match_template(wanted, TEMPLATES)

    assert isinstance(found, OsTemplate)
    assert found.id == template_id


def test_numeric_template_in_request_becomes_operating_system_id() -> None:
    result = plan(request(instance(template=3)))

    assert result.servers[0].build_body.to_json()["operatingSystemId"] == 3
    assert result.servers[0].os_label == "Debian 12 Bookworm"


def test_ambiguous_template_is_a_problem() -> None:
    templates = [*TEMPLATES, template(6, "Ubuntu", "22.04", "Minimal")]

    problem = only_problem(request(instance()), facts(templates=templates))

    assert problem == Problem(
        "instances[0].template",
        "'ubuntu-22.04' matches several templates: Ubuntu 22.04 Server (id 1), Ubuntu 22.04 "
        "Minimal (id 6); use the id or the full name",
    )
    chosen = plan(request(instance(template="ubuntu-22.04-minimal")), facts(templates=templates))
    assert chosen.servers[0].build_body.to_json()["operatingSystemId"] == 6


def test_unknown_template_suggests_the_closest_names() -> None:
    problem = only_problem(request(instance(template="ubuntu-22.10")))

    assert problem.path == "instances[0].template"
    assert problem.message.startswith("no OS template 'ubuntu-22.10' for this package; closest: ")
    assert "Ubuntu 22.04 Server → 'ubuntu-22.04-server'" in problem.message


def test_unknown_template_without_close_names_lists_the_choices() -> None:
    problem = only_problem(request(instance(template="windows")))

    assert problem == Problem(
        "instances[0].template",
        "no OS template 'windows' for this package; available: almalinux-9-minimal, "
        "debian-12-bookworm, ubuntu-22.04-server, ubuntu-24.04-server",
    )


def test_unknown_template_id_is_a_problem() -> None:
    problem = only_problem(request(instance(template=99)))

    assert problem.path == "instances[0].template"
    assert problem.message.startswith("no OS template with id 99 for this package; available: ")


def test_template_named_with_non_ascii_digits_does_not_crash() -> None:
    assert isinstance(match_template("²", TEMPLATES), str)


def test_end_of_life_template_is_a_warning() -> None:
    result = plan(request(instance(template="debian-10")))

    assert result.servers[0].build_body.to_json()["operatingSystemId"] == 5
    assert "web: Debian 10 Buster is end-of-life" in result.warnings


# -- SSH keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key_id"), [("ops-team", 2), ("OPS-Team", 2), ("default", 1)])
def test_ssh_key_found_by_name(name: str, key_id: int) -> None:
    (server,) = plan(request(instance(ssh_key_name=name))).servers

    assert server.build_body.to_json()["sshKeys"] == [key_id]
    assert server.ssh_key_id == key_id


def test_unknown_ssh_key_lists_the_key_names() -> None:
    problem = only_problem(request(instance(ssh_key_name="laptop")))

    assert problem == Problem(
        "instances[0].ssh_key_name",
        f"no SSH key named 'laptop' for VirtFusion user 1; keys: {KEY_LIST}. Add the key in "
        "VirtFusion or fix the name",
    )


def test_disabled_ssh_key_is_a_problem() -> None:
    problem = only_problem(request(instance(ssh_key_name="retired")))

    assert problem == Problem("instances[0].ssh_key_name", "SSH key 'retired' is disabled")


# -- network profile: request > VIRTFUSION_NETWORK_PROFILE_ID > package --------------------------


def test_request_profile_wins_over_the_setting() -> None:
    defaults = EngineDefaults(user_id=1, package_id=1, default_network_profile_id=1)

    (server,) = plan(request(instance(network={"profile_id": 2})), defaults=defaults).servers

    assert server.create_body.to_json()["networkProfile"] == 2
    assert server.network_profile_source == PROFILE_FROM_REQUEST


def test_setting_applies_when_the_request_has_no_profile() -> None:
    defaults = EngineDefaults(user_id=1, package_id=1, default_network_profile_id=3)

    (server,) = plan(request(instance(network={"bandwidth": 5})), defaults=defaults).servers

    assert server.create_body.to_json()["networkProfile"] == 3
    assert server.network_profile_source == PROFILE_FROM_ENV


def test_without_request_or_setting_the_package_profile_applies() -> None:
    (server,) = plan(request(instance())).servers

    assert "networkProfile" not in server.create_body.to_json()
    assert server.network_profile is None
    assert server.network_profile_source == PROFILE_FROM_PACKAGE


def test_profile_is_never_taken_from_hypervisor_networks() -> None:
    bridged = {**HYPERVISORS, 2: hypervisor(2, "prg-hv2", 1, networks=[{"id": 11, "primary": 1}])}

    (server,) = plan(request(instance(hypervisor_id=2)), facts(hypervisors=bridged)).servers

    assert "networkProfile" not in server.create_body.to_json()


def test_missing_network_configuration_is_a_problem() -> None:
    problem = only_problem(request(instance()), facts(package=BARE))

    assert problem == Problem(
        "instances[0].network.profile_id",
        "no network profile: the request has no network.profile_id, "
        "VIRTFUSION_NETWORK_PROFILE_ID is not set and package Bare (7) has no primary network "
        "profile; set one",
    )


@pytest.mark.parametrize(
    ("network", "defaults", "profile"),
    [
        ({"profile_id": 2}, DEFAULTS, 2),
        (None, EngineDefaults(user_id=1, package_id=7, default_network_profile_id=1), 1),
    ],
    ids=["request", "setting"],
)
def test_package_without_profile_is_fine_when_one_is_given(
    network: dict[str, object] | None, defaults: EngineDefaults, profile: int
) -> None:
    (server,) = plan(request(instance(network=network)), facts(package=BARE), defaults).servers

    assert server.create_body.to_json()["networkProfile"] == profile
    assert server.create_body.to_json()["packageId"] == 7


# -- capacity ------------------------------------------------------------------------------------


def test_memory_shortfall_names_free_and_needed() -> None:
    panel = facts(capacity={1: group_capacity(1, resources_row(1, memory=2048))})

    problem = only_problem(request(instance(number_of_instances=3)), panel)

    assert problem == Problem(
        "instances",
        "not enough memory in hypervisor group Prague: 2,048 MB free, this request needs "
        "3,072 MB for 3 server(s); ask for fewer or smaller servers, or use another "
        "hypervisor_group",
    )


def test_disk_shortfall_counts_volumes() -> None:
    panel = facts(capacity={1: group_capacity(1, resources_row(1, disk=40))})
    volumes = [{"name": "data", "size_gb": 20}]

    problem = only_problem(request(instance(volumes=volumes)), panel)

    assert problem.path == "instances"
    assert problem.message.startswith(
        "not enough local disk in hypervisor group Prague: 40 GB free, this request needs 45 GB "
        "for "
        "1 server(s)"
    )


def test_ipv4_shortfall() -> None:
    panel = facts(
        capacity={1: group_capacity(1, resources_row(1, ipv4=1), resources_row(2, ipv4=1))}
    )

    problem = only_problem(
        request(instance(number_of_instances=3, network={"public_ip": True})), panel
    )

    assert problem.path == "instances"
    assert problem.message.startswith(
        "not enough IPv4 addresses in hypervisor group Prague: 2 free, this request needs 3 for "
        "3 server(s)"
    )


def test_unset_public_ip_counts_one_address_and_false_counts_none() -> None:
    panel = facts(capacity={1: group_capacity(1, resources_row(1, ipv4=0))})

    assert "IPv4" in only_problem(request(instance()), panel).message
    private = plan(request(instance(network={"public_ip": False})), panel)
    assert private.groups[0].ipv4 == 0


def test_server_slot_shortfall() -> None:
    panel = facts(capacity={1: group_capacity(1, resources_row(1, servers=1))})

    problem = only_problem(request(instance(number_of_instances=2)), panel)

    assert problem.message.startswith(
        "not enough server slots in hypervisor group Prague: 1 free, this request needs 2"
    )


def test_server_bigger_than_any_single_hypervisor() -> None:
    rows = (resources_row(1, memory=2048), resources_row(2, memory=2048))
    panel = facts(capacity={1: group_capacity(1, *rows)})

    problem = only_problem(request(instance(resources={"memory": 3072})), panel)

    assert problem == Problem(
        "instances[0].resources.memory",
        "no single hypervisor in hypervisor group Prague has 3,072 MB free (largest free: "
        "2,048 MB)",
    )


def test_ineligible_hypervisors_do_not_count() -> None:
    rows = (resources_row(1, memory=512), resources_row(2, memory=20480, prohibit=True))
    panel = facts(capacity={1: group_capacity(1, *rows)})

    problem = only_problem(request(instance()), panel)

    assert problem.message.startswith("not enough memory in hypervisor group Prague: 512 MB free")


def test_capacity_is_checked_per_group() -> None:
    panel = facts(
        capacity={
            1: group_capacity(1, resources_row(1, memory=1024)),
            2: group_capacity(2, resources_row(3, memory=40960)),
        }
    )
    req = request(
        instance(name="a", hypervisor_group="Prague"),
        instance(name="b", hypervisor_group="Amsterdam", number_of_instances=4),
    )

    result = plan(req, panel)

    assert [(g.group_name, g.servers, g.memory_mb) for g in result.groups] == [
        ("Prague", 1, 1024),
        ("Amsterdam", 4, 4096),
    ]


def test_enough_capacity_passes() -> None:
    panel = facts(capacity={1: group_capacity(1, resources_row(1), resources_row(2))})

    result = plan(request(instance(number_of_instances=20)), panel)

    assert len(result.servers) == 20


# -- many problems at once -----------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    req = request(
        instance(name="a", hypervisor_group="Berlin", template="plan9", ssh_key_name="nope"),
        instance(name="b", hypervisor_id=3, template=99, resources={"memory": 2048}),
        instance(name="c", hypervisor_group="Amsterdam", ssh_key_name="default"),
    )

    problems = problems_of(req, facts(package=BARE))

    assert [p.path for p in problems] == [
        "instances[0].hypervisor_group",
        "instances[0].template",
        "instances[0].ssh_key_name",
        "instances[0].network.profile_id",
        "instances[1].hypervisor_id",
        "instances[1].template",
        "instances[1].network.profile_id",
        "instances[2].network.profile_id",
    ]
    assert "nothing was created" in str(PlanError(problems))


def test_capacity_is_only_judged_once_everything_else_resolves() -> None:
    panel = facts(capacity={1: group_capacity(1, resources_row(1, memory=0))})

    problems = problems_of(request(instance(template="plan9")), panel)

    assert [p.path for p in problems] == ["instances[0].template"]


# -- rendering -----------------------------------------------------------------------------------


def test_render_mentions_every_server_and_warning() -> None:
    req = request(
        instance(name="web", number_of_instances=2, hypervisor_id=2, ssh_key_name="default"),
        instance(
            name="db",
            hypervisor_group="Amsterdam",
            template="debian-10",
            network={"profile_id": 3, "bandwidth": 100},
            volumes=[{"name": "data", "size_gb": 50, "mount_point": "/srv"}],
        ),
    )
    result = plan(req)

    text = render_plan_text(result)

    assert text.startswith("Project demo: 3 server(s), package Small (1), owner user 1")
    for server in result.servers:
        assert f"- {server.name}: " in text
    assert len(result.warnings) == 4
    for warning in result.warnings:
        assert f"! {warning}" in text
    assert "group Prague (id 1): 2 server(s)" in text
    assert "group Amsterdam (id 2): 1 server(s)" in text
    assert "profile: package default" in text
    assert "profile 3 (request network.profile_id)" in text
    assert "50 GB volume data" in text
    assert "100 Mbps" in text
