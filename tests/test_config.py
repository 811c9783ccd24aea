"""Settings: defaults, URL rules, durations, `.env`, one error listing every problem, no leaks."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from bot.config import (
    _EXAMPLES,
    ConfigError,
    Settings,
    load_database_settings,
    load_settings,
    normalize_panel_url,
    parse_duration,
)
from bot.factories import secrets_of

TOKEN = "test-token-3c9e1a77"  # obviously fake, long enough to search for

MINIMAL = {
    "VIRTFUSION_HOST": "https://panel.example.com",
    "VIRTFUSION_API_TOKEN": TOKEN,
    "VIRTFUSION_USER_ID": "1",
    "VIRTFUSION_PACKAGE_ID": "2",
}


def load(**overrides: str) -> Settings:
    """Settings from MINIMAL plus overrides, without any `.env` file."""
    return load_settings({**MINIMAL, **overrides}, env_file=None)


def problems(**overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(**overrides)
    return str(info.value)


# -- valid configuration ------------------------------------------------------------------------


def test_minimal_config_loads_with_defaults() -> None:
    settings = load()

    assert settings.panel_api_url == "https://panel.example.com/api/v1"
    assert settings.virtfusion_api_token.get_secret_value() == TOKEN
    assert settings.virtfusion_user_id == 1
    assert settings.virtfusion_package_id == 2
    assert settings.virtfusion_hypervisor_group_id is None
    assert settings.virtfusion_network_profile_id is None
    assert settings.virtfusion_timeout == 30.0
    assert settings.database_url == "sqlite+aiosqlite:///vfbot.db"
    assert settings.vf_poll_interval == 10.0
    assert settings.vf_build_timeout == 1200.0
    assert settings.vf_cleanup_failed is False
    assert settings.log_level == "INFO"


def test_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in MINIMAL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VIRTFUSION_HYPERVISOR_GROUP_ID", "3")
    monkeypatch.setenv("log_level", "debug")  # names are case-insensitive, values normalised

    settings = load_settings(env_file=None)

    assert settings.virtfusion_hypervisor_group_id == 3
    assert settings.log_level == "DEBUG"


def test_mapping_overrides_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in MINIMAL.items():
        monkeypatch.setenv(name, value)

    settings = load_settings({"VIRTFUSION_USER_ID": "7", "UNRELATED": "x"}, env_file=None)

    assert settings.virtfusion_user_id == 7


# -- the panel URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://panel.example.com", "https://panel.example.com/api/v1"),
        ("https://panel.example.com/", "https://panel.example.com/api/v1"),
        ("https://panel.example.com/api/v1", "https://panel.example.com/api/v1"),
        ("https://panel.example.com/api/v1/", "https://panel.example.com/api/v1"),
        ("  https://panel.example.com:8443/vf  ", "https://panel.example.com:8443/vf/api/v1"),
    ],
)
def test_api_v1_is_appended_once(host: str, expected: str) -> None:
    assert load(VIRTFUSION_HOST=host).panel_api_url == expected
    assert normalize_panel_url(host, allow_insecure=False) == expected


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:8080",
        "http://127.5.5.5",
        "http://localhost:8080/",
        "http://LOCALHOST",
        "http://[::1]:8080",
    ],
)
def test_plain_http_is_allowed_for_loopback(host: str) -> None:
    assert load(VIRTFUSION_HOST=host).panel_api_url.startswith("http://")


@pytest.mark.parametrize(
    "host",
    ["http://panel.example.com", "http://10.0.0.5", "http://[2001:db8::1]", "http://0.0.0.0"],
)
def test_plain_http_is_rejected_for_other_hosts(host: str) -> None:
    message = problems(VIRTFUSION_HOST=host)

    assert "VIRTFUSION_HOST" in message
    assert "VIRTFUSION_ALLOW_INSECURE=true" in message
    assert "https" in message


def test_plain_http_is_allowed_when_insecure_is_opted_into() -> None:
    settings = load(VIRTFUSION_HOST="http://panel.example.com", VIRTFUSION_ALLOW_INSECURE="true")

    assert settings.panel_api_url == "http://panel.example.com/api/v1"
    assert settings.virtfusion_allow_insecure is True


@pytest.mark.parametrize(
    "host", ["panel.example.com", "ftp://panel.example.com", "https://", "https://p.example:abc"]
)
def test_malformed_host_is_rejected(host: str) -> None:
    message = problems(VIRTFUSION_HOST=host)

    assert "VIRTFUSION_HOST" in message
    assert "https://panel.example.com" in message


# -- every problem at once ----------------------------------------------------------------------


def test_several_problems_are_reported_together_with_examples() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                "VIRTFUSION_HOST": "http://panel.example.com",
                "VIRTFUSION_USER_ID": "alice",
                "VIRTFUSION_TIMEOUT": "soon",
                "VF_MAX_INSTANCES": "0",
                "LOG_LEVEL": "loud",
            },
            env_file=None,
        )
    error = info.value
    message = str(error)

    assert len(error.problems) == 7
    assert message.startswith("vfbot is not configured correctly (7 problems)")
    for variable, example in [
        ("VIRTFUSION_HOST", "VIRTFUSION_ALLOW_INSECURE=true"),
        ("VIRTFUSION_API_TOKEN", "Configuration → API"),
        ("VIRTFUSION_USER_ID", "e.g. 1"),
        ("VIRTFUSION_PACKAGE_ID", "e.g. 1"),
        ("VIRTFUSION_TIMEOUT", "e.g. 30"),
        ("VF_MAX_INSTANCES", "from 1 to 500"),
        ("LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
    ]:
        [line] = [p for p in error.problems if p.startswith(variable + " ")]
        assert example in line, line
    assert "VIRTFUSION_API_TOKEN is not set" in message
    assert ".env.example" in message


def test_a_bad_database_url_is_listed_with_the_other_problems() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                **MINIMAL,
                "VIRTFUSION_USER_ID": "alice",
                "DATABASE_URL": "mysql://vfbot:s3cret-pw@db/vfbot",
            },
            env_file=None,
        )
    problems = info.value.problems
    assert len(problems) == 2
    [line] = [p for p in problems if p.startswith("DATABASE_URL ")]
    assert line == (
        "DATABASE_URL has the scheme 'mysql'; vfbot supports SQLite and PostgreSQL; expected "
        "sqlite+aiosqlite:///vfbot.db or postgresql+asyncpg://user@host/db"
    )
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://vfbot:s3cret-pw@db:5432x/vfbot", "DATABASE_URL is malformed"),
        ("sqlite://", "DATABASE_URL names an in-memory SQLite database"),
        ("vfbot.db", "DATABASE_URL is not a URL"),
    ],
)
def test_malformed_database_urls_are_configuration_problems(url: str, problem: str) -> None:
    message = problems(DATABASE_URL=url)
    assert problem in message and "s3cret-pw" not in message


def test_database_settings_need_no_panel_settings(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://vfbot@db/vfbot\nLOG_LEVEL=debug\n")
    settings = load_database_settings(env_file=tmp_path / ".env")
    assert (settings.database_url, settings.log_level) == ("postgres://vfbot@db/vfbot", "DEBUG")
    assert load_database_settings(env_file=None).database_url == "sqlite+aiosqlite:///vfbot.db"
    with pytest.raises(ConfigError) as info:
        load_database_settings({"DATABASE_URL": "sqlite://"}, env_file=None)
    assert info.value.problems[0].startswith("DATABASE_URL names an in-memory SQLite database")


def test_every_setting_has_an_example_of_a_valid_value() -> None:
    assert set(_EXAMPLES) == set(Settings.model_fields)


def test_min_above_max_is_a_problem_too() -> None:
    message = problems(VF_MIN_MEMORY_MB="4096", VF_MAX_MEMORY_MB="1024", VF_MIN_DISK_GB="50")

    assert "VF_MAX_MEMORY_MB (1024) is smaller than VF_MIN_MEMORY_MB (4096)" in message
    assert "VF_MIN_DISK_GB" not in message


def test_min_above_max_comes_in_the_first_message_with_the_rest() -> None:
    message = problems(VF_MIN_DISK_GB="100", VF_MAX_DISK_GB="10", VF_POLL_INTERVAL="often")

    assert "(2 problems)" in message
    assert "VF_MAX_DISK_GB (10) is smaller than VF_MIN_DISK_GB (100)" in message
    assert "VF_POLL_INTERVAL must be a duration" in message


# -- names, Slack ids and tokens ------------------------------------------------------------------


def test_misspelt_names_are_reported_with_the_closest_real_one(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / ".env", {**MINIMAL, "VF_POLL_INTERVALL": "5s"})
    with pytest.raises(ConfigError) as info:
        load_settings({"VIRTFUSION_TOKEN": "x", "SLACK_SIGNING": "y"}, env_file=env_file)
    assert info.value.problems == [
        "SLACK_SIGNING is not a vfbot setting; did you mean SLACK_SIGNING_SECRET?",
        "VF_POLL_INTERVALL is not a vfbot setting; did you mean VF_POLL_INTERVAL?",
        "VIRTFUSION_TOKEN is not a vfbot setting; did you mean VIRTFUSION_API_TOKEN?",
    ]
    message = problems(VF_SOMETHING_ELSE_ENTIRELY="1")
    assert "VF_SOMETHING_ELSE_ENTIRELY is not a vfbot setting; remove it" in message


def test_names_from_the_process_environment_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VF_LEASES", "5m")
    assert "VF_LEASES is not a vfbot setting; did you mean VF_LEASE?" in problems()


@pytest.mark.parametrize("variable", ["VF_NOTIFY_CHANNEL", "VF_ALLOWED_CHANNELS"])
def test_a_channel_name_is_refused_for_its_id(variable: str) -> None:
    message = problems(**{variable: "#ops"})
    assert f'{variable} "#ops" is a channel name; use the channel id (C…)' in message
    assert load(**{variable: "C0123ABCDEF"})


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (
            "SLACK_BOT_TOKEN",
            "xoxp-1234-user-token",
            "must start with xoxb- (this one starts with xoxp-)",
        ),
        ("SLACK_BOT_TOKEN", "plain-secret-value", "must start with xoxb- (this is no Slack token)"),
        (
            "SLACK_APP_TOKEN",
            "xoxb-1234-bot-token",
            "must start with xapp- (this one starts with xoxb-)",
        ),
    ],
)
def test_token_prefixes_are_checked(variable: str, value: str, says: str) -> None:
    message = problems(**{variable: value})
    assert f"{variable} {says}" in message
    assert value.split("-", 1)[1] not in message  # nothing of the secret part


def test_serve_needs_its_slack_tokens_in_the_same_message() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**MINIMAL, "VF_LEASE": "never"}, env_file=None, require_slack=True)
    assert len(info.value.problems) == 3
    assert "SLACK_BOT_TOKEN is not set" in str(info.value)
    assert "set SLACK_APP_TOKEN (xapp-, Socket Mode) or SLACK_SIGNING_SECRET" in str(info.value)


def test_a_bare_duration_is_seconds_everywhere() -> None:
    settings = load(VF_POLL_INTERVAL="5", VIRTFUSION_TIMEOUT="45", VF_SHUTDOWN_TIMEOUT="7")
    assert (settings.vf_poll_interval, settings.virtfusion_timeout) == (5, 45)
    assert settings.vf_shutdown_timeout == 7
    assert load(VF_SHUTDOWN_TIMEOUT="1m").vf_shutdown_timeout == 60
    assert load(LOG_FORMAT="JSON").log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VIRTFUSION_USER_ID", "0"),
        ("VIRTFUSION_PACKAGE_ID", "-1"),
        ("VIRTFUSION_CONCURRENCY", "65"),
        ("VIRTFUSION_RATE_LIMIT", "0"),
        ("VIRTFUSION_ALLOW_INSECURE", "maybe"),
        ("VF_POLL_INTERVAL", "0"),
        ("VF_CLEANUP_FAILED", "sometimes"),
    ],
)
def test_out_of_range_values_are_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**{variable: value})
    problem = info.value.problems[0]

    assert problem.startswith(variable + " ")
    assert "expected " in problem


# -- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("1.5", 1.5),
        ("20m", 1200.0),
        ("20min", 1200.0),
        ("24h", 86400.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        (" 2H ", 7200.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "-5", "5 weeks", "1h30m"])
def test_parse_duration_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_non_strings_pass_through_to_validation() -> None:
    assert parse_duration(12.5) == 12.5


def test_duration_settings_accept_units() -> None:
    settings = load(
        VIRTFUSION_TIMEOUT="45s",
        VF_POLL_INTERVAL="0.05",
        VF_BUILD_TIMEOUT="30m",
        VF_CREATE_GRACE="2m",
    )

    assert settings.virtfusion_timeout == 45.0
    assert settings.vf_poll_interval == 0.05
    assert settings.vf_build_timeout == 1800.0
    assert settings.vf_create_grace == 120.0


def test_bad_duration_setting_names_the_variable() -> None:
    message = problems(VF_BUILD_TIMEOUT="forever")

    assert "VF_BUILD_TIMEOUT must be a duration such as 30, 30s, 20m, 24h or 1d" in message


# -- .env files ---------------------------------------------------------------------------------


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text(
        "# vfbot test settings\n" + "".join(f"{k}={v}\n" for k, v in values.items()),
        encoding="utf-8",
    )
    return path


def test_env_file_is_read(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / "custom.env", {**MINIMAL, "VF_POLL_INTERVAL": "5s"})

    settings = load_settings(env_file=env_file)

    assert settings.virtfusion_api_token.get_secret_value() == TOKEN
    assert settings.vf_poll_interval == 5.0


def test_default_env_file_is_dotenv_in_the_working_directory(isolated_cwd: Path) -> None:
    write_env_file(isolated_cwd / ".env", MINIMAL)

    assert load_settings().virtfusion_package_id == 2


def test_environment_beats_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = write_env_file(tmp_path / ".env", MINIMAL)
    monkeypatch.setenv("VIRTFUSION_PACKAGE_ID", "9")

    assert load_settings(env_file=env_file).virtfusion_package_id == 9
    overridden = load_settings({"VIRTFUSION_PACKAGE_ID": "8"}, env_file=env_file)
    assert overridden.virtfusion_package_id == 8


def test_env_file_none_skips_dotenv(isolated_cwd: Path) -> None:
    write_env_file(isolated_cwd / ".env", MINIMAL)

    with pytest.raises(ConfigError, match="VIRTFUSION_HOST is not set"):
        load_settings(env_file=None)


def test_missing_env_file_is_not_an_error(tmp_path: Path) -> None:
    settings = load_settings(MINIMAL, env_file=tmp_path / "absent.env")

    assert settings.virtfusion_user_id == 1


def test_unknown_variables_in_env_file_are_ignored(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / ".env", {**MINIMAL, "COMPOSE_PROJECT_NAME": "vfbot"})

    assert load_settings(env_file=env_file).virtfusion_user_id == 1


# -- .env.example -------------------------------------------------------------------------------

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_env_example_documents_every_setting() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))

    assert documented == {name.upper() for name in Settings.model_fields}


def test_env_example_loads_and_holds_no_secret_looking_values() -> None:
    settings = load_settings(env_file=ENV_EXAMPLE)
    text = ENV_EXAMPLE.read_text(encoding="utf-8")

    assert settings.panel_api_url == "https://panel.example.com/api/v1"
    assert "replace" in settings.virtfusion_api_token.get_secret_value()
    for uncommented in re.findall(r"^([A-Z_]+=.*)$", text, flags=re.MULTILINE):
        assert "example" in uncommented or "replace" in uncommented or uncommented[-1].isdigit()


# -- the token stays secret ---------------------------------------------------------------------


def test_token_is_not_in_repr_str_or_dump() -> None:
    settings = load()

    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in str(settings.model_dump())
    assert TOKEN not in repr(settings.model_dump())
    assert TOKEN not in settings.model_dump_json()


def test_token_is_not_in_config_errors() -> None:
    message = problems(VIRTFUSION_USER_ID="x", VIRTFUSION_HOST="http://panel.example.com")

    assert TOKEN not in message


def test_values_are_not_echoed_in_config_errors() -> None:
    # A token pasted into the wrong variable must not be printed back either.
    message = problems(VIRTFUSION_USER_ID=TOKEN, VIRTFUSION_HOST=TOKEN, VF_POLL_INTERVAL=TOKEN)

    assert "VIRTFUSION_USER_ID" in message
    assert "VF_POLL_INTERVAL" in message
    assert TOKEN not in message


@pytest.mark.parametrize("token", ["", "   "])
def test_empty_token_is_rejected(token: str) -> None:
    message = problems(VIRTFUSION_API_TOKEN=token)

    assert "VIRTFUSION_API_TOKEN is empty" in message
    assert "Configuration → API" in message


def test_empty_token_in_env_file_is_rejected(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / ".env", {**MINIMAL, "VIRTFUSION_API_TOKEN": ""})

    with pytest.raises(ConfigError, match="VIRTFUSION_API_TOKEN is empty"):
        load_settings(env_file=env_file)


def test_a_lease_shorter_than_one_create_call_with_its_retries_is_refused() -> None:
    message = problems(VF_LEASE="60s", VIRTFUSION_TIMEOUT="30s")

    assert "VF_LEASE (60s) is shorter than one create call with its retries (90s" in message
    assert "at least 90s" in message
    assert load(VF_LEASE="90s", VIRTFUSION_TIMEOUT="30s").lease_s == 90
    short = load(VF_LEASE="2s", VIRTFUSION_TIMEOUT="0.5s")  # a test's short lease
    assert (short.lease_s, short.panel_retry_s, short.create_call_s) == (2, 1, 1.5)


def test_a_maximum_lifetime_shorter_than_the_default_one_is_refused() -> None:
    message = problems(VF_DEFAULT_LIFETIME="3d", VF_MAX_LIFETIME="1d")

    assert "VF_MAX_LIFETIME (86400s) is shorter than VF_DEFAULT_LIFETIME (259200s)" in message
    assert "raise it or lower the default" in message
    assert load(VF_DEFAULT_LIFETIME="3d", VF_MAX_LIFETIME="3d").vf_max_lifetime == 259200
    assert load(VF_MAX_LIFETIME="1d").vf_max_lifetime == 86400  # no default: nothing to hold


def test_the_lease_defaults_to_one_create_call_with_its_retries_plus_half_a_minute() -> None:
    assert load().lease_s == 120
    assert load(VIRTFUSION_TIMEOUT="60s").lease_s == 210


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://slack.com/api/", "https://slack.com/api/"),
        ("https://slack.com/api", "https://slack.com/api/"),
        ("https://proxy.example.com:8443/slack/api", "https://proxy.example.com:8443/slack/api/"),
        ("http://127.0.0.1:9999/api/", "http://127.0.0.1:9999/api/"),
        ("http://localhost:9999/api", "http://localhost:9999/api/"),
    ],
)
def test_slack_api_url_is_https_or_a_loopback_test_double(url: str, expected: str) -> None:
    assert load(SLACK_API_URL=url).slack_api_url == expected


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("http://slack.com/api/", "plain http for a non-loopback host"),
        ("http://10.0.0.5/api/", "plain http for a non-loopback host"),
        ("http://attacker.example/api/", "SLACK_BOT_TOKEN would travel in clear text"),
        ("ftp://slack.com/api/", "must be a URL such as https://slack.com/api/"),
        ("slack.com/api", "must be a URL such as https://slack.com/api/"),
        ("https://slack.com:abc/api/", "invalid port"),
        ("https://user:secret@slack.com/api/", "must not contain a user name or password"),
    ],
)
def test_slack_api_url_follows_the_panel_host_rule(url: str, phrase: str) -> None:
    message = problems(SLACK_API_URL=url)
    assert "SLACK_API_URL" in message and phrase in message
    assert "secret" not in message


def test_the_webhook_token_is_off_by_default_long_when_set_and_redacted() -> None:
    assert load().virtfusion_webhook_token is None
    message = problems(VIRTFUSION_WEBHOOK_TOKEN="short-s3cret")
    assert "VIRTFUSION_WEBHOOK_TOKEN is shorter than 16 characters" in message
    assert "short-s3cret" not in message
    token = "a-long-webhook-token-5e1f"
    settings = load(VIRTFUSION_WEBHOOK_TOKEN=token)
    assert token in secrets_of(settings)  # the log redactor masks it


def test_failover_group_ids_are_a_comma_separated_list_of_ids() -> None:
    assert load().virtfusion_failover_group_ids == []
    assert load(VIRTFUSION_FAILOVER_GROUP_IDS="2, 3").virtfusion_failover_group_ids == [2, 3]
    assert "VIRTFUSION_FAILOVER_GROUP_IDS" in problems(VIRTFUSION_FAILOVER_GROUP_IDS="2,Prague")
    assert "VIRTFUSION_FAILOVER_GROUP_IDS" in problems(VIRTFUSION_FAILOVER_GROUP_IDS="0")


# -- alerts and the daily report ----------------------------------------------------------------


def test_alert_settings_are_read() -> None:
    settings = load(
        VF_ALERT_CHANNEL="C0ALERTS",
        VF_CAPACITY_ALERT="memory<5%,ipv4<2",
        VF_TRAFFIC_ALERT="95%",
        VF_DAILY_REPORT="7:30",
        VF_TIMEZONE="Europe/Prague",
    )
    assert [t.text() for t in settings.vf_capacity_alert] == ["memory < 5 %", "ipv4 < 2"]
    assert settings.vf_traffic_alert == 95
    assert settings.vf_daily_report == time(7, 30)
    assert settings.zone.key == "Europe/Prague"
    defaults = load()
    assert [t.text() for t in defaults.vf_capacity_alert] == [
        "memory < 10 %",
        "disk < 10 %",
        "ipv4 < 5",
    ]
    assert (defaults.vf_traffic_alert, defaults.vf_daily_report) == (80, None)
    off = load(VF_CAPACITY_ALERT="off", VF_TRAFFIC_ALERT="off")
    assert (off.vf_capacity_alert, off.vf_traffic_alert) == ((), None)


def test_bad_alert_settings_are_named_with_what_to_write() -> None:
    message = problems(
        VF_ALERT_CHANNEL="#alerts",
        VF_CAPACITY_ALERT="ipv4<5%",
        VF_TRAFFIC_ALERT="lots",
        VF_DAILY_REPORT="9am",
        VF_TIMEZONE="Mars/Olympus",
    )
    assert 'VF_ALERT_CHANNEL "#alerts" is a channel name' in message
    assert "VF_CAPACITY_ALERT ipv4 takes a number of free addresses, e.g. ipv4<5" in message
    assert "VF_TRAFFIC_ALERT must be a percentage such as 80% (or off)" in message
    assert "VF_DAILY_REPORT must be a time of day as HH:MM, e.g. 09:00" in message
    assert 'VF_TIMEZONE "Mars/Olympus" is no IANA time zone name' in message
    assert "VF_DAILY_REPORT is set but VF_ALERT_CHANNEL is not" in problems(VF_DAILY_REPORT="09:00")
