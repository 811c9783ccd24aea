"""Group failover in planning, called directly with hand-built PanelFacts: no I/O.

A server goes to the first group of its list with room (memory, disk, IPv4, counting the
request's servers already placed) that the dry run did not refuse; the plan says why.
"""

from __future__ import annotations

import pytest

from bot.provisioning.errors import PlanError
from bot.provisioning.placement import GroupChoice, Need, PassedOver, Room, route_text
from bot.provisioning.plan import EngineDefaults, make_plan, render_plan_text
from bot.provisioning.reading import parse_request
from bot.provisioning.request import RequestError, request_to_json
from tests.provisioning.test_plan import (
    DEFAULTS,
    facts,
    group_capacity,
    instance,
    request,
    resources_row,
)

FULL = {"memory": 20480, "disk": 500, "ipv4": 50}


def capacity(prague: dict[str, int], amsterdam: dict[str, int] | None = None) -> dict:
    return {
        1: group_capacity(1, resources_row(1, **prague)),
        2: group_capacity(2, resources_row(3, **(amsterdam or FULL))),
    }


def three(groups: object = ("Prague", "Amsterdam")) -> dict[str, object]:
    return instance(number_of_instances=3, hypervisor_group=list(groups))  # type: ignore[arg-type]


def test_three_servers_two_fit_in_the_first_group_one_goes_to_the_second() -> None:
    panel = facts(capacity=capacity({"memory": 2048, "disk": 500, "ipv4": 50}))

    result = make_plan(request(three()), panel, DEFAULTS)

    assert [(s.name, s.group_name) for s in result.servers] == [
        ("web-1", "Prague"),
        ("web-2", "Prague"),
        ("web-3", "Amsterdam"),
    ]
    assert [s.create_body.to_json()["hypervisorId"] for s in result.servers] == [1, 1, 2]
    first, _, third = result.servers
    assert first.route is None
    assert first.fallback_groups == [GroupChoice(id=2, name="Amsterdam")]
    assert third.fallback_groups == []
    assert third.route == "Prague: 0 MB memory left (needs 1,024 MB) → Amsterdam"
    assert [(t.group_name, t.servers, t.memory_mb) for t in result.groups] == [
        ("Prague", 2, 2048),
        ("Amsterdam", 1, 1024),
    ]
    assert "placed: Prague: 0 MB memory left (needs 1,024 MB) → Amsterdam" in render_plan_text(
        result
    )


def test_ipv4_and_disk_count_toward_room() -> None:
    ipv4 = make_plan(
        request(three()), facts(capacity=capacity({**FULL, "ipv4": 1})), DEFAULTS
    ).servers
    assert [s.group_name for s in ipv4] == ["Prague", "Amsterdam", "Amsterdam"]
    assert ipv4[1].route == "Prague: 0 IPv4 left → Amsterdam"

    disk = make_plan(
        request(three()), facts(capacity=capacity({**FULL, "disk": 60})), DEFAULTS
    ).servers
    assert [s.group_name for s in disk] == ["Prague", "Prague", "Amsterdam"]
    assert disk[2].route == "Prague: 10 GB disk left (needs 25 GB) → Amsterdam"


def test_servers_without_a_choice_take_their_room_first() -> None:
    # "web" comes first but may go elsewhere; "db" may only go to Prague, which has room for one.
    req = request(
        instance(name="web", hypervisor_group=["Prague", "Amsterdam"]),
        instance(name="db", hypervisor_group="Prague"),
    )
    panel = facts(capacity=capacity({**FULL, "memory": 1024}))

    result = make_plan(req, panel, DEFAULTS)

    assert [(s.name, s.group_name) for s in result.servers] == [
        ("web", "Amsterdam"),
        ("db", "Prague"),
    ]


def test_no_group_with_room_names_every_group_and_what_it_lacked() -> None:
    panel = facts(
        capacity=capacity({**FULL, "memory": 2048}, {**FULL, "ipv4": 0}),
    )

    with pytest.raises(PlanError) as caught:
        make_plan(request(three()), panel, DEFAULTS)

    [problem] = caught.value.problems
    assert problem.path == "instances[0].hypervisor_group"
    assert problem.message == (
        "no hypervisor group in its list can take server web-3 (Prague: 0 MB memory left "
        "(needs 1,024 MB); Amsterdam: 0 IPv4 left); ask for a smaller server, add another "
        "group to hypervisor_group, or try again when there is room"
    )


