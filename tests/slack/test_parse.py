import dataclasses
import json

import pytest

from bot.provisioning.request import Problem, ProvisionRequest, RequestLimits, request_to_json
from bot.slack import commands, ids
from bot.slack import parse as parse_module
from bot.slack.parse import (
    MAX_BLOCK_ERROR,
    MAX_FILE_ERROR,
    FileRef,
    StateValues,
    build_metadata,
    check_file_meta,
    form_to_request,
    inline_request,
    parse_create_submission,
    parse_file_body,
    parse_metadata,
    problems_to_blocks,
    selected_file,
    split_command,
    suggest,
)

LIMITS = RequestLimits()


# -- view_submission element states, as Slack sends them ---------------------------------------


def text_input(value: str | None) -> dict[str, object]:
    return {"type": "plain_text_input", "value": value}


def number_input(value: str | None) -> dict[str, object]:
    return {"type": "number_input", "value": value}


def option(value: str, label: str | None = None) -> dict[str, object]:
    return {
        "text": {"type": "plain_text", "text": label or value, "emoji": True},
        "value": value,
    }


def static_select(value: str | None, label: str | None = None) -> dict[str, object]:
    picked = None if value is None else option(value, label)
    return {"type": "static_select", "selected_option": picked}


def radio(value: str | None) -> dict[str, object]:
    return {"type": "radio_buttons", "selected_option": None if value is None else option(value)}


def checkboxes(*values: str) -> dict[str, object]:
    return {"type": "checkboxes", "selected_options": [option(v) for v in values]}


def file_input(*files: dict[str, object]) -> dict[str, object]:
    return {"type": "file_input", "files": list(files)}


def slack_file(**fields: object) -> dict[str, object]:
    return {
        "id": "F07ABCDEF12",
        "created": 1_723_000_000,
        "timestamp": 1_723_000_000,
        "name": "request.json",
        "title": "request.json",
        "mimetype": "application/json",
        "filetype": "json",
        "pretty_type": "JSON",
        "user": "U012AB3CD",
        "size": 412,
        "mode": "hosted",
        "is_external": False,
        "url_private": "https://files.slack.com/files-pri/T0-F07ABCDEF12/request.json",
        "url_private_download": (
            "https://files.slack.com/files-pri/T0-F07ABCDEF12/download/request.json"
        ),
        **fields,
    }


def state(**elements: dict[str, object]) -> StateValues:
    """`view.state.values`: block_id -> {action_id: element state}, action_id == block_id."""
    return {block_id: {block_id: element} for block_id, element in elements.items()}


def full_form() -> StateValues:
    return state(
        project_name=text_input("web shop"),
        name=text_input("web"),
        count=number_input("3"),
        hypervisor_group=static_select("2", "Prague"),
        template=static_select("12", "Ubuntu 22.04"),
        memory=number_input("2048"),
        disk=number_input("40"),
        cpu=number_input("2"),
        ssh_key=static_select("deploy"),
        network_profile=static_select("4"),
        public_ip=radio("yes"),
        bandwidth=number_input("1000"),
        volume_size=number_input("20"),
        volume_mount=text_input("/mnt/data"),
        lifetime=static_select("3d"),
        request_file=file_input(),
    )


def minimal_form(**extra: dict[str, object]) -> StateValues:
    return state(
        project_name=text_input("demo"),
        name=text_input("web"),
        template=static_select("ubuntu-22.04"),
        **extra,
    )


