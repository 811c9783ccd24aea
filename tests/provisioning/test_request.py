import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.provisioning import request as request_module
from bot.provisioning.reading import parse_request
from bot.provisioning.request import (
    InstanceRequest,
    Problem,
    ProvisionRequest,
    RequestError,
    RequestLimits,
    expand_servers,
    request_to_json,
)

Raw = bytes | str | Mapping[str, object]
DEFAULT_LIMITS = RequestLimits()
EXAMPLES = Path(__file__).parents[2] / "examples"


def instance(**fields: object) -> dict[str, object]:
    return {"name": "web", "template": "ubuntu-22.04", **fields}


def body(*instances: dict[str, object], **fields: object) -> dict[str, object]:
    return {"project_name": "demo", "instances": list(instances) or [instance()], **fields}


def problems_of(raw: Raw, limits: RequestLimits = DEFAULT_LIMITS) -> list[Problem]:
    with pytest.raises(RequestError) as caught:
        parse_request(raw, limits)
    return caught.value.problems


def only_problem(raw: Raw, limits: RequestLimits = DEFAULT_LIMITS) -> Problem:
    problems = problems_of(raw, limits)
    assert len(problems) == 1, problems
    return problems[0]


def test_all_names_are_exported() -> None:
    public = {
        name
        for name, value in vars(request_module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == request_module.__name__
    }
    assert public == set(request_module.__all__)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_example_files_parse(path: Path) -> None:
    request = parse_request(path.read_bytes())
    assert request_to_json(request) == json.loads(path.read_text())


def test_example_values_are_kept() -> None:
    request = parse_request((EXAMPLES / "create-with-network.json").read_text())
    first = request.instances[0]
    assert first.provider == "virtfusion"
    assert first.hypervisor_group == "Prague"
    assert first.resources is not None and first.resources.memory == 1024
    assert first.network is not None and first.network.firewall_rulesets == [2, 3]
    assert first.number_of_instances == 1 and first.volumes == []
    assert "number_of_instances" not in first.model_fields_set
    assert {"network", "resources", "template"} <= first.model_fields_set


def test_minimal_request_uses_defaults() -> None:
    request = parse_request(body())
    assert request.instances[0].provision is False
    assert request.instances[0].resources is None
    assert request.instances[0].template_id is None


@pytest.mark.parametrize(
    ("template", "stored", "template_id"),
    [("ubuntu-22.04", "ubuntu-22.04", None), (12, "12", 12), ("12", "12", 12)],
)
def test_template_accepts_names_and_numeric_ids(
    template: object, stored: str, template_id: int | None
) -> None:
    parsed = parse_request(body(instance(template=template))).instances[0]
    assert (parsed.template, parsed.template_id) == (stored, template_id)


@pytest.mark.parametrize("group", ["Prague", 3, None])
def test_hypervisor_group_accepts_name_or_id(group: object) -> None:
    assert parse_request(body(instance(hypervisor_group=group))).instances[0].hypervisor_group == (
        group
    )


@pytest.mark.parametrize("name", ["a", "web-1", "0", "a" * 63, "db--x"])
def test_valid_server_names(name: str) -> None:
    assert parse_request(body(instance(name=name))).instances[0].name == name


def test_firewall_none_convention_is_accepted() -> None:
    request = parse_request(body(instance(network={"firewall_rulesets": [-1]})))
    assert request.instances[0].network is not None
    assert request.instances[0].network.firewall_rulesets == [-1]


# (instance fields, expected path, key phrase of the message)
INSTANCE_RULES = [
    ({"provider": "aws"}, "instances[0].provider", "vfbot only provisions on VirtFusion"),
    ({"provider": 1}, "instances[0].provider", 'set provider to "virtfusion"'),
    ({"provision": True}, "instances[0].provision", "cannot run post-install provisioning"),
    ({"provision": "false"}, "instances[0].provision", "JSON boolean"),
    ({"name": ""}, "instances[0].name", "must not be empty"),
    ({"name": "Web-1"}, "instances[0].name", 'must be lowercase; use "web-1"'),
    (
        {"name": "web_1"},
        "instances[0].name",
        'hyphens, and must not start or end with a hyphen; e.g. "web-1"',
    ),
    ({"name": "-web"}, "instances[0].name", "must not start or end with a hyphen"),
    ({"name": "web-"}, "instances[0].name", "must not start or end with a hyphen"),
    ({"name": "a" * 64}, "instances[0].name", "at most 63 characters; got 64"),
    ({"name": 5}, "instances[0].name", "must be a server name"),
    ({"number_of_instances": 0}, "instances[0].number_of_instances", "must be 1 or more"),
    ({"number_of_instances": 2.0}, "instances[0].number_of_instances", "whole number of servers"),
    ({"hypervisor_id": 0}, "instances[0].hypervisor_id", "positive whole-number hypervisor id"),
    ({"hypervisor_id": "2"}, "instances[0].hypervisor_id", "write the number without quotes"),
    ({"hypervisor_id": True}, "instances[0].hypervisor_id", "got true"),
    ({"hypervisor_group": ""}, "instances[0].hypervisor_group", "must not be empty"),
    ({"hypervisor_group": 0}, "instances[0].hypervisor_group", "group id must be 1 or more"),
    ({"hypervisor_group": 1.5}, "instances[0].hypervisor_group", "hypervisor group name"),
    ({"template": ""}, "instances[0].template", "must not be empty"),
    ({"template": " ubuntu"}, "instances[0].template", 'use "ubuntu"'),
    ({"template": 0}, "instances[0].template", "template id must be 1 or more"),
    ({"template": "0"}, "instances[0].template", "template id must be 1 or more"),
    ({"template": None}, "instances[0].template", "template name"),
    ({"ssh_key_name": ""}, "instances[0].ssh_key_name", "must not be empty"),
    ({"ssh_key_name": 3}, "instances[0].ssh_key_name", "name of an SSH key"),
    ({"resources": {"memory": 100}}, "instances[0].resources.memory", "between 256 and 262144 MB"),
    (
        {"resources": {"memory": "1024"}},
        "instances[0].resources.memory",
        "whole number of MB, e.g. 2048",
    ),
    ({"resources": {"memory": 1.5}}, "instances[0].resources.memory", "got 1.5"),
    ({"resources": {"memory": 1024.0}}, "instances[0].resources.memory", "whole number of MB"),
    ({"resources": {"disk": 4097}}, "instances[0].resources.disk", "between 5 and 4096 GB"),
    ({"resources": {"cpu": 0}}, "instances[0].resources.cpu", "between 1 and 64 cores"),
    ({"resources": {"cpu": False}}, "instances[0].resources.cpu", "whole number of CPU cores"),
    ({"resources": [1]}, "instances[0].resources", "object with memory, disk and cpu"),
    ({"network": {"profile_id": 0}}, "instances[0].network.profile_id", "network profile id"),
    ({"network": {"bandwidth": 0}}, "instances[0].network.bandwidth", "between 1 and 100000 Mbps"),
    ({"network": {"public_ip": "yes"}}, "instances[0].network.public_ip", "true or false"),
    (
        {"network": {"firewall_rulesets": [2, 0]}},
        "instances[0].network.firewall_rulesets[1]",
        "positive firewall ruleset id, or use [-1]",
    ),
    (
        {"network": {"firewall_rulesets": [-1, 2]}},
        "instances[0].network.firewall_rulesets",
        "must be alone",
    ),
    ({"network": {"firewall_rulesets": []}}, "instances[0].network.firewall_rulesets", "[-1]"),
    ({"network": {"firewall_rulesets": 2}}, "instances[0].network.firewall_rulesets", "a list"),
    ({"volumes": {}}, "instances[0].volumes", "list of volume objects"),
    ({"volumes": [{"size_gb": 1}]}, "instances[0].volumes[0].name", "required field is missing"),
    ({"volumes": [{"name": " ", "size_gb": 1}]}, "instances[0].volumes[0].name", "not be empty"),
    (
        {"volumes": [{"name": "d", "size_gb": 0}]},
        "instances[0].volumes[0].size_gb",
        "between 1 and 16384 GB",
    ),
    (
        {"volumes": [{"name": "d", "size_gb": 1, "mount_point": "mnt/d"}]},
        "instances[0].volumes[0].mount_point",
        "absolute path",
    ),
    (
        {"volumes": [{"name": "d", "size_gb": 1, "mount_point": "/"}]},
        "instances[0].volumes[0].mount_point",
        "absolute path below",
    ),
    (
        {"volumes": [{"name": f"v{i}", "size_gb": 1} for i in range(3)]},
        "instances[0].volumes",
        "at most 2 volumes per instance (VirtFusion's create call supports only two",
    ),
    (
        {"volumes": [{"name": "d", "size_gb": 1}, {"name": "d", "size_gb": 2}]},
        "instances[0].volumes[1].name",
        'volume name "d" is also used by volumes[0]',
    ),
    (
        {
            "volumes": [
                {"name": "a", "size_gb": 1, "mount_point": "/d"},
                {"name": "b", "size_gb": 1, "mount_point": "/d"},
            ]
        },
        "instances[0].volumes[1].mount_point",
        "must be unique within an instance",
    ),
    (
        {"name": "a" * 62, "number_of_instances": 3},
        "instances[0].name",
        "shorten the name to 61 characters or fewer",
    ),
]


@pytest.mark.parametrize(("fields", "path", "phrase"), INSTANCE_RULES)
def test_instance_rules(fields: dict[str, object], path: str, phrase: str) -> None:
    problem = only_problem(body(instance(**fields)))
    assert problem.path == path
    assert phrase in problem.message


# (top-level fields, expected path, key phrase)
REQUEST_RULES = [
    ({"project_name": ""}, "project_name", "must not be empty"),
    ({"project_name": "a" * 65}, "project_name", "at most 64 characters"),
    ({"project_name": "web/shop"}, "project_name", 'letters, digits, spaces, "_", "." and "-"'),
    ({"project_name": "web "}, "project_name", 'use "web"'),
    ({"project_name": 7}, "project_name", "must be a project name"),
    ({"instances": []}, "instances", "at least one instance"),
    ({"instances": {}}, "instances", "list of instance objects"),
    ({"instances": [5]}, "instances[0]", "must be an instance object"),
    ({"instances": [{"name": "web"}]}, "instances[0].template", "required field is missing"),
]


@pytest.mark.parametrize(("fields", "path", "phrase"), REQUEST_RULES)
def test_request_rules(fields: dict[str, object], path: str, phrase: str) -> None:
    problem = only_problem(body(**fields))
    assert problem.path == path
    assert phrase in problem.message


def test_missing_top_level_fields() -> None:
    assert [p.path for p in problems_of({})] == ["project_name", "instances"]


# (where the unknown key goes, key, expected path, key phrase)
UNKNOWN_FIELDS = [
    ("request", "project", "project", 'did you mean "project_name"?'),
    ("instance", "resource", "instances[0].resource", 'did you mean "resources"?'),
    ("instance", "hypervisorId", "instances[0].hypervisorId", 'did you mean "hypervisor_id"?'),
    ("instance", "memory", "instances[0].memory", '"memory" goes inside "resources"'),
    ("instance", "bandwidth", "instances[0].bandwidth", '"bandwidth" goes inside "network"'),
    ("instance", "zzz", "instances[0].zzz", "allowed fields here: name, provider,"),
    ("instance", "user data", 'instances[0]["user data"]', "unknown field"),
    ("resources", "memroy", "instances[0].resources.memroy", 'did you mean "memory"?'),
    ("network", "profile", "instances[0].network.profile", 'did you mean "profile_id"?'),
    ("volume", "mountpoint", "instances[0].volumes[0].mountpoint", 'did you mean "mount_point"?'),
]


@pytest.mark.parametrize(("where", "key", "path", "phrase"), UNKNOWN_FIELDS)
def test_unknown_fields_get_a_suggestion(where: str, key: str, path: str, phrase: str) -> None:
    extra = {key: 1}
    data = {
        "request": body(**extra),
        "instance": body(instance(**extra)),
        "resources": body(instance(resources=extra)),
        "network": body(instance(network=extra)),
        "volume": body(instance(volumes=[{"name": "d", "size_gb": 1, **extra}])),
    }[where]
    problem = only_problem(data)
    assert (problem.path, phrase in problem.message) == (path, True)


def test_every_problem_is_reported_at_once() -> None:
    data = body(
        instance(name="Web", resources={"memory": 1, "cpu": "2"}, provision=True),
        instance(name="db", template=""),
        project_name="",
    )
    paths = [p.path for p in problems_of(data)]
    assert paths == [
        "project_name",
        "instances[0].name",
        "instances[0].provision",
        "instances[0].resources.memory",
        "instances[0].resources.cpu",
        "instances[1].template",
    ]


def test_cross_checks_run_alongside_field_errors() -> None:
    data = body(instance(template=""), instance(template="x"), project_name="")
    paths = [p.path for p in problems_of(data)]
    assert paths == ["project_name", "instances[0].template", "instances[1].name"]


def test_str_of_request_error_is_a_readable_list() -> None:
    error = RequestError([Problem("", "not JSON"), Problem("instances[0].name", "too long")])
    assert str(error) == "- not JSON\n- instances[0].name: too long"


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b'{"project_name": "x",\n  "instances": [}', "not valid JSON: Expecting value at line 2"),
        ('{"a": 1,   // MB\n "b": 2}', "JSON does not allow comments"),
        (b"\xff\xfe{}", "not UTF-8 text (bad byte at offset 0)"),
        ("[]", "must be a JSON object"),
        ("null", "got null"),
        ("[" * 100_000, "nested too deeply"),
        ('{"project_name": ' + "9" * 5000 + "}", "number too long"),
    ],
)
def test_unreadable_bodies(raw: bytes | str, phrase: str) -> None:
    problem = only_problem(raw)
    assert problem.path == ""
    assert phrase in problem.message