def test_a_group_the_dry_run_refused_is_skipped_with_the_panels_words() -> None:
    panel = facts(capacity=capacity(FULL))
    panel.refused[(0, 1)] = "Invalid network profile. The specified profile is not in use"

    result = make_plan(request(three()), panel, DEFAULTS)

    assert {s.group_name for s in result.servers} == {"Amsterdam"}
    assert result.servers[0].route == (
        "Prague: the panel refused it: “Invalid network profile. The specified profile is not "
        "in use” → Amsterdam"
    )


def test_a_single_group_keeps_the_request_wide_capacity_message() -> None:
    panel = facts(capacity=capacity({**FULL, "memory": 2048}))

    with pytest.raises(PlanError) as caught:
        make_plan(request(instance(number_of_instances=3)), panel, DEFAULTS)

    assert caught.value.problems[0].message.startswith(
        "not enough memory in hypervisor group Prague: 2,048 MB free, this request needs "
        "3,072 MB for 3 server(s)"
    )


def test_the_default_group_is_followed_by_the_failover_groups() -> None:
    defaults = EngineDefaults(
        user_id=1, package_id=1, default_group_id=1, failover_group_ids=(9, 2)
    )
    req = request(instance(number_of_instances=3, hypervisor_group=None))
    panel = facts(capacity=capacity({**FULL, "memory": 2048}))

    result = make_plan(req, panel, defaults)

    assert [s.group_name for s in result.servers] == ["Prague", "Prague", "Amsterdam"]
    assert (
        "web: VIRTFUSION_FAILOVER_GROUP_IDS names group 9, which is not on the panel; it is skipped"
    ) in result.warnings
    # An explicit group is that group only: the failover list is for the default group.
    with pytest.raises(PlanError):
        make_plan(request(instance(number_of_instances=3)), panel, defaults)


def test_failed_over_moves_the_plan_to_the_next_group() -> None:
    panel = facts(capacity=capacity(FULL))
    server = make_plan(request(three(["Prague", 2])), panel, DEFAULTS).servers[0]

    moved = server.failed_over("the panel refused it: “full”")

    assert (moved.group_id, moved.group_name) == (2, "Amsterdam")
    assert moved.create_body.to_json()["hypervisorId"] == 2
    assert moved.fallback_groups == []
    assert moved.passed_over == [
        PassedOver(
            group_id=1, group_name="Prague", reason="the panel refused it: “full”", stage="create"
        )
    ]
    assert moved.route == "Prague: the panel refused it: “full” → Amsterdam"
    # The stored form reads back the same (it is what the database keeps).
    assert type(moved).model_validate(moved.model_dump(mode="json")) == moved


def test_room_takes_what_each_placed_server_needs() -> None:
    room = Room.of(group_capacity(1, resources_row(1, memory=5000, disk=200, ipv4=2)))
    need = Need(memory_mb=1024, disk_gb=40, ipv4=1)

    assert room.lacks(need) is None
    room.take(need)
    room.take(need)
    assert room.lacks(need) == "0 IPv4 left"
    assert room.lacks(Need(memory_mb=4000, disk_gb=1, ipv4=0)) == (
        "2,952 MB memory left (needs 4,000 MB)"
    )
    assert room.lacks(Need(memory_mb=1, disk_gb=121, ipv4=0)) == "120 GB disk left (needs 121 GB)"
    assert route_text([], "Prague") is None


def test_hypervisor_group_accepts_an_ordered_list() -> None:
    req = parse_request(
        {"project_name": "p", "instances": [instance(hypervisor_group=["Frankfurt", 2])]}
    )
    assert req.instances[0].hypervisor_groups == ["Frankfurt", 2]
    assert request_to_json(req)["instances"] == [instance(hypervisor_group=["Frankfurt", 2])]
    assert parse_request({"project_name": "p", "instances": [instance()]}).instances[
        0
    ].hypervisor_groups == ["Prague"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], 'must not be an empty list; give one group or several, e.g. ["Prague"]'),
        (["Prague", "prague"], 'item 1: the text "prague" is listed twice; list each group once'),
        (["Prague", 0], "item 1: a hypervisor group id must be 1 or more; got 0"),
        (["Prague", " x"], 'item 1: must not start or end with spaces; use "x"'),
    ],
)
def test_bad_group_lists_are_rejected_naming_the_item(value: object, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request({"project_name": "p", "instances": [instance(hypervisor_group=value)]})

    [problem] = caught.value.problems
    assert problem.path == "instances[0].hypervisor_group"
    assert problem.message == message


def test_a_list_naming_one_group_twice_by_name_and_id_is_a_problem() -> None:
    with pytest.raises(PlanError) as caught:
        make_plan(request(instance(hypervisor_group=["Prague", 1])), facts(), DEFAULTS)

    assert caught.value.problems[0].message == "1 is group Prague, which the list already names"