def test_all_names_are_exported() -> None:
    public = {
        name
        for name, value in vars(parse_module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == parse_module.__name__
    }
    assert public <= set(parse_module.__all__)


def test_block_ids_match_the_ids_module() -> None:
    assert set(full_form()) == set(ids.CREATE_INPUT_BLOCKS)


# -- form_to_request ---------------------------------------------------------------------------


def test_full_form_maps_every_field() -> None:
    assert form_to_request(full_form()) == {
        "project_name": "web shop",
        "expires_in": "3d",
        "instances": [
            {
                "name": "web",
                "number_of_instances": 3,
                "hypervisor_group": 2,
                "template": "12",
                "resources": {"memory": 2048, "disk": 40, "cpu": 2},
                "ssh_key_name": "deploy",
                "network": {"profile_id": 4, "public_ip": True, "bandwidth": 1000},
                "volumes": [{"name": "data", "size_gb": 20, "mount_point": "/mnt/data"}],
            }
        ],
    }


def test_full_form_parses_into_a_request() -> None:
    request = parse_create_submission(full_form(), LIMITS)
    assert isinstance(request, ProvisionRequest)
    instance = request.instances[0]
    assert instance.template_id == 12
    assert instance.hypervisor_group == 2
    assert instance.network is not None and instance.network.public_ip is True
    assert request_to_json(request) == form_to_request(full_form())


def test_empty_fields_are_left_unset() -> None:
    values = state(
        project_name=text_input("demo"),
        name=text_input("web"),
        count=number_input(None),
        hypervisor_group=static_select(None),
        template=static_select("ubuntu-22.04"),
        memory=number_input(None),
        disk=number_input(""),
        cpu=number_input(None),
        ssh_key=static_select(None),
        network_profile=static_select(None),
        public_ip=radio(None),
        bandwidth=number_input(None),
        volume_size=number_input(None),
        volume_mount=text_input(None),
        request_file=file_input(),
    )
    assert form_to_request(values) == {
        "project_name": "demo",
        "instances": [{"name": "web", "template": "ubuntu-22.04"}],
    }


def test_default_option_leaves_the_field_unset() -> None:
    values = minimal_form(
        hypervisor_group=static_select(ids.OPTION_DEFAULT),
        network_profile=static_select(ids.OPTION_DEFAULT),
    )
    assert form_to_request(values)["instances"] == [{"name": "web", "template": "ubuntu-22.04"}]


def test_modal_in_file_only_state_gives_an_empty_instance() -> None:
    assert form_to_request(state(request_file=file_input())) == {"instances": [{}]}


def test_text_is_trimmed() -> None:
    values = state(project_name=text_input("  web shop "), name=text_input(" web\n"))
    assert form_to_request(values) == {"project_name": "web shop", "instances": [{"name": "web"}]}


def test_group_name_option_stays_text() -> None:
    values = minimal_form(hypervisor_group=static_select("Prague"))
    instances = form_to_request(values)["instances"]
    assert isinstance(instances, list)
    assert instances[0]["hypervisor_group"] == "Prague"


def test_action_id_other_than_block_id_is_read() -> None:
    values = {"name": {"name_input": text_input("web")}}
    assert form_to_request(values) == {"instances": [{"name": "web"}]}


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        (radio("yes"), True),
        (radio("no"), False),
        (radio("true"), True),
        (radio("false"), False),
        (checkboxes("yes"), True),
        (checkboxes(), False),
        ({"type": "checkboxes", "selected_options": None}, False),
    ],
    ids=["radio-yes", "radio-no", "radio-true", "radio-false", "ticked", "unticked", "null"],
)
def test_public_ip_from_radio_buttons_or_checkboxes(
    element: dict[str, object], expected: bool
) -> None:
    request = parse_create_submission(minimal_form(public_ip=element), LIMITS)
    assert isinstance(request, ProvisionRequest)
    assert request.instances[0].network is not None
    assert request.instances[0].network.public_ip is expected


def test_unknown_radio_value_is_reported_on_its_block() -> None:
    errors = parse_create_submission(minimal_form(public_ip=radio("maybe")), LIMITS)
    assert isinstance(errors, dict)
    assert set(errors) == {ids.B_PUBLIC_IP}
    assert "true or false" in errors[ids.B_PUBLIC_IP]