def test_invalid_json_gives_line_and_column() -> None:
    problem = only_problem('{\n  "project_name": "x",\n  "instances" []\n}')
    assert problem.message.endswith("at line 3, column 15")


def test_oversize_body_names_size_and_limit() -> None:
    raw = json.dumps(body()).encode()
    problem = only_problem(raw, RequestLimits(max_body_bytes=len(raw) - 1))
    assert (
        problem.message == f"the request is {len(raw):,} bytes; the limit is {len(raw) - 1:,} bytes"
    )


def test_utf8_bom_and_str_input_are_accepted() -> None:
    text = json.dumps(body(instance(ssh_key_name="clé")))
    assert parse_request(b"\xef\xbb\xbf" + text.encode()) == parse_request(text)


def test_limits_are_configurable() -> None:
    limits = RequestLimits(memory_mb=(512, 1024), max_instances=2)
    problems = problems_of(
        body(instance(number_of_instances=3, resources={"memory": 2048})), limits
    )
    assert [(p.path, p.message) for p in problems] == [
        ("instances", problems[0].message),
        ("instances[0].resources.memory", "must be between 512 and 1024 MB; got 2048"),
    ]
    assert "creates 3 servers; the limit is 2" in problems[0].message


def test_total_servers_over_the_limit() -> None:
    data = body(
        instance(name="a", number_of_instances=15), instance(name="b", number_of_instances=6)
    )
    problem = only_problem(data)
    assert problem.path == "instances"
    assert "this request creates 21 servers; the limit is 20 per request" in problem.message


