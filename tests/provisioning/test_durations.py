"""Pure parts of server lifetimes: durations as typed, `expires_in` in requests, and the
lifetime policy (default, maximum, Extend choices)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import ConfigError, load_settings
from bot.provisioning.durations import duration_problem, format_duration, parse_lifetime
from bot.provisioning.lifetimes import (
    LifetimePolicy,
    format_expiry,
    lifetime_problems,
    server_lifetimes,
)
from bot.provisioning.reading import parse_request
from bot.provisioning.request import RequestError, request_to_json


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("20m", 1200), ("4h", 14400), ("3d", 259200), ("2w", 1209600), (" 5 H ", 18000)],
)
def test_durations_people_type(text: str, seconds: int) -> None:
    assert parse_lifetime(text) == timedelta(seconds=seconds)
    assert duration_problem(text) is None


@pytest.mark.parametrize("text", ["", "4", "4 hours", "1.5h", "-1h", "h", "4y", "0s", "3651d", 4])
def test_what_is_not_a_duration(text: object) -> None:
    problem = duration_problem(text)
    assert problem is not None and problem.startswith("must be")
    if isinstance(text, str):
        with pytest.raises(ValueError, match="must be"):
            parse_lifetime(text)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (30, "30s"), (90, "1m 30s"), (3600, "1h"), (93784, "1d 2h"), (86460, "1d")],
)
def test_format_duration(seconds: int, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_format_expiry_says_when_and_how_long() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert format_expiry(now + timedelta(hours=3), now) == "2026-01-01 15:00 UTC (in 3h)"
    assert format_expiry(now - timedelta(minutes=5), now) == "2026-01-01 11:55 UTC (5m ago)"


def _request(**top: object) -> dict[str, object]:
    return {
        "project_name": "p",
        "instances": [
            {"name": "a", "template": "debian-12"},
            {"name": "b", "template": "debian-12", "number_of_instances": 2, "expires_in": "1d"},
        ],
        **top,
    }


def test_expires_in_is_read_and_written_back() -> None:
    request = parse_request(_request(expires_in="4h"))
    assert request.expires_in == "4h" and request.instances[1].expires_in == "1d"
    assert request_to_json(request)["expires_in"] == "4h"
    assert "expires_in" not in request_to_json(parse_request(_request()))


def test_a_bad_expires_in_is_named_by_its_path() -> None:
    bad = _request(expires_in="tomorrow")
    bad["instances"][0]["expires_in"] = 4  # type: ignore[index]
    with pytest.raises(RequestError) as refused:
        parse_request(bad)
    paths = {p.path: p.message for p in refused.value.problems}
    assert "duration" in paths["expires_in"] and '"tomorrow"' in paths["expires_in"]
    assert "instances[0].expires_in" in paths


def test_each_server_gets_its_lifetime() -> None:
    policy = LifetimePolicy(default_s=600)
    assert server_lifetimes(parse_request(_request(expires_in="4h")), policy) == {
        "a": 14400,
        "b-1": 86400,
        "b-2": 86400,
    }
    assert list(server_lifetimes(parse_request(_request()), policy).values()) == [600, 86400, 86400]
    none = server_lifetimes(parse_request(_request()), LifetimePolicy())
    assert list(none.values()) == [None, 86400, 86400]


def test_the_maximum_names_each_field_once_and_admins_pass() -> None:
    policy = LifetimePolicy(max_s=3600)
    request = parse_request(_request(expires_in="2h"))
    problems = lifetime_problems(request, policy, admin=False)
    assert [p.path for p in problems] == ["expires_in", "instances[1].expires_in"]
    assert "longer than the maximum lifetime of 1h (VF_MAX_LIFETIME)" in problems[0].message
    assert lifetime_problems(request, policy, admin=True) == []
    assert lifetime_problems(request, LifetimePolicy(), admin=False) == []


def test_extend_choices_stay_within_the_maximum() -> None:
    assert LifetimePolicy(max_s=86400).extend_choices() == [3600, 14400, 86400]
    assert LifetimePolicy(max_s=1800).extend_choices() == [1800]
    assert LifetimePolicy(max_s=1800).extend_choices(admin=True)[-1] == 7 * 86400
    assert LifetimePolicy().too_long(10**9, admin=False) is None


def test_lifetime_settings() -> None:
    base = {
        "VIRTFUSION_HOST": "https://panel.example.com",
        "VIRTFUSION_API_TOKEN": "t",
        "VIRTFUSION_USER_ID": "1",
        "VIRTFUSION_PACKAGE_ID": "1",
    }
    settings = load_settings(base, env_file=None)
    assert settings.vf_default_lifetime is None and settings.vf_max_lifetime is None
    assert (settings.vf_expiry_warning, settings.vf_expiry_action) == (86400.0, "delete")
    settings = load_settings(
        {**base, "VF_DEFAULT_LIFETIME": "3d", "VF_EXPIRY_ACTION": "Suspend"}, env_file=None
    )
    assert (settings.vf_default_lifetime, settings.vf_expiry_action) == (259200.0, "suspend")
    with pytest.raises(ConfigError, match="VF_EXPIRY_ACTION"):
        load_settings({**base, "VF_EXPIRY_ACTION": "destroy"}, env_file=None)
    with pytest.raises(ConfigError, match="shorter than VF_DEFAULT_LIFETIME"):
        load_settings({**base, "VF_DEFAULT_LIFETIME": "3d", "VF_MAX_LIFETIME": "1d"}, env_file=None)