def test_volume_mount_without_size_asks_for_the_size() -> None:
    values = minimal_form(volume_mount=text_input("/srv"))
    assert form_to_request(values)["instances"] == [
        {
            "name": "web",
            "template": "ubuntu-22.04",
            "volumes": [{"name": "data", "mount_point": "/srv"}],
        }
    ]
    errors = parse_create_submission(values, LIMITS)
    assert errors == {ids.B_VOLUME_SIZE: "Required: a whole number of GB, e.g. 20."}


@pytest.mark.parametrize(
    ("block_id", "typed", "shown"),
    [
        (ids.B_MEMORY, "2.5", 'got the text "2.5"'),
        (ids.B_DISK, "1e3", 'got the text "1e3"'),
        (ids.B_CPU, "two", 'got the text "two"'),
        (ids.B_COUNT, "1,000", 'got the text "1,000"'),
        (ids.B_BANDWIDTH, "fast", 'got the text "fast"'),
        (ids.B_VOLUME_SIZE, "20GB", 'got the text "20GB"'),
    ],
)
def test_number_that_is_not_whole_is_reported_on_its_block(
    block_id: str, typed: str, shown: str
) -> None:
    errors = parse_create_submission(minimal_form(**{block_id: number_input(typed)}), LIMITS)
    assert isinstance(errors, dict)
    assert list(errors) == [block_id]
    assert errors[block_id].startswith("Must be a whole number")
    assert shown in errors[block_id]


def test_huge_number_stays_text_without_a_quotes_hint() -> None:
    errors = parse_create_submission(minimal_form(memory=number_input("9" * 5000)), LIMITS)
    assert isinstance(errors, dict)
    assert "without quotes" not in errors[ids.B_MEMORY]
    assert len(errors[ids.B_MEMORY]) <= MAX_BLOCK_ERROR


# -- errors mapped to blocks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block_id", "element", "words"),
    [
        (ids.B_PROJECT, text_input("web/shop"), "may contain only letters"),
        (ids.B_NAME, text_input("Web"), 'must be lowercase; use "web"'),
        (ids.B_COUNT, number_input("0"), "must be 1 or more"),
        (ids.B_COUNT, number_input("25"), "this request creates 25 servers"),
        (ids.B_GROUP, static_select("0"), "hypervisor group id must be 1 or more"),
        (ids.B_TEMPLATE, static_select("0"), "template id must be 1 or more"),
        (ids.B_MEMORY, number_input("128"), "between 256 and 262144 MB"),
        (ids.B_DISK, number_input("1"), "between 5 and 4096 GB"),
        (ids.B_CPU, number_input("65"), "between 1 and 64 cores"),
        (ids.B_PROFILE, static_select("-2"), "positive whole-number network profile id"),
        (ids.B_BANDWIDTH, number_input("0"), "between 1 and 100000 Mbps"),
        (ids.B_VOLUME_SIZE, number_input("0"), "between 1 and 16384 GB"),
        (ids.B_VOLUME_MOUNT, text_input("mnt"), "absolute path"),
    ],
)
def test_each_problem_lands_on_its_block(
    block_id: str, element: dict[str, object], words: str
) -> None:
    values = dict(minimal_form(volume_size=number_input("10")))
    values[block_id] = {block_id: element}
    errors = parse_create_submission(values, LIMITS)
    assert isinstance(errors, dict)
    assert list(errors) == [block_id]
    message = errors[block_id]
    assert words.lower() in message.lower()
    assert "instances[0]" not in message  # the block already says which field
    assert message[0].isupper() and message.endswith(".")


def test_required_fields_missing() -> None:
    errors = parse_create_submission(state(request_file=file_input()), LIMITS)
    assert errors == {
        ids.B_PROJECT: 'Required: a project name, e.g. "web-shop".',
        ids.B_NAME: 'Required: a server name, e.g. "web".',
        ids.B_TEMPLATE: 'Required: a template name or numeric template id, e.g. "ubuntu-22.04".',
    }