def test_total_counts_invalid_entries_as_one() -> None:
    data = body(
        instance(name="a", number_of_instances=20), instance(name="b", number_of_instances=0)
    )
    assert {p.path for p in problems_of(data)} == {"instances", "instances[1].number_of_instances"}


@pytest.mark.parametrize(
    ("instances", "path", "phrase"),
    [
        (
            [instance(), instance()],
            "instances[1].name",
            'server name "web" is also produced by instances[0]',
        ),
        (
            [instance(number_of_instances=2), instance(name="web-2")],
            "instances[1].name",
            '"web-2" is also produced by instances[0]',
        ),
        (
            [instance(name="web-1"), instance(number_of_instances=3)],
            "instances[1].name",
            '"web-1" is also produced by instances[0]',
        ),
    ],
)
def test_server_names_must_be_unique(
    instances: list[dict[str, object]], path: str, phrase: str
) -> None:
    problem = only_problem(body(*instances))
    assert problem.path == path
    assert phrase in problem.message


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([instance()], [(0, 1, "web")]),
        ([instance(number_of_instances=1)], [(0, 1, "web")]),
        (
            [instance(number_of_instances=3), instance(name="db")],
            [(0, 1, "web-1"), (0, 2, "web-2"), (0, 3, "web-3"), (1, 1, "db")],
        ),
    ],
)
def test_expand_servers_naming(
    entries: list[dict[str, object]], expected: list[tuple[int, int, str]]
) -> None:
    request = parse_request(body(*entries))
    planned = expand_servers(request)
    assert [(s.instance_index, s.ordinal, s.name) for s in planned] == expected
    assert all(s.instance is request.instances[s.instance_index] for s in planned)


