"""`Planner` over real loopback HTTP against the sandbox panel: lookups, dry runs, refusals."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.provisioning.errors import PlanError
from bot.provisioning.plan import EngineDefaults, Plan
from bot.provisioning.planner import Planner
from bot.provisioning.reading import parse_request
from bot.provisioning.request import Problem, ProvisionRequest
from bot.sandbox import PanelState, running_sandbox
from bot.virtfusion import AiohttpVirtFusionClient, RetryPolicy

EXAMPLES = Path(__file__).parents[2] / "examples"
DEFAULTS = EngineDefaults(user_id=1, package_id=1)
NO_RETRY = RetryPolicy(max_attempts=1)  # the sandbox is local; a failure should fail at once


@dataclass
class Rig:
    state: PanelState
    client: AiohttpVirtFusionClient

    def planner(self, defaults: EngineDefaults = DEFAULTS) -> Planner:
        return Planner(self.client, defaults)

    def real_creates(self) -> list[str]:
        """`POST /servers` calls that were not dry runs (each one would allocate a server)."""
        return [
            str(entry.query)
            for entry in self.state.calls("POST", r"^/servers$")
            if entry.query.get("dryRun") != "true"
        ]

    def dry_runs(self) -> int:
        return sum(
            1
            for entry in self.state.calls("POST", r"^/servers$")
            if entry.query.get("dryRun") == "true"
        )

    def gets(self) -> Counter[str]:
        return Counter(entry.api_path for entry in self.state.calls("GET", ""))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with (
        running_sandbox() as sb,
        AiohttpVirtFusionClient(
            sb.api_url,
            SecretStr("sandbox-token"),
            timeout_s=5.0,
            rate_limit_per_s=1000.0,
            retry=NO_RETRY,
        ) as client,
    ):
        yield Rig(sb.state, client)


def instance(**fields: object) -> dict[str, object]:
    return {"name": "web", "template": "ubuntu-22.04", "hypervisor_group": "Prague", **fields}


def request(*instances: dict[str, object]) -> ProvisionRequest:
    return parse_request({"project_name": "demo", "instances": list(instances) or [instance()]})


async def refused(
    rig: Rig, req: ProvisionRequest, defaults: EngineDefaults = DEFAULTS
) -> PlanError:
    """Plan `req`, expect PlanError, and check that nothing was created on the panel."""
    with pytest.raises(PlanError) as caught:
        await rig.planner(defaults).plan(req)
    assert rig.real_creates() == []
    assert rig.state.servers == {}
    return caught.value


# -- a good request ------------------------------------------------------------------------------


async def test_create_json_plans_with_one_dry_run(rig: Rig) -> None:
    req = parse_request((EXAMPLES / "create.json").read_bytes())

    plan = await rig.planner().plan(req)

    assert isinstance(plan, Plan)
    assert [s.name for s in plan.servers] == ["test-server"]
    assert plan.servers[0].create_body.to_json()["hypervisorId"] == 1
    assert rig.dry_runs() == 1
    assert rig.real_creates() == []
    assert rig.state.servers == {}
    (dry_run,) = rig.state.calls("POST", r"^/servers$")
    assert dry_run.body == plan.servers[0].create_body.to_json()
    assert dry_run.status == 200


@pytest.mark.parametrize("name", ["create.json", "create-with-network.json"])
async def test_every_lookup_happens_once(rig: Rig, name: str) -> None:
    await rig.planner().plan(parse_request((EXAMPLES / name).read_bytes()))

    assert rig.gets() == Counter(
        {
            "/packages/1": 1,
            "/compute/hypervisors/groups": 1,
            "/media/templates/fromServerPackageSpec/1": 1,
            "/ssh_keys/user/1": 1,
            "/compute/hypervisors/2": 1,
            "/compute/hypervisors/groups/1/resources": 1,
        }
    )


async def test_lookups_are_shared_between_instance_entries(rig: Rig) -> None:
    req = request(
        instance(name="web", number_of_instances=3, hypervisor_id=2, ssh_key_name="default"),
        instance(name="db", hypervisor_id=2, ssh_key_name="ops-team", template="debian-12"),
        instance(name="cache", hypervisor_group="Amsterdam", ssh_key_name="default"),
    )

    await rig.planner().plan(req)

    gets = rig.gets()
    assert set(gets.values()) == {1}, gets
    assert set(gets) == {
        "/packages/1",
        "/compute/hypervisors/groups",
        "/media/templates/fromServerPackageSpec/1",
        "/ssh_keys/user/1",
        "/compute/hypervisors/2",
        "/compute/hypervisors/groups/1/resources",
        "/compute/hypervisors/groups/2/resources",
    }


async def test_no_ssh_key_names_means_no_key_lookup(rig: Rig) -> None:
    await rig.planner().plan(request(instance()))

    assert "/ssh_keys/user/1" not in rig.gets()


async def test_one_dry_run_per_distinct_create_body(rig: Rig) -> None:
    req = request(
        instance(name="web", number_of_instances=3),
        instance(name="api", template="debian-12"),  # same create body: the OS is a build field
        instance(name="db", resources={"memory": 2048}),
        instance(name="edge", hypervisor_group="Amsterdam", number_of_instances=2),
    )

    plan = await rig.planner().plan(req)

    assert len(plan.servers) == 7
    assert rig.dry_runs() == 3
    sent = [entry.body for entry in rig.state.calls("POST", r"^/servers$")]
    assert sent == [
        {"packageId": 1, "userId": 1, "hypervisorId": 1},
        {"packageId": 1, "userId": 1, "hypervisorId": 1, "memory": 2048},
        {"packageId": 1, "userId": 1, "hypervisorId": 2},
    ]
    assert rig.real_creates() == []


# -- the seed's three network-profile error cases ------------------------------------------------


async def test_profile_that_does_not_exist_is_refused(rig: Rig) -> None:
    error = await refused(rig, request(instance(network={"profile_id": 999})))

    (problem,) = error.problems
    assert problem.path == "instances[0].network.profile_id"
    assert problem.message.startswith(
        "the panel refused network profile 999 in group Prague (id 1): “Invalid network "
        "profile. The specified profile does not exist”."
    )
    assert "nothing was created" in str(error)
    assert rig.dry_runs() == 1


async def test_profile_of_another_group_is_not_in_use(rig: Rig) -> None:
    error = await refused(rig, request(instance(network={"profile_id": 3})))

    assert error.problems == [
        Problem(
            "instances[0].network.profile_id",
            "the panel refused network profile 3 in group Prague (id 1): “Invalid network "
            "profile. The specified profile is not in use”. Use a profile that is attached to a "
            "network in Prague, pick another hypervisor_group, or omit network.profile_id to use "
            "the package's default profile",
        )
    ]


async def test_same_profile_is_fine_in_its_own_group(rig: Rig) -> None:
    plan = await rig.planner().plan(
        request(instance(hypervisor_group="Amsterdam", network={"profile_id": 3}))
    )

    assert plan.servers[0].create_body.to_json()["networkProfile"] == 3


async def test_profile_attached_nowhere_is_not_in_use(rig: Rig) -> None:
    error = await refused(rig, request(instance(network={"profile_id": 4})))

    (problem,) = error.problems
    assert problem.path == "instances[0].network.profile_id"
    assert "network profile 4 in group Prague (id 1)" in problem.message
    assert "The specified profile is not in use" in problem.message


async def test_profile_from_the_setting_is_blamed_on_the_setting(rig: Rig) -> None:
    defaults = EngineDefaults(user_id=1, package_id=1, default_network_profile_id=3)

    error = await refused(rig, request(instance()), defaults)

    (problem,) = error.problems
    assert problem.path == "instances[0]"
    assert problem.message.startswith(
        "the panel refused network profile 3 (from VIRTFUSION_NETWORK_PROFILE_ID) in group "
        "Prague (id 1)"
    )


async def test_entries_sharing_a_refused_body_each_get_the_problem(rig: Rig) -> None:
    req = request(
        instance(name="web", network={"profile_id": 3}),
        instance(name="db", template="debian-12", network={"profile_id": 3}),
    )

    error = await refused(rig, req)

    assert rig.dry_runs() == 1
    assert [p.path for p in error.problems] == [
        "instances[0].network.profile_id",
        "instances[1].network.profile_id",
    ]


async def test_missing_network_configuration_is_refused_before_any_dry_run(rig: Rig) -> None:
    rig.state.packages[1].primary_network_profile = 0  # unset: the plan treats 0 as no profile

    error = await refused(rig, request(instance()))

    (problem,) = error.problems
    assert problem.path == "instances[0].network.profile_id"
    assert "has no primary network profile" in problem.message
    assert rig.dry_runs() == 0


# -- other refusals: nothing is created ----------------------------------------------------------


async def test_missing_template(rig: Rig) -> None:
    error = await refused(rig, request(instance(template="windows-2022")))

    (problem,) = error.problems
    assert problem.path == "instances[0].template"
    assert "no OS template 'windows-2022' for this package" in problem.message
    assert rig.dry_runs() == 0


async def test_missing_ssh_key(rig: Rig) -> None:
    error = await refused(rig, request(instance(ssh_key_name="laptop")))

    assert error.problems == [
        Problem(
            "instances[0].ssh_key_name",
            "no SSH key named 'laptop' for VirtFusion user 1; keys: default, ops-team. Add the "
            "key in VirtFusion or fix the name",
        )
    ]
    assert rig.dry_runs() == 0


async def test_capacity_shortfall_after_shrinking_the_group(rig: Rig) -> None:
    rig.state.hypervisors[1].max_memory_mb = 1024
    rig.state.hypervisors[2].max_memory_mb = 1024

    error = await refused(rig, request(instance(number_of_instances=3)))

    assert error.problems == [
        Problem(
            "instances",
            "not enough memory in hypervisor group Prague: 2,048 MB free, this request needs "
            "3,072 MB for 3 server(s); ask for fewer or smaller servers, or use another "
            "hypervisor_group",
        )
    ]
    assert rig.dry_runs() == 0


async def test_capacity_shortfall_from_many_big_servers(rig: Rig) -> None:
    req = request(instance(number_of_instances=20, resources={"memory": 4096}))

    error = await refused(rig, req)

    (problem,) = error.problems
    assert problem.path == "instances"
    assert problem.message.startswith(
        "not enough memory in hypervisor group Prague: 40,960 MB free, this request needs "
        "81,920 MB for 20 server(s)"
    )


async def test_panel_refusal_that_is_not_about_the_profile(rig: Rig) -> None:
    # Frankfurt's only hypervisor is in maintenance: the planner cannot see that, the dry run can.
    error = await refused(rig, request(instance(hypervisor_group="Frankfurt")))

    assert error.problems == [
        Problem(
            "instances[0]",
            "the panel refused server web in group Frankfurt (id 3): “No hypervisor in group "
            "Frankfurt is accepting new servers”. Nothing was created; change the request and "
            "try again",
        )
    ]
    assert rig.dry_runs() == 1


async def test_unknown_package_setting(rig: Rig) -> None:
    error = await refused(rig, request(instance()), EngineDefaults(user_id=1, package_id=99))

    assert [p.path for p in error.problems] == [""]
    assert "VIRTFUSION_PACKAGE_ID=99 is not a package" in error.problems[0].message
    assert rig.dry_runs() == 0


async def test_unknown_hypervisor_id_is_looked_up_once_and_reported(rig: Rig) -> None:
    req = request(instance(name="a", hypervisor_id=77), instance(name="b", hypervisor_id=77))

    error = await refused(rig, req)

    assert [p.path for p in error.problems] == [
        "instances[0].hypervisor_id",
        "instances[1].hypervisor_id",
    ]
    assert rig.gets()["/compute/hypervisors/77"] == 1
