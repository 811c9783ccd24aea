"""Group failover end to end against the sandbox panel: planning reads each group's resources
and dry-runs there; at create time a 422 (nothing created) moves a server to its next group.

Group capacity is the sandbox's own: `GET /compute/hypervisors/groups/{id}/resources` is
computed from live allocations, and `POST /servers` answers 422 `{"errors": [...]}` when no
eligible hypervisor of the group has room (the spec documents that shape; its texts are UNKNOWN,
so vfbot never reads them, it only shows them).
"""

from __future__ import annotations

import pytest

from bot.provisioning import events
from bot.provisioning.errors import PlanError
from bot.provisioning.events import InstanceFailedOver, parse_event
from bot.provisioning.model import InstanceRecord, InstanceState, RequestState
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.planner import Planner
from bot.provisioning.reading import parse_request
from bot.sandbox import PanelState, ScriptedFault
from bot.virtfusion import CreateServerBody
from tests.provisioning.conftest import DEFAULTS, Harness, creates, owner_servers

pytestmark = pytest.mark.parametrize("store", ["memory"], indirect=True)

S = InstanceState


def three(groups: list[object], *, count: int = 3) -> dict[str, object]:
    return {
        "project_name": "failover",
        "instances": [
            {
                "name": "web",
                "number_of_instances": count,
                "hypervisor_group": groups,
                "template": "debian-12",
            }
        ],
    }


def prague_holds(panel: PanelState, memory_mb: int) -> None:
    """Prague keeps one hypervisor with `memory_mb` MB (the other one stops taking servers)."""
    panel.hypervisors[1].max_memory_mb = memory_mb
    panel.hypervisors[2].enabled = False


async def instances(h: Harness, request_id: int) -> list[InstanceRecord]:
    async with h.uow() as uow:
        return sorted(await uow.instances.list_for_request(request_id), key=lambda i: i.position)


def panel_groups(h: Harness) -> list[int]:
    """The group of each of vfbot's servers on the panel, by server id."""
    return [s.group_id for s in sorted(owner_servers(h.panel), key=lambda s: s.id)]


async def test_planning_puts_two_in_the_first_group_and_one_in_the_second(
    harness: Harness,
) -> None:
    prague_holds(harness.panel, 2048)  # two "Small" servers (1024 MB each)

    plan = await Planner(harness.client, DEFAULTS).plan(
        parse_request(three(["Prague", "Amsterdam"]))
    )

    assert [s.group_name for s in plan.servers] == ["Prague", "Prague", "Amsterdam"]
    assert plan.servers[2].route == "Prague: 0 MB memory left (needs 1,024 MB) → Amsterdam"
    assert creates(harness.panel) == 0


async def test_planning_skips_a_group_whose_dry_run_refuses_the_body(harness: Harness) -> None:
    # Profile 2 "Public (Prague)" is attached to no network in Amsterdam: the panel's dry run
    # there refuses it, so the servers go to Prague, and the plan says why.
    request = three(["Amsterdam", "Prague"], count=2)
    request["instances"][0]["network"] = {"profile_id": 2}  # type: ignore[index]

    plan = await Planner(harness.client, DEFAULTS).plan(parse_request(request))

    assert [s.group_name for s in plan.servers] == ["Prague", "Prague"]
    route = plan.servers[0].route or ""
    assert route.startswith("Amsterdam: the panel refused it: “") and route.endswith("” → Prague")
    assert plan.servers[0].fallback_groups == []
    assert creates(harness.panel) == 0


async def test_a_group_in_maintenance_is_passed_over_at_planning(harness: Harness) -> None:
    # Frankfurt's one hypervisor is in maintenance: its resources show room (the resources rows
    # have no maintenance flag), but the panel refuses to place a server there.
    plan = await Planner(harness.client, DEFAULTS).plan(
        parse_request(three(["Frankfurt", "Prague"], count=1))
    )

    assert [s.group_name for s in plan.servers] == ["Prague"]


async def test_planning_fails_naming_every_group_when_none_has_room(harness: Harness) -> None:
    prague_holds(harness.panel, 2048)
    harness.panel.hypervisors[3].max_memory_mb = 0  # Amsterdam

    with pytest.raises(PlanError) as caught:
        await Planner(harness.client, DEFAULTS).plan(parse_request(three(["Prague", "Amsterdam"])))

    [problem] = caught.value.problems
    assert problem.path == "instances[0].hypervisor_group"
    assert "Prague: 0 MB memory left (needs 1,024 MB)" in problem.message
    assert "Amsterdam: 0 MB memory left (needs 1,024 MB)" in problem.message