def test_custom_limits_apply() -> None:
    limits = RequestLimits(max_instances=2, memory_mb=(512, 4096))
    values = minimal_form(count=number_input("3"), memory=number_input("8192"))
    errors = parse_create_submission(values, limits)
    assert isinstance(errors, dict)
    assert set(errors) == {ids.B_COUNT, ids.B_MEMORY}
    assert "the limit is 2" in errors[ids.B_COUNT]


@pytest.mark.parametrize(
    ("path", "block_id"),
    [
        ("project_name", ids.B_PROJECT),
        ("instances", ids.B_COUNT),
        ("instances[0].name", ids.B_NAME),
        ("instances[0].number_of_instances", ids.B_COUNT),
        ("instances[0].hypervisor_group", ids.B_GROUP),
        ("instances[0].hypervisor_id", ids.B_GROUP),
        ("instances[0].template", ids.B_TEMPLATE),
        ("instances[0].resources.memory", ids.B_MEMORY),
        ("instances[0].resources.disk", ids.B_DISK),
        ("instances[0].resources.cpu", ids.B_CPU),
        ("instances[0].ssh_key_name", ids.B_SSH_KEY),
        ("instances[0].network.profile_id", ids.B_PROFILE),
        ("instances[0].network.public_ip", ids.B_PUBLIC_IP),
        ("instances[0].network.bandwidth", ids.B_BANDWIDTH),
        ("instances[0].volumes[0].size_gb", ids.B_VOLUME_SIZE),
        ("instances[0].volumes[1].mount_point", ids.B_VOLUME_MOUNT),
        ("instances[0].volumes", ids.B_VOLUME_SIZE),
        ("instances[0].resources.ram", ids.B_MEMORY),
        ("", ids.B_NAME),
        ("instances[0]", ids.B_NAME),
        ("instances[0].provider", ids.B_NAME),
        ("instances[0].network.firewall_rulesets[0]", ids.B_NAME),
        ("owner", ids.B_NAME),
    ],
)
def test_problem_paths_map_to_blocks(path: str, block_id: str) -> None:
    assert list(problems_to_blocks([Problem(path, "x")])) == [block_id]


def test_plan_error_from_the_engine_goes_to_the_profile_block() -> None:
    problem = Problem(
        "instances[0].network.profile_id",
        "the panel refused network profile 3 in group Prague: “No IPv4 available”. Use a profile "
        "that is attached to a network in Prague, pick another hypervisor_group, or omit "
        "network.profile_id to use the package's default profile",
    )
    errors = problems_to_blocks([problem])
    assert list(errors) == [ids.B_PROFILE]
    assert errors[ids.B_PROFILE].startswith("The panel refused network profile 3 in group Prague")


def test_paths_the_block_does_not_imply_are_kept() -> None:
    errors = problems_to_blocks(
        [
            Problem("instances[1].name", 'must be lowercase; use "db"'),
            Problem("instances[0].resources.ram", 'unknown field; did you mean "memory"?'),
            Problem("", "the request is nested too deeply"),
        ]
    )
    assert errors == {
        ids.B_NAME: 'instances[1].name: Must be lowercase; use "db". '
        "The request is nested too deeply.",
        ids.B_MEMORY: 'instances[0].resources.ram: Unknown field; did you mean "memory"?',
    }


def test_several_problems_on_one_block_are_joined_and_clipped() -> None:
    problems = [
        Problem("instances", "not enough memory in Prague: 2 GB free"),
        Problem("instances[0].number_of_instances", "must be 1 or more; got 0"),
        Problem("instances", "not enough memory in Prague: 2 GB free"),  # duplicate
    ]
    assert problems_to_blocks(problems) == {
        ids.B_COUNT: "Not enough memory in Prague: 2 GB free. Must be 1 or more; got 0."
    }
    long = [Problem("instances[0].template", "x" * 250), Problem("instances[0].template", "y" * 90)]
    text = problems_to_blocks(long)[ids.B_TEMPLATE]
    assert len(text) == MAX_BLOCK_ERROR
    assert text.endswith("…")


