"""Hostile request bodies: every one ends as a rejection naming a JSON path, bounded in size.

Found by a security review: lone surrogates, counts whose sum passes Python's 4300-digit limit,
duplicate keys, and bodies that produce hundreds of thousands of problems.
"""

from __future__ import annotations

import json

import pytest

from bot.provisioning.reading import MAX_PROBLEMS, parse_request
from bot.provisioning.request import Problem, RequestError, RequestLimits

LIMITS = RequestLimits()
SURROGATE_VOLUME = (
    '{"project_name": "p", "instances": [{"name": "web", "template": "t", '
    '"volumes": [{"name": "d", "size_gb": 5, "mount_point": "/mnt/\\udfff"}]}]}'
)


def problems_of(raw: bytes | str | dict[str, object]) -> list[Problem]:
    with pytest.raises(RequestError) as caught:
        parse_request(raw, LIMITS)
    problems = caught.value.problems
    str(caught.value).encode("utf-8")  # every rejection can be shown, stored and logged
    return problems


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_lone_surrogate_is_rejected_at_its_path(as_bytes: bool) -> None:
    raw = SURROGATE_VOLUME.encode() if as_bytes else SURROGATE_VOLUME
    (problem,) = problems_of(raw)
    assert problem.path == "instances[0].volumes[0].mount_point"
    assert "not valid Unicode" in problem.message


def test_a_lone_surrogate_from_a_form_is_rejected_too() -> None:
    data: dict[str, object] = {"project_name": "shop\ud800", "instances": [{"name": "web"}]}
    (problem,) = problems_of(data)
    assert problem.path == "project_name"


def test_a_lone_surrogate_in_a_field_name_gives_a_printable_path() -> None:
    (problem,) = problems_of('{"project_name": "p", "instances": [], "\\udfff": 1}')
    assert problem.path == '["\\udfff"]'  # escaped, so the path itself is valid text
    assert "field name" in problem.message


def test_counts_whose_sum_passes_the_int_digit_limit_are_rejected() -> None:
    huge = "9" * 4300  # the longest integer json.loads reads; two of them sum to 4301 digits
    raw = (
        '{"project_name": "p", "instances": ['
        f'{{"name": "a", "template": "t", "number_of_instances": {huge}}}, '
        f'{{"name": "b", "template": "t", "number_of_instances": {huge}}}]}}'
    )
    (problem,) = problems_of(raw)
    assert problem.path == "instances"
    assert "creates more than 10^40 servers" in problem.message


def test_a_huge_negative_number_is_described_not_printed() -> None:
    raw = json.dumps(
        {"project_name": "p", "instances": [{"name": "a", "template": "t", "hypervisor_id": 0}]}
    ).replace('"hypervisor_id": 0', '"hypervisor_id": -' + "9" * 4000)
    (problem,) = problems_of(raw)
    assert problem.path == "instances[0].hypervisor_id"
    assert "less than -10^40" in problem.message and "9999" not in problem.message


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (
            '{"project_name": "a", "project_name": "b", '
            '"instances": [{"name": "w", "template": "t"}]}',
            "project_name",
        ),
        (
            '{"project_name": "a", "instances": [{"name": "w", "template": "t", '
            '"resources": {"memory": 1024, "memory": 65536}}]}',
            "instances[0].resources.memory",
        ),
        (
            '{"project_name": "a", "instances": [{"name": "w", "template": "t"}, '
            '{"name": "x", "name": "y", "template": "t"}]}',
            "instances[1].name",
        ),
    ],
)
def test_duplicate_keys_are_rejected_naming_the_path(raw: str, path: str) -> None:
    problems = problems_of(raw)
    assert [p.path for p in problems] == [path]
    assert "more than once" in problems[0].message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    raw = (
        '{"project_name": "p", "instances": '
        '[{"name": "w", "template": "t", "resources": {"cpu": %s}}]}'
    )
    (problem,) = problems_of(raw % constant)
    assert problem.path == "" and f"{constant.lstrip('-')} is not a JSON number" in problem.message


def test_three_hundred_thousand_instances_give_a_short_answer() -> None:
    problems = problems_of(json.dumps({"project_name": "p", "instances": [1] * 300_000}))
    assert problems[0] == Problem(
        "instances",
        "this request creates 300000 servers; the limit is 20 per request; lower "
        "number_of_instances or split it into several requests",
    )
    # Only the entries the limit allows are checked one by one.
    assert [p.path for p in problems[1:]] == [f"instances[{i}]" for i in range(20)]
    assert len(str(RequestError(problems))) < 5_000


def test_too_many_problems_are_counted_not_listed() -> None:
    fields = {f"unknown{i}": 1 for i in range(5_000)}
    raw = json.dumps({"project_name": "p", "instances": [{"name": "w", "template": "t", **fields}]})
    problems = problems_of(raw)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == Problem(
        "", f"and {5_000 - MAX_PROBLEMS} more problems; fix these and send the request again"
    )


def test_extra_volumes_are_reported_once_not_checked_one_by_one() -> None:
    volumes = [{"name": 1}] * 50_000
    raw = json.dumps(
        {"project_name": "p", "instances": [{"name": "w", "template": "t", "volumes": volumes}]}
    )
    problems = problems_of(raw)
    (count,) = [p for p in problems if p.path == "instances[0].volumes"]
    assert "at most 2 volumes" in count.message and "got 50000" in count.message
    # Each volume is checked only up to the limit.
    assert {p.path for p in problems} <= {
        "instances[0].volumes",
        "instances[0].volumes[0].name",
        "instances[0].volumes[0].size_gb",
        "instances[0].volumes[1].name",
        "instances[0].volumes[1].size_gb",
    }


def test_long_field_names_and_messages_are_cut() -> None:
    key = "k" * 500_000 + " x"
    raw = json.dumps({"project_name": "p", "instances": [{"name": "w", "template": "t", key: 1}]})
    (problem,) = problems_of(raw)
    assert problem.path.startswith('instances[0]["kkk') and len(problem.path) < 80
    assert len(problem.message) <= 400


def test_a_huge_firewall_list_is_refused_by_its_limit_not_item_by_item() -> None:
    network = {"firewall_rulesets": ["x"] * 100_000}
    raw = json.dumps(
        {"project_name": "p", "instances": [{"name": "w", "template": "t", "network": network}]}
    )
    problems = problems_of(raw)
    assert (
        Problem(
            "instances[0].network.firewall_rulesets",
            "at most 32 firewall rulesets per instance; got 100000",
        )
        in problems
    )
    # Only the first 32 are checked one by one.
    assert len(problems) == 33


def test_an_object_with_thousands_of_unknown_fields_is_checked_up_to_the_problem_limit() -> None:
    fields = {f"unknown{i}": 1 for i in range(50_000)}
    raw = json.dumps({"project_name": "p", "instances": [{"name": "w", "template": "t"}], **fields})
    problems = problems_of(raw)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].message.startswith(f"and {50_000 - MAX_PROBLEMS} more problems")
