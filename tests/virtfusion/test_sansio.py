"""Pure tests of `_sansio` and `_models`: request builders, status mapping, envelopes, models."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from bot.virtfusion import (
    ApiError,
    AuthError,
    BuildPhase,
    BuildServerBody,
    ConflictError,
    CreateServerBody,
    DecodeError,
    ForbiddenError,
    GroupCapacity,
    HttpRequest,
    Hypervisor,
    HypervisorGroup,
    HypervisorResources,
    InvalidRequestError,
    LockedError,
    NotFoundError,
    PanelError,
    RateLimitedError,
    RawResponse,
    Server,
    TrafficMonth,
    template_label,
)
from bot.virtfusion import _sansio as sansio
from tests.virtfusion._support import (
    BUILD_BODY,
    CREATE_BODY,
    NOW,
    ROOT_PASSWORD,
    json_response,
    sample,
    sample_bytes,
)

# -- endpoint builders ----------------------------------------------------------------------------

PAGE = (("results", "200"), ("page", "3"))

BUILDERS: list[tuple[str, Callable[[], HttpRequest], str, str, tuple[tuple[str, str], ...]]] = [
    ("connect", sansio.connect, "GET", "/connect", ()),
    ("hypervisors", lambda: sansio.list_hypervisors(3), "GET", "/compute/hypervisors", PAGE),
    ("hypervisor", lambda: sansio.get_hypervisor(14), "GET", "/compute/hypervisors/14", ()),
    ("groups", lambda: sansio.list_groups(3), "GET", "/compute/hypervisors/groups", PAGE),
    (
        "groups_probe",
        lambda: sansio.list_groups(1, results=1),
        "GET",
        "/compute/hypervisors/groups",
        (("results", "1"), ("page", "1")),
    ),
    ("group", lambda: sansio.get_group(2), "GET", "/compute/hypervisors/groups/2", ()),
    (
        "group_resources",
        lambda: sansio.group_resources(2, 3),
        "GET",
        "/compute/hypervisors/groups/2/resources",
        PAGE,
    ),
    ("package", lambda: sansio.get_package(5), "GET", "/packages/5", ()),
    (
        "package_templates",
        lambda: sansio.package_templates(5),
        "GET",
        "/media/templates/fromServerPackageSpec/5",
        (),
    ),
    ("user_ssh_keys", lambda: sansio.user_ssh_keys(1), "GET", "/ssh_keys/user/1", ()),
    ("servers", lambda: sansio.list_servers(3), "GET", "/servers", PAGE),
    ("user_servers", lambda: sansio.user_servers(1), "GET", "/servers/user/1", ()),
    ("server", lambda: sansio.get_server(70), "GET", "/servers/70", ()),
    (
        "server_remote",
        lambda: sansio.get_server(70, remote_state=True),
        "GET",
        "/servers/70",
        (("remoteState", "true"),),
    ),
    # `delay` has no documented default, so 0 is sent, never left out (issue 9, item 15).
    ("delete", lambda: sansio.delete_server(70), "DELETE", "/servers/70", (("delay", "0"),)),
    (
        "delete_delay",
        lambda: sansio.delete_server(70, delay_min=5),
        "DELETE",
        "/servers/70",
        (("delay", "5"),),
    ),
    ("suspend", lambda: sansio.suspend_server(70), "POST", "/servers/70/suspend", ()),
    ("unsuspend", lambda: sansio.unsuspend_server(70), "POST", "/servers/70/unsuspend", ()),
    ("power_boot", lambda: sansio.power(70, "boot"), "POST", "/servers/70/power/boot", ()),
    (
        "power_poweroff",
        lambda: sansio.power(70, "poweroff"),
        "POST",
        "/servers/70/power/poweroff",
        (),
    ),
    ("queue", lambda: sansio.get_queue(431), "GET", "/queue/431", ()),
    (
        "backup_plan",
        lambda: sansio.set_backup_plan(70, 2),
        "PUT",
        "/servers/70/backups/plan/2",
        (),
    ),
    (
        "backup_plan_remove",
        lambda: sansio.set_backup_plan(70, 0),
        "PUT",
        "/servers/70/backups/plan/0",
        (),
    ),
    ("owner", lambda: sansio.change_owner(70, 8), "PUT", "/servers/70/owner/8", ()),
    ("traffic", lambda: sansio.traffic(70), "GET", "/servers/70/traffic", ()),
]


@pytest.mark.parametrize(
    ("build", "method", "path", "query"),
    [pytest.param(*row[1:], id=row[0]) for row in BUILDERS],
)
def test_bodyless_builders(
    build: Callable[[], HttpRequest], method: str, path: str, query: tuple[tuple[str, str], ...]
) -> None:
    request = build()
    assert (request.method, request.path, request.query) == (method, path, query)
    assert request.json is None
    assert request.repeatable is True
    assert request.label == f"{method} {path}"


def _assert_json_types(body: object, types: Mapping[str, type]) -> None:
    assert isinstance(body, dict)
    assert set(body) == set(types)
    for key, expected in types.items():
        assert type(body[key]) is expected, key  # `is`: a bool is not an acceptable int


def test_create_server_sends_group_id_as_hypervisor_id_and_is_not_repeatable() -> None:
    body = CreateServerBody(
        package_id=1,
        user_id=7,
        hypervisor_group_id=3,
        ipv4=1,
        memory_mb=2048,
        cpu_cores=2,
        storage_gb=40,
        traffic_gb=0,
        network_profile=6,
        firewall_rulesets=[-1],
    )
    request = sansio.create_server(body)
    assert (request.method, request.path, request.query) == ("POST", "/servers", ())
    assert request.repeatable is False
    assert request.json == {
        "packageId": 1,
        "userId": 7,
        "hypervisorId": 3,  # the GROUP id (reference §2.3)
        "ipv4": 1,
        "memory": 2048,
        "cpuCores": 2,
        "storage": 40,
        "traffic": 0,
        "networkProfile": 6,
        "firewallRulesets": [-1],
    }
    types = {k: int for k in request.json} | {"firewallRulesets": list}
    _assert_json_types(request.json, types)


def test_create_server_omits_unset_fields() -> None:
    request = sansio.create_server(CREATE_BODY)
    assert request.json == {"packageId": 1, "userId": 1, "hypervisorId": 1, "ipv4": 1}
    assert "networkProfile" not in request.json  # package default applies (reference §4)


def test_dry_run_carries_the_flag_and_may_be_repeated() -> None:
    request = sansio.create_server(CREATE_BODY, dry_run=True)
    assert (request.method, request.path) == ("POST", "/servers")
    assert request.query == (("dryRun", "true"),)
    assert request.json == sansio.create_server(CREATE_BODY).json
    assert request.repeatable is True


def test_body_models_refuse_ids_that_are_not_ints() -> None:
    body = CreateServerBody.model_validate({"packageId": 1, "userId": 2, "hypervisorId": 3})
    _assert_json_types(body.to_json(), {"packageId": int, "userId": int, "hypervisorId": int})
    with pytest.raises(ValueError, match="packageId"):
        CreateServerBody.model_validate({"packageId": "1", "userId": 2, "hypervisorId": 3})
    with pytest.raises(ValueError, match="hypervisorId"):
        CreateServerBody.model_validate({"packageId": 1, "userId": 2, "hypervisorId": True})
    with pytest.raises(ValueError, match="sshKeys"):
        BuildServerBody.model_validate({"operatingSystemId": 1, "sshKeys": ["ssh-ed25519 AAAA"]})


def test_build_server() -> None:
    body = BuildServerBody(
        operating_system_id=11,
        name="server 1",
        hostname="server1.domain.com",
        ssh_key_ids=[1, 2, 3, 4],
        vnc=False,
        ipv6=False,
        swap=512,
        email=True,
    )
    request = sansio.build_server(70, body)
    assert (request.method, request.path, request.query) == ("POST", "/servers/70/build", ())
    assert request.repeatable is False
    # the SPEC example body, field for field
    assert request.json == {
        "operatingSystemId": 11,
        "name": "server 1",
        "hostname": "server1.domain.com",
        "sshKeys": [1, 2, 3, 4],
        "vnc": False,
        "ipv6": False,
        "swap": 512,
        "email": True,
    }
    _assert_json_types(
        request.json,
        {
            "operatingSystemId": int,
            "name": str,
            "hostname": str,
            "sshKeys": list,
            "vnc": bool,
            "ipv6": bool,
            "swap": int,
            "email": bool,
        },
    )
    assert all(type(k) is int for k in request.json["sshKeys"])  # type: ignore[attr-defined]


def test_build_server_minimal_body() -> None:
    request = sansio.build_server(70, BuildServerBody(operating_system_id=11))
    assert request.json == {"operatingSystemId": 11}


@pytest.mark.parametrize(("enabled", "action"), [(True, "enable"), (False, "disable")])
def test_set_vnc(enabled: bool, action: str) -> None:
    request = sansio.set_vnc(70, enabled=enabled)
    assert (request.method, request.path, request.query) == ("POST", "/servers/70/vnc", ())
    assert request.json == {"action": action}
    assert request.repeatable is True


@pytest.mark.parametrize(("sync", "text"), [(False, "false"), (True, "true")])
def test_cpu_throttle(sync: bool, text: str) -> None:
    request = sansio.cpu_throttle(70, 25, sync=sync)
    assert (request.method, request.path) == ("PUT", "/servers/70/modify/cpuThrottle")
    assert request.query == (("sync", text),)
    assert request.json == {"percent": 25}
    _assert_json_types(request.json, {"percent": int})


def test_only_create_and_build_are_not_repeatable() -> None:
    not_repeatable = [sansio.create_server(CREATE_BODY), sansio.build_server(1, BUILD_BODY)]
    assert all(not r.repeatable for r in not_repeatable)
    assert all(row[1]().repeatable for row in BUILDERS)


def test_build_request_encodes_query_values_and_drops_none() -> None:
    request = sansio.build_request(
        "GET", "/x", query=[("a", True), ("b", False), ("c", 5), ("d", None), ("e", "s")]
    )
    assert request.query == (("a", "true"), ("b", "false"), ("c", "5"), ("e", "s"))


BAD_IDS = ["7", True, False, -1, 1.0, None]
ID_BUILDERS: list[tuple[str, Callable[[Any], HttpRequest]]] = [
    ("get_server", sansio.get_server),
    ("delete_server", sansio.delete_server),
    ("suspend_server", sansio.suspend_server),
    ("build_server", lambda i: sansio.build_server(i, BUILD_BODY)),
    ("power", lambda i: sansio.power(i, "boot")),
    ("get_hypervisor", sansio.get_hypervisor),
    ("group_resources", lambda i: sansio.group_resources(i, 1)),
    ("package_templates", sansio.package_templates),
    ("user_ssh_keys", sansio.user_ssh_keys),
    ("get_queue", sansio.get_queue),
    ("change_owner", lambda i: sansio.change_owner(1, i)),
    ("set_backup_plan", lambda i: sansio.set_backup_plan(1, i)),
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.parametrize("build", [b for _, b in ID_BUILDERS], ids=[n for n, _ in ID_BUILDERS])
def test_builders_reject_non_integer_ids(build: Callable[[Any], HttpRequest], bad: object) -> None:
    with pytest.raises(TypeError, match="ids must be non-negative integers"):
        build(bad)


@pytest.mark.parametrize("delay", [-1, 43801])
def test_delete_rejects_bad_delay(delay: int) -> None:
    with pytest.raises(ValueError, match=r"delay must be 0\.\.43800"):
        sansio.delete_server(70, delay_min=delay)


def test_delete_accepts_the_maximum_delay() -> None:
    assert sansio.delete_server(70, delay_min=43800).query == (("delay", "43800"),)


@pytest.mark.parametrize("percent", [-1, 100, 250])
def test_cpu_throttle_rejects_bad_percent(percent: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.99"):
        sansio.cpu_throttle(70, percent)


@pytest.mark.parametrize("action", ["reboot", "BOOT", "", "start"])
def test_power_rejects_unknown_action(action: Any) -> None:
    with pytest.raises(ValueError, match="unknown power action"):
        sansio.power(70, action)


# -- status mapping -------------------------------------------------------------------------------

GET = sansio.get_server(70)
CREATE = sansio.create_server(CREATE_BODY)


def _raw(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> RawResponse:
    return RawResponse(status, headers or {}, body)


@pytest.mark.parametrize(
    ("status", "body", "error_class", "words"),
    [
        (401, b"", AuthError, "the API token is missing, invalid or expired"),
        (403, b'{"msg":"This action is unauthorized."}', ForbiddenError, "unauthorized"),
        (404, b'{"msg":"server not found"}', NotFoundError, "server not found"),
        (409, b'{"message":"server is being migrated"}', ConflictError, "being migrated"),
        (423, b'{"msg":"server is locked"}', LockedError, "server is locked"),
        (418, b'{"msg":"teapot"}', ApiError, "teapot"),
        (500, b'{"message":"Server Error"}', PanelError, "Server Error"),
        (502, b"", PanelError, ""),
        (503, b'{"msg":"maintenance"}', PanelError, "maintenance"),
        (504, b"", PanelError, ""),
    ],
)
def test_parse_response_maps_status_to_error(
    status: int, body: bytes, error_class: type[ApiError], words: str
) -> None:
    with pytest.raises(error_class) as caught:
        sansio.parse_response(GET, _raw(status, body), NOW)
    error = caught.value
    assert type(error) is error_class
    assert (error.method, error.path, error.status) == ("GET", "/servers/70", status)
    assert f"GET /servers/70 failed with HTTP {status}" in str(error)
    assert words in str(error)


def test_401_empty_body_has_no_panel_messages() -> None:
    with pytest.raises(AuthError) as caught:
        sansio.parse_response(GET, _raw(401), NOW)
    assert caught.value.messages == ()
    assert caught.value.detail == ""
    assert caught.value.retryable is False


def test_404_keeps_the_panel_message() -> None:
    with pytest.raises(NotFoundError) as caught:
        sansio.parse_response(
            sansio.delete_server(70), _raw(404, b'{"msg":"server not found"}'), NOW
        )
    assert caught.value.messages == ("server not found",)
    assert str(caught.value) == "DELETE /servers/70 failed with HTTP 404: server not found"


def test_422_errors_as_a_list_of_strings() -> None:
    body = b'{"errors":["Invalid network profile. The specified profile is not in use",""]}'
    with pytest.raises(InvalidRequestError) as caught:
        sansio.parse_response(CREATE, _raw(422, body), NOW)
    error = caught.value
    assert error.messages == ("Invalid network profile. The specified profile is not in use",)
    assert str(error) == (
        "POST /servers failed with HTTP 422: "
        "Invalid network profile. The specified profile is not in use"
    )
    assert error.retryable is False


def test_422_errors_as_a_dict_of_lists() -> None:
    body = (
        b'{"message":"The given data was invalid.",'
        b'"errors":{"packageId":["The selected package id is invalid."],'
        b'"memory":["The memory must be an integer.","The memory must be at least 256."]}}'
    )
    with pytest.raises(InvalidRequestError) as caught:
        sansio.parse_response(CREATE, _raw(422, body), NOW)
    assert caught.value.messages == (
        "packageId: The selected package id is invalid.",
        "memory: The memory must be an integer.",
        "memory: The memory must be at least 256.",
    )
    assert "POST /servers failed with HTTP 422: packageId: The selected" in str(caught.value)


def test_423_is_retryable_with_the_panel_words() -> None:
    request = sansio.suspend_server(70)
    with pytest.raises(LockedError) as caught:
        sansio.parse_response(request, _raw(423, b'{"msg":"Server is locked"}'), NOW)
    assert caught.value.retryable is True
    assert str(caught.value) == "POST /servers/70/suspend failed with HTTP 423: Server is locked"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("2.5", 2.5),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        ("Thu, 09 Jan 2025 13:30:45 -0000", 45.0),  # naive date: read as UTC
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),  # already past
        ("soon", None),
        (None, None),
    ],
)
def test_429_retry_after(header: str | None, expected: float | None) -> None:
    headers = {"retry-after": header} if header is not None else {}
    with pytest.raises(RateLimitedError) as caught:
        sansio.parse_response(GET, _raw(429, b'{"message":"Too Many Attempts."}', headers), NOW)
    error = caught.value
    assert error.retry_after_s == expected
    assert error.retryable is True
    assert str(error) == "GET /servers/70 failed with HTTP 429: Too Many Attempts."


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (502, True), (503, True), (504, True), (501, False), (505, False)],
)
def test_panel_errors_retryable_by_status(status: int, retryable: bool) -> None:
    with pytest.raises(PanelError) as caught:
        sansio.parse_response(GET, _raw(status), NOW)
    assert caught.value.retryable is retryable


def test_html_502_from_a_proxy_is_still_a_panel_error() -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    with pytest.raises(PanelError) as caught:
        sansio.parse_response(GET, _raw(502, html, {"content-type": "text/html"}), NOW)
    assert str(caught.value) == "GET /servers/70 failed with HTTP 502"
    assert caught.value.messages == ()


def test_2xx_non_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="GET /servers/70 returned 200 with a body that is not"):
        sansio.parse_response(GET, _raw(200, b"<html>login</html>"), NOW)


def test_2xx_bodies() -> None:
    assert sansio.parse_response(GET, _raw(204), NOW) is None
    assert sansio.parse_response(GET, _raw(200, b'{"data":{"id":1}}'), NOW) == {"data": {"id": 1}}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"errors": ["a", "b"]}, ("a", "b")),
        ({"errors": {"f": ["x"], "g": "y"}}, ("f: x", "g: y")),
        ({"errors": "plain"}, ("plain",)),
        ({"errors": [], "msg": "fallback"}, ("fallback",)),
        ({"message": "laravel"}, ("laravel",)),
        ({"msg": "", "message": "second"}, ("second",)),
        ([1, 2], ()),
        (None, ()),
    ],
)
def test_panel_messages(payload: object, expected: tuple[str, ...]) -> None:
    assert sansio.panel_messages(payload) == expected


# -- envelopes ------------------------------------------------------------------------------------


def test_parse_data_object() -> None:
    server = sansio.parse_data(GET, sample("create_server_201"), Server)
    assert server.id == 70


@pytest.mark.parametrize("payload", [{"data": []}, {"data": None}, [], None, {"id": 70}])
def test_parse_data_rejects_other_shapes(payload: object) -> None:
    with pytest.raises(DecodeError, match="GET /servers/70 returned an unexpected shape"):
        sansio.parse_data(GET, payload, Server)


def test_parse_data_names_the_field_that_did_not_validate() -> None:
    with pytest.raises(DecodeError, match=r"data\.id: Field required \(vfbot reads this field"):
        sansio.parse_data(GET, {"data": {"name": "x"}}, Server)


def test_parse_list() -> None:
    request = sansio.user_servers(1)
    servers = sansio.parse_list(request, sample("user_servers"), Server)
    assert [s.id for s in servers] == [70, 71]
    with pytest.raises(DecodeError, match="expected a list under 'data'"):
        sansio.parse_list(request, {"data": {"id": 1}}, Server)


def test_parse_page_first_middle_and_last() -> None:
    request = sansio.list_servers(1)
    first = sansio.parse_page(request, sample("servers_page1"), Server)
    assert [s.id for s in first.items] == [61, 62]
    assert (first.current_page, first.last_page, first.total, first.has_next) == (1, 3, 5, True)
    middle = sansio.parse_page(request, sample("servers_page2"), Server)
    assert (middle.current_page, middle.has_next) == (2, True)
    last = sansio.parse_page(request, sample("servers_page3"), Server)
    assert [s.id for s in last.items] == [70]
    assert (last.current_page, last.last_page, last.has_next) == (3, 3, False)


def test_parse_page_single_page_of_groups() -> None:
    page = sansio.parse_page(sansio.list_groups(1), sample("groups_page1"), HypervisorGroup)
    assert [(g.id, g.name, g.label) for g in page.items] == [
        (1, "Frankfurt", ""),
        (2, "Amsterdam", "AMS"),
    ]
    assert page.has_next is False
    assert page.items[0].default is True


def test_parse_page_rejects_a_list() -> None:
    with pytest.raises(DecodeError, match="expected a paginator object"):
        sansio.parse_page(sansio.list_servers(1), [], Server)


def test_parse_templates_flattens_groups() -> None:
    templates = sansio.parse_templates(sansio.package_templates(1), sample("templates"))
    assert [(t.id, t.group, t.label, t.eol) for t in templates] == [
        (11, "Ubuntu", "Ubuntu 22.04", False),
        (12, "Ubuntu", "Ubuntu 24.04 minimal", False),
        (21, "Debian", "Debian 10", True),
    ]


def test_parse_templates_rejects_an_object() -> None:
    with pytest.raises(DecodeError, match="template groups"):
        sansio.parse_templates(sansio.package_templates(1), {"data": {}})


def test_parse_vnc_nested_under_vnc() -> None:
    vnc = sansio.parse_vnc(sansio.set_vnc(70, enabled=True), sample("vnc_post"))
    assert (vnc.ip, vnc.hostname, vnc.port) == ("198.51.100.14", "hv-fra-14.example.net", 5920)
    assert vnc.password is not None and vnc.password.get_secret_value() == "FAKE-vnc-Pw-x9Q"
    assert vnc.wss_url is not None
    assert vnc.wss_url.get_secret_value().endswith("token=FAKE-wss-token-3kd8")


def test_parse_vnc_flat_data() -> None:
    payload = {"data": {"ip": "198.51.100.14", "port": 5920, "enabled": False}}
    vnc = sansio.parse_vnc(sansio.set_vnc(70, enabled=False), payload)
    assert (vnc.port, vnc.password, vnc.wss_url) == (5920, None, None)


def test_vnc_session_hides_its_secrets() -> None:
    vnc = sansio.parse_vnc(sansio.set_vnc(70, enabled=True), sample("vnc_post"))
    for text in (repr(vnc), str(vnc), str(vnc.model_dump()), vnc.model_dump_json()):
        assert "FAKE-vnc-Pw-x9Q" not in text
        assert "FAKE-wss-token-3kd8" not in text


# -- Server model ---------------------------------------------------------------------------------


def test_server_from_the_create_example() -> None:
    server = sansio.parse_data(CREATE, sample("create_server_201"), Server)
    assert server.id == 70
    assert server.name == ""
    assert server.hostname == ""
    assert server.owner_id == 1
    assert server.hypervisor_id == 14  # the real hypervisor chosen inside group 1
    assert server.commission_status == 0
    assert server.state == "allocated"
    assert server.phase is BuildPhase.ALLOCATED
    assert server.built is None
    assert server.created is not None and server.created.utcoffset() == timedelta(0)
    assert server.ipv4 == ("203.0.113.45",)
    assert server.primary_ipv4 == "203.0.113.45"
    assert server.resources is not None
    assert (server.resources.memory_mb, server.resources.cpu_cores) == (2048, 2)
    assert server.group_name == "Frankfurt"


def test_server_from_the_build_example_drops_the_root_password() -> None:
    payload = sample("build_server_200")
    assert ROOT_PASSWORD in sample_bytes("build_server_200").decode()  # the sample does carry it
    server = sansio.parse_data(sansio.build_server(70, BUILD_BODY), payload, Server)
    assert server.phase is BuildPhase.QUEUED
    assert server.commission_status == 1
    assert (server.name, server.hostname) == ("server 1", "server1.domain.com")
    dumped = [
        repr(server),
        str(server),
        str(server.model_dump()),
        server.model_dump_json(),
        str(server.model_dump(by_alias=True)),
        str(vars(server)),
        str(getattr(server, "__pydantic_extra__", None)),
        str(getattr(server, "__pydantic_private__", None)),
    ]
    for text in dumped:
        assert ROOT_PASSWORD not in text
        assert "decryptedPassword" not in text
    assert payload["data"]["settings"]["decryptedPassword"] == ROOT_PASSWORD  # input untouched


def test_server_from_the_user_servers_row() -> None:
    servers = sansio.parse_list(sansio.user_servers(1), sample("user_servers"), Server)
    built, fresh = servers
    assert built.phase is BuildPhase.COMPLETE
    assert built.owner_id == 1
    assert built.ipv4 == ("203.0.113.45", "203.0.113.46")
    assert built.primary_ipv4 == "203.0.113.45"
    assert built.ipv6 == ("2001:db8:45::/64",)
    assert built.resources is not None and built.resources.storage_gb == 40
    assert fresh.phase is BuildPhase.ALLOCATED
    assert fresh.primary_ipv4 is None


def test_server_from_the_simple_list_row() -> None:
    rows = sample("servers_page2")["data"]
    server = Server.model_validate(rows[0])
    assert server.commission_status == 2  # `commissioned` in list rows
    assert server.owner_id == 7  # `owner` is a plain int in list rows
    assert server.phase is BuildPhase.BUILDING
    assert server.primary_ipv4 is None
    assert server.created is not None and server.created.tzinfo is not None


@pytest.mark.parametrize(
    ("fields", "phase"),
    [
        ({"commissionStatus": 0, "state": "allocated"}, BuildPhase.ALLOCATED),
        ({"commissionStatus": 0}, BuildPhase.ALLOCATED),
        ({"commissionStatus": 1, "state": "queued"}, BuildPhase.QUEUED),
        ({"commissionStatus": 1}, BuildPhase.QUEUED),
        ({"commissionStatus": 0, "state": "queued"}, BuildPhase.QUEUED),
        ({"commissionStatus": 2}, BuildPhase.BUILDING),
        ({"commissioned": 2}, BuildPhase.BUILDING),
        ({"commissionStatus": 3, "state": "complete"}, BuildPhase.COMPLETE),
        ({"commissionStatus": 3}, BuildPhase.COMPLETE),
        ({"commissioned": 3}, BuildPhase.COMPLETE),
        ({"commissionStatus": 2, "state": "complete"}, BuildPhase.COMPLETE),
        ({"commissionStatus": 2, "buildFailed": True}, BuildPhase.FAILED),
        ({"commissionStatus": 1, "state": "queued", "buildFailed": True}, BuildPhase.FAILED),
        ({"commissionStatus": 3, "state": "complete", "buildFailed": True}, BuildPhase.FAILED),
        ({"commissionStatus": 2, "state": "failed", "buildFailed": False}, BuildPhase.FAILED),
        ({"commissioned": 2, "state": "Failed"}, BuildPhase.FAILED),
    ],
)
def test_server_phase(fields: dict[str, object], phase: BuildPhase) -> None:
    assert Server.model_validate({"id": 1, **fields}).phase is phase


@pytest.mark.parametrize(
    ("remote", "running"),
    [
        ({"running": True}, True),
        ({"running": False, "state": "shutoff"}, False),
        (False, None),  # the spec's only example, from a request made with remoteState=false
        (True, None),
        (None, None),
        ({}, None),
        ({"running": "false"}, None),  # a string proves nothing
        ({"running": 1}, None),
        ({"state": "running"}, None),
        ("running", None),
    ],
)
def test_power_is_known_only_when_remote_state_proves_it(remote: object, running: object) -> None:
    assert Server.model_validate({"id": 1, "remoteState": remote}).running is running
    assert Server.model_validate({"id": 1}).running is None


def test_error_response_with_json_helper_round_trips() -> None:
    response = json_response(422, {"errors": ["No free IPv4 addresses"]})
    with pytest.raises(InvalidRequestError, match="No free IPv4 addresses"):
        sansio.parse_response(CREATE, response, NOW)


# -- parse only what vfbot reads (issue 9, item 19) -----------------------------------------------


def test_spec_shapes_parse() -> None:
    server = sansio.parse_data(GET, sample("spec_server"), Server)
    assert server.running is None  # `"remoteState": false` says nothing about power
    assert (server.id, server.name, server.owner_id, server.hypervisor_id) == (
        69,
        "Elliptical Way",
        1,
        6,
    )
    assert server.phase is BuildPhase.COMPLETE
    assert server.ipv4 == ("192.168.4.32", "192.168.4.35")  # secondary interfaces are not read
    assert server.ipv6 == ("2001:db8:abcd:12:2::/80", "2001:db8:abcd:12:5::/80")
    assert (server.group_name, server.hypervisor and server.hypervisor.name) == ("Test", "BHV 1")
    hypervisors = sansio.parse_page(
        sansio.list_hypervisors(1), sample("spec_hypervisors"), Hypervisor
    )
    assert [(h.id, h.name, h.group_id) for h in hypervisors.items] == [
        (1, "PHV 1 (RED)", 1),
        (6, "BHV 1", 2),
    ]
    rows = sansio.parse_page(
        sansio.group_resources(1, 1), sample("spec_group_resources"), HypervisorResources
    )
    assert [r.hypervisor_id for r in rows.items if r.eligible] == [1, 13, 14]


def test_a_field_vfbot_never_reads_cannot_fail_the_hypervisor_page() -> None:
    payload = copy.deepcopy(sample("spec_hypervisors"))
    row = payload["data"][1]
    row["networks"][0]["id"] = None  # the case from issue 9: it used to fail the whole page
    row["networks"][1] = "not a network"
    row.update(ip=None, maxMemory="lots", commissioned=None, encryptedToken=7, storage={})
    page = sansio.parse_page(sansio.list_hypervisors(1), payload, Hypervisor)
    assert [h.id for h in page.items] == [1, 6]


def test_fields_vfbot_never_reads_cannot_fail_a_server() -> None:
    payload = copy.deepcopy(sample("spec_server"))
    data = payload["data"]
    data.update(
        uuid=5,
        protected="maybe",
        destroyable=None,
        tasks="busy",
        traffic=None,
        storage=[{"status": "weird"}],
        vnc=None,
        backupPlan=[],
        sshKeys={"id": None},
        cpu=None,
        owner={"id": 1, "email": None, "admin": "?"},
    )
    data["hypervisor"]["resources"] = None
    data["network"]["interfaces"][0].update(mac=None, hypervisorConnectivity=[], firewall=None)
    server = sansio.parse_data(GET, payload, Server)
    assert (server.id, server.owner_id, server.phase) == (69, 1, BuildPhase.COMPLETE)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"commissionStatus": "two"}, "data.commissionStatus: Input should be a valid integer"),
        ({"buildFailed": None}, "data.buildFailed: Input should be a valid boolean"),
        ({"id": None}, "data.id: Input should be a valid integer"),
        ({"ownerId": "alice"}, "data.ownerId: Input should be a valid integer"),
        ({"suspended": "sometimes"}, "data.suspended: Input should be a valid boolean"),
    ],
)
def test_a_field_vfbot_reads_fails_naming_the_endpoint_and_the_field(
    change: dict[str, object], field: str
) -> None:
    payload = copy.deepcopy(sample("spec_server"))
    payload["data"].update(change)
    with pytest.raises(DecodeError) as caught:
        sansio.parse_data(GET, payload, Server)
    assert str(caught.value).startswith(f"GET /servers/70 returned an unexpected shape: {field}")


def test_a_list_row_vfbot_cannot_read_fails_the_list_naming_the_row() -> None:
    # Never dropped: reconciliation reads this list, and a missing row would look like a
    # server that was never created, so vfbot would create it again.
    payload = copy.deepcopy(sample("spec_user_servers"))
    payload["data"].append({**payload["data"][0], "id": 10, "commissionStatus": None})
    with pytest.raises(DecodeError, match=r"GET /servers/user/3 .*data\[1\]\.commissionStatus"):
        sansio.parse_list(sansio.user_servers(3), payload, Server)


def test_unreadable_address_rows_are_dropped_with_a_debug_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = copy.deepcopy(sample("spec_server"))
    iface = payload["data"]["network"]["interfaces"][0]
    iface["ipv4"][0]["address"] = None
    iface["ipv6"][1] = "2001:db8::/64"
    with caplog.at_level(logging.DEBUG, logger="bot.virtfusion"):
        server = sansio.parse_data(GET, payload, Server)
    assert server.ipv4 == ("192.168.4.35",)
    assert server.ipv6 == ("2001:db8:abcd:12:2::/80",)
    logged = caplog.text
    assert "GET /servers/70: server 69 network.interfaces[0].ipv4[0]" in logged
    assert "network.interfaces[0].ipv6[1]" in logged


def test_an_unreadable_template_is_dropped_and_the_rest_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = copy.deepcopy(sample("templates"))
    payload["data"][0]["templates"][0]["id"] = None
    payload["data"][0]["templates"][1]["variant"] = None  # a null the spec itself shows
    with caplog.at_level(logging.DEBUG, logger="bot.virtfusion"):
        templates = sansio.parse_templates(sansio.package_templates(1), payload)
    assert [(t.id, t.label) for t in templates] == [(12, "Ubuntu 24.04"), (21, "Debian 10")]
    assert "data[0].templates[0].id: Input should be a valid integer" in caplog.text


def test_an_unreadable_traffic_month_is_dropped() -> None:
    payload = {"data": [{"rx": 1, "tx": 2, "total": 3, "limit": 10}, {"rx": "lots"}]}
    months = sansio.parse_list(sansio.traffic(70), payload, TrafficMonth, lenient=True)
    assert [m.total for m in months] == [3]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"401 Unauthorized", "application/octet-stream"),  # the spec's own example
        (b'{"msg": "<!channel> token revoked", "errors": ["x"]}', "application/json"),
        (b"\xff\xfe not even utf-8", "text/plain"),
    ],
)
def test_a_401_body_is_never_parsed(body: bytes, content_type: str) -> None:
    response = _raw(401, body, {"content-type": content_type})
    with pytest.raises(AuthError) as caught:
        sansio.parse_response(GET, response, NOW)
    assert caught.value.messages == ()
    assert str(caught.value) == (
        "GET /servers/70 failed with HTTP 401 (the API token is missing, invalid or expired)"
    )


@pytest.mark.parametrize(
    "request_",
    [
        sansio.connect(),
        sansio.suspend_server(70),
        sansio.unsuspend_server(70),
        sansio.delete_server(70),
        sansio.set_backup_plan(70, 2),
        sansio.change_owner(70, 8),
        sansio.cpu_throttle(70, 10),
        sansio.create_server(CREATE_BODY, dry_run=True),
    ],
    ids=lambda r: r.label,
)
def test_answers_vfbot_does_not_read_are_not_parsed(request_: HttpRequest) -> None:
    # The spec declares these `application/octet-stream` with no example (or, for /connect,
    # the example `[]`): any 2xx body means success.
    assert request_.reads_body is False
    for body in (b"", b"[]", b"OK", b"<html>done</html>", b"\xff"):
        assert sansio.parse_response(request_, _raw(201, body), NOW) is None


def test_answers_vfbot_reads_are_parsed() -> None:
    readers = [GET, CREATE, sansio.build_server(70, BUILD_BODY), sansio.power(70, "boot")]
    assert all(r.reads_body for r in readers)
    assert all(row[1]().reads_body for row in BUILDERS if row[0] in ("server", "queue"))


def test_the_official_failed_build_example_is_a_failed_build() -> None:
    # `GET /servers/user/{id}`: server 9 has commissionStatus 2, state "failed" and
    # buildFailed false. Reading it as "building" would report the failure only at the timeout.
    (server,) = sansio.parse_list(sansio.user_servers(3), sample("spec_user_servers"), Server)
    assert (server.commission_status, server.state, server.build_failed) == (2, "failed", False)
    assert server.phase is BuildPhase.FAILED
    assert server.failure_signal == 'state "failed"'
    assert Server.model_validate({"id": 1, "buildFailed": True}).failure_signal == "buildFailed"
    assert Server.model_validate({"id": 1, "commissionStatus": 2}).failure_signal == ""


def test_the_os_is_a_template_id_never_a_name() -> None:
    # `os.name`/`os.version` exist nowhere in the spec; `settings.osTemplateInstallId` does.
    built = sansio.parse_data(GET, sample("spec_server"), Server)
    assert built.os_template_id == 49
    fresh = sansio.parse_data(CREATE, sample("create_server_201"), Server)
    assert fresh.os_template_id is None  # the create example's 0 means "none yet"
    (row,) = sansio.parse_list(sansio.user_servers(3), sample("spec_user_servers"), Server)
    assert row.os_template_id is None  # per-user rows carry only `os.screen`
    invented = Server.model_validate({"id": 1, "os": {"name": "Ubuntu", "version": "22.04"}})
    assert not hasattr(invented, "os_name") and invented.os_template_id is None


def test_template_label() -> None:
    templates = sansio.parse_templates(sansio.package_templates(1), sample("templates"))
    assert template_label(11, templates) == "Ubuntu 22.04"
    assert template_label(49, templates) == "template 49"
    assert template_label(None, templates) == ""


def test_capacity_counts_local_storage_only() -> None:
    # The spec's group-resources example: hypervisors 13 and 14 also list shared Ceph pools in
    # `otherStorage[]` (9,965 GB, 558,349,380 GB, ...). Those are not disk capacity for vfbot:
    # the same pool shows under every attached hypervisor and no field ties it to a package.
    page = sansio.parse_page(
        sansio.group_resources(1, 1), sample("spec_group_resources"), HypervisorResources
    )
    capacity = GroupCapacity.from_rows(1, page.items)
    assert capacity.storage_free_gb == 65 + 50 + 990
    assert capacity.largest_storage_free_gb == 990
    assert capacity.memory_free_mb == 1908 + 16832 + 20928
    assert capacity.ipv4_free == 470 + 503 + 33
    assert capacity.servers_limited is False  # `servers.max` 0: no limit (free is negative)
    assert capacity.hypervisors == 3  # `commissioned: true` is a boolean here


@pytest.mark.parametrize(("value", "eligible"), [(True, True), (3, True), (1, True), (0, False)])
def test_commissioned_is_a_boolean_here_and_an_integer_elsewhere(
    value: object, eligible: bool
) -> None:
    row = HypervisorResources.model_validate({"hypervisor": {"id": 1, "commissioned": value}})
    assert row.eligible is eligible