def test_an_empty_message_still_marks_the_block() -> None:
    assert problems_to_blocks([Problem("instances[0].template", " ")]) == {
        ids.B_TEMPLATE: "This value is not valid."
    }


def test_problems_for_absent_blocks_fall_back_to_a_present_one() -> None:
    problems = [
        Problem("instances[0].network.profile_id", "the panel refused network profile 3"),
        Problem("project_name", "must not be empty"),
    ]
    assert problems_to_blocks(problems, present={ids.B_FILE}) == {
        ids.B_FILE: "instances[0].network.profile_id: The panel refused network profile 3. "
        "project_name: Must not be empty."
    }
    assert problems_to_blocks(problems, present={ids.B_NAME, ids.B_PROFILE}) == {
        ids.B_PROFILE: "The panel refused network profile 3.",
        ids.B_NAME: "project_name: Must not be empty.",
    }
    assert problems_to_blocks(problems, present={"x"}) == {
        "x": "instances[0].network.profile_id: The panel refused network profile 3. "
        "project_name: Must not be empty."
    }


# -- the attached file -------------------------------------------------------------------------


def test_selected_file_reads_the_first_file() -> None:
    values = state(request_file=file_input(slack_file(), slack_file(id="F2")))
    assert selected_file(values) == FileRef(
        id="F07ABCDEF12",
        name="request.json",
        size=412,
        mimetype="application/json",
        filetype="json",
        url_private_download="https://files.slack.com/files-pri/T0-F07ABCDEF12/download/request.json",
    )


def test_selected_file_falls_back_to_url_private() -> None:
    values = state(request_file=file_input(slack_file(url_private_download=None, size=None)))
    ref = selected_file(values)
    assert ref is not None
    assert ref.url_private_download.endswith("/request.json")
    assert ref.size == 0


@pytest.mark.parametrize(
    "values",
    [
        state(name=text_input("web")),
        state(request_file=file_input()),
        state(request_file={"type": "file_input", "files": None}),
        state(request_file=file_input(slack_file(id=None))),
        state(request_file=file_input(slack_file(url_private=None, url_private_download=None))),
    ],
    ids=["no-block", "no-files", "null-files", "no-id", "no-url"],
)
def test_no_usable_file(values: StateValues) -> None:
    assert selected_file(values) is None


JSON_FILE = FileRef(
    id="F1",
    name="request.json",
    size=412,
    mimetype="application/json",
    filetype="json",
    url_private_download="https://files.slack.com/x",
)


def ref(
    *,
    name: str = JSON_FILE.name,
    size: int = JSON_FILE.size,
    mimetype: str = JSON_FILE.mimetype,
    filetype: str = JSON_FILE.filetype,
) -> FileRef:
    return dataclasses.replace(
        JSON_FILE, name=name, size=size, mimetype=mimetype, filetype=filetype
    )


@pytest.mark.parametrize(
    "file",
    [
        ref(),
        ref(name="REQUEST.JSON", filetype="binary", mimetype=""),
        ref(name="request", filetype="javascript", mimetype="text/javascript"),
        ref(name="request.txt", filetype="text", mimetype="text/plain"),
        ref(name="paste", filetype="", mimetype="application/json"),
    ],
    ids=["json", "by-name", "javascript", "text", "by-mimetype"],
)
def test_json_files_pass_the_meta_check(file: FileRef) -> None:
    assert check_file_meta(file, 1_048_576) is None


def test_other_file_types_are_refused() -> None:
    message = check_file_meta(ref(name="shot.png", filetype="png", mimetype="image/png"), 1000)
    assert (
        message == '"shot.png" is not a JSON file (Slack says it is png); '
        "attach the request as a .json file."
    )