def test_name_with_suffix_may_be_exactly_63_characters() -> None:
    request = parse_request(body(instance(name="a" * 61, number_of_instances=9)))
    assert len(expand_servers(request)[-1].name) == 63


def test_round_trip_keeps_values_and_explicit_fields() -> None:
    original = parse_request(
        body(
            instance(
                number_of_instances=2,
                provision=False,
                template=7,
                hypervisor_group=4,
                network={"public_ip": False, "firewall_rulesets": [-1]},
                volumes=[{"name": "d", "size_gb": 10, "mount_point": "/srv"}],
            )
        )
    )
    stored = request_to_json(original)
    assert json.loads(json.dumps(stored)) == stored
    again = parse_request(stored)
    assert again == original
    assert again.instances[0].model_fields_set == original.instances[0].model_fields_set
    assert "provision" in again.instances[0].model_fields_set
    assert "provider" not in stored["instances"][0]  # type: ignore[index]


def test_models_are_frozen() -> None:
    request = parse_request(body())
    with pytest.raises(ValidationError):
        request.instances[0].name = "other"  # type: ignore[misc]


def test_direct_model_validation_still_checks_cross_rules() -> None:
    with pytest.raises(ValidationError, match="creates 30 servers"):
        ProvisionRequest.model_validate(body(instance(number_of_instances=30)))
    direct = InstanceRequest(name="web", template="t")
    assert ProvisionRequest(project_name="p", instances=[direct]).instances == [direct]