async def test_failover_groups_follow_the_default_group(harness: Harness) -> None:
    prague_holds(harness.panel, 2048)
    defaults = EngineDefaults(user_id=1, package_id=1, default_group_id=1, failover_group_ids=(2,))
    request = three(["Prague"])
    del request["instances"][0]["hypervisor_group"]  # type: ignore[attr-defined]

    plan = await Planner(harness.client, defaults).plan(parse_request(request))

    assert [s.group_name for s in plan.servers] == ["Prague", "Prague", "Amsterdam"]


async def fill_prague_behind_vfbots_back(h: Harness, memory_mb: int) -> None:
    """Another panel user (Alice) creates a server in Prague after vfbot planned."""
    await h.client.create_server(
        CreateServerBody(package_id=1, user_id=2, hypervisor_group_id=1, memory_mb=memory_mb)
    )


async def test_a_create_refused_for_room_moves_that_server_to_the_next_group(
    harness: Harness,
) -> None:
    prague_holds(harness.panel, 4096)  # room for all three when vfbot plans
    record = await harness.submit_json(three(["Prague", "Amsterdam"]))
    assert {s["group_name"] for s in (record.plan or {})["servers"]} == {"Prague"}  # type: ignore[index]
    await fill_prague_behind_vfbots_back(harness, 2048)  # now room for two

    done = await harness.run_until_done(record.id)

    assert done.state is RequestState.COMPLETED
    rows = await instances(harness, record.id)
    assert [r.state for r in rows] == [S.BUILT, S.BUILT, S.BUILT]
    assert sorted(r.group_id for r in rows) == [1, 1, 2]
    assert sorted(panel_groups(harness)) == [1, 1, 2]
    assert creates(harness.panel) == 1 + 4  # Alice's, then three of vfbot's and one refusal
    moved = next(r for r in rows if r.group_id == 2)
    assert moved.plan.group_name == "Amsterdam"
    assert moved.plan.passed_over[0].stage == "create"
    stored = [e for e in await harness.events(record.id) if e.kind == "instance.failed_over"]
    # What `vfbot create --wait` prints (and the log's milestone line).
    assert events.describe(stored[0]).startswith(f"VF-{record.id} {moved.name}: group Prague ")
    assert events.describe(stored[0]).endswith("; creating it in group Amsterdam")
    failovers = [parse_event(e) for e in stored]
    assert len(failovers) == 1
    event = failovers[0]
    assert isinstance(event, InstanceFailedOver)
    assert (event.name, event.from_group, event.to_group) == (moved.name, "Prague", "Amsterdam")
    assert "Prague" in event.reason  # the panel's own words
    assert events.INSTANCE_FAILED_OVER in events.MILESTONES


async def test_no_group_left_at_create_fails_naming_every_group(harness: Harness) -> None:
    prague_holds(harness.panel, 4096)
    record = await harness.submit_json(three(["Prague", "Amsterdam"], count=1))
    await fill_prague_behind_vfbots_back(harness, 4096)
    harness.panel.hypervisors[3].max_memory_mb = 0  # Amsterdam is full too

    done = await harness.run_until_done(record.id)

    assert done.state is RequestState.FAILED
    [row] = await instances(harness, record.id)
    error = row.error or ""
    assert error.startswith("no hypervisor group in its list can take server web (Prague: ")
    assert "; Amsterdam: the panel refused it: “" in error
    assert error.endswith("add another group to hypervisor_group, or try again when there is room")
    assert panel_groups(harness) == []

    # Retrying starts from the top of the list again: Prague refuses, Amsterdam has room now.
    harness.panel.hypervisors[3].max_memory_mb = 40960
    [again] = await harness.requests.retry_failed(record.id, actor="U_ADMIN")
    assert (again.plan.group_name, again.plan.passed_over) == ("Prague", [])
    assert [g.name for g in again.plan.fallback_groups] == ["Amsterdam"]
    assert (await harness.run_until_done(record.id)).state is RequestState.COMPLETED
    assert panel_groups(harness) == [2]


async def test_an_ambiguous_answer_is_reconciled_before_any_failover(harness: Harness) -> None:
    prague_holds(harness.panel, 4096)
    record = await harness.submit_json(three(["Prague", "Amsterdam"], count=1))
    await fill_prague_behind_vfbots_back(harness, 4096)
    # The first create's answer is lost (500, nothing committed): it might have created the
    # server, so vfbot looks for it on the panel before it tries again or moves on.
    harness.panel.faults.script.append(ScriptedFault("POST", r"^/servers$", "500", times=1))

    await harness.engine.run_once()
    [row] = await instances(harness, record.id)
    assert (row.state, row.plan.group_name) == (S.CREATE_UNKNOWN, "Prague")

    done = await harness.run_until_done(record.id)

    assert done.state is RequestState.COMPLETED
    kinds = [e.kind for e in await harness.events(record.id)]
    assert kinds.index("instance.waiting") < kinds.index("instance.failed_over")
    assert panel_groups(harness) == [2]