def test_oversized_file_names_the_size_and_the_limit() -> None:
    message = check_file_meta(ref(size=3 * 1024 * 1024 + 512 * 1024), 1_048_576)
    assert message is not None
    assert "3.5 MB" in message and "the limit is 1 MB" in message
    assert check_file_meta(ref(size=1_048_576), 1_048_576) is None


def request_json(**instance: object) -> bytes:
    body = {
        "project_name": "demo",
        "instances": [{"name": "web", "template": "ubuntu-22.04", **instance}],
    }
    return json.dumps(body).encode()


def test_file_body_parses() -> None:
    request = parse_file_body(request_json(), "application/json; charset=utf-8", LIMITS)
    assert isinstance(request, ProvisionRequest)
    assert request.instances[0].name == "web"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<!DOCTYPE html><html><head><title>Slack</title>", "text/html; charset=utf-8"),
        (b"\n  <!doctype html>\n<html lang=en>", "application/octet-stream"),
        (b"<html><body>Sign in to Slack</body></html>", ""),
        (request_json(), "text/html"),
    ],
    ids=["doctype", "lower-doctype-after-space", "html-tag", "content-type"],
)
def test_slack_login_page_is_explained(body: bytes, content_type: str) -> None:
    message = parse_file_body(body, content_type, LIMITS)
    assert message == (
        "Slack returned a login page instead of the file: the app needs the files:read scope; "
        "reinstall it from manifest.yml"
    )


def test_oversized_body_is_refused() -> None:
    limits = RequestLimits(max_body_bytes=100)
    message = parse_file_body(request_json() + b" " * 200, "application/json", limits)
    assert isinstance(message, str)
    assert message.startswith("The file is ") and "the limit is 100 bytes" in message


def test_empty_body_is_refused() -> None:
    assert parse_file_body(b" \n", "application/json", LIMITS) == (
        "The file is empty; attach the request JSON."
    )


def test_bad_json_is_explained() -> None:
    message = parse_file_body(b'{"project_name": "demo",}', "application/json", LIMITS)
    assert message == (
        "- the request is not valid JSON: Expecting property name enclosed in double quotes "
        "at line 1, column 25"
    )


def test_schema_problems_are_listed_one_per_line() -> None:
    message = parse_file_body(
        request_json(resources={"memory": 100}, ssh_key_name=""), "application/json", LIMITS
    )
    assert message == (
        "- instances[0].resources.memory: must be between 256 and 262144 MB; got 100\n"
        '- instances[0].ssh_key_name: must not be empty; e.g. "default"'
    )


def test_long_problem_lists_are_cut_with_a_count() -> None:
    instances = [{"name": f"Web{i}", "template": ""} for i in range(20)]
    body = json.dumps({"project_name": "demo", "instances": instances}).encode()
    message = parse_file_body(body, "application/json", LIMITS)
    assert isinstance(message, str)
    assert len(message) <= MAX_FILE_ERROR
    lines = message.splitlines()
    assert lines[0] == '- instances[0].name: must be lowercase; use "web0"'
    assert lines[-1].startswith("- … and ") and lines[-1].endswith(" more problems")
    shown, more = len(lines) - 1, int(lines[-1].split()[3])
    assert shown + more == 40


def test_a_single_huge_problem_is_clipped() -> None:
    problems = [Problem("", "x" * 5000), Problem("", "second")]
    text = parse_module._problem_list(problems, MAX_FILE_ERROR)
    assert len(text) <= MAX_FILE_ERROR
    assert text.endswith("…\n- … and 1 more problem")
    assert len(parse_module._problem_list(problems[:1], MAX_FILE_ERROR)) == MAX_FILE_ERROR


# -- command text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("help", "")),
        ("   ", ("help", "")),
        ("create", ("create", "")),
        ("  STATUS  42 ", ("status", "42")),
        ("power 42 off", ("power", "42 off")),
        ('create {"project_name": "x"}', ("create", '{"project_name": "x"}')),
        ('create{"project_name": "x"}', ("create", '{"project_name": "x"}')),
        ("create\n```{}```", ("create", "```{}```")),
        ("backup-plan 7 daily", ("backup-plan", "7 daily")),
        ("?", ("?", "")),
    ],
)
def test_split_command(text: str, expected: tuple[str, str]) -> None:
    assert split_command(text) == expected


def test_subcommands() -> None:
    assert commands.names()[:2] == ("create", "help")
    assert len(set(commands.names())) == 26


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("crate", "create"),
        ("CREAT", "create"),
        ("stauts", "status"),
        ("hyp", "hypervisors"),
        ("unsuspnd", "unsuspend"),
        ("backup", "backups"),
        ("backup-pln", "backup-plan"),
        ("rebuld", "rebuild"),
        ("firewal", "firewall"),
        ("delet", "delete"),
        ("xyzzy", None),
        ("", None),
        ("s", None),
    ],
)
def test_suggest(word: str, expected: str | None) -> None:
    assert suggest(word, commands.names()) == expected


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("", None),
        ("   ", None),
        ("``````", None),
        ('{"a": 1}', '{"a": 1}'),
        ('`{"a": 1}`', '{"a": 1}'),
        ('```{"a": 1}```', '{"a": 1}'),
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('```JSON {"a": 1}```', '{"a": 1}'),
        ("{\u201ca\u201d: \u201cit\u2019s\u201d}", '{"a": "it\'s"}'),
        ('{"a": "x &lt;y&gt; &amp;amp;"}', '{"a": "x <y> &amp;"}'),
        ('{"a":\u00a01}', '{"a": 1}'),
    ],
)
def test_inline_request(rest: str, expected: str | None) -> None:
    assert inline_request(rest) == expected


def test_inline_request_with_smart_quotes_parses() -> None:
    _, rest = split_command(
        "create ```{“project_name”: “demo”, “instances”: [{“name”: “web”, "
        "“template”: “ubuntu-22.04”}]}```"
    )
    text = inline_request(rest)
    assert text is not None
    request = parse_file_body(text.encode(), "application/json", LIMITS)
    assert isinstance(request, ProvisionRequest)
    assert request.project_name == "demo"


# -- private_metadata --------------------------------------------------------------------------


def test_metadata_round_trip() -> None:
    text = build_metadata(channel="C012AB3CD", thread_ts="1723000000.000100", note="ünï")
    assert text == '{"channel":"C012AB3CD","note":"ünï","thread_ts":"1723000000.000100"}'
    assert parse_metadata(text) == {
        "channel": "C012AB3CD",
        "thread_ts": "1723000000.000100",
        "note": "ünï",
    }
    assert parse_metadata("") == {}


def test_metadata_too_long() -> None:
    build_metadata(x="a" * 2990)
    with pytest.raises(ValueError, match="3000"):
        build_metadata(x="a" * 3000)


@pytest.mark.parametrize("text", ["not json", "[1]", '{"a": 1}', '{"a": null}'])
def test_metadata_that_is_not_ours(text: str) -> None:
    with pytest.raises(ValueError, match="private_metadata"):
        parse_metadata(text)


def test_an_ssh_key_named_default_is_kept() -> None:
    # "default" is a common key name (the seed's examples use it); it must not read as "none".
    from bot.slack import ids as slack_ids

    values = {
        slack_ids.B_NAME: {slack_ids.B_NAME: {"type": "plain_text_input", "value": "web"}},
        slack_ids.B_SSH_KEY: {
            slack_ids.B_SSH_KEY: {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": "default"},
                    "value": "default",
                },
            }
        },
    }
    assert form_to_request(values)["instances"][0]["ssh_key_name"] == "default"  # type: ignore[index]
