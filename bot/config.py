"""Settings from the environment (and `.env`); read only when `load_settings()` is called.

One rule for durations everywhere: a number with a unit (`500ms`, `30s`, `20m`, `24h`, `1d`), and
a bare number means seconds. Every problem comes in one message: invalid values, min above max,
Slack ids and tokens of the wrong shape, and `VF_*`, `VIRTFUSION_*` or `SLACK_*` names vfbot does
not know (with the closest real one).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.provisioning.fleet.model import Threshold, parse_capacity_alert, parse_percent

__all__ = [
    "ConfigError",
    "DatabaseSettings",
    "Settings",
    "load_database_settings",
    "load_settings",
    "normalize_panel_url",
    "normalize_slack_api_url",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> object:
    """Seconds from `90`, `90s`, `20m`, `24h` or `1d`; other values pass through to validation."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError("must be a duration such as 30, 30s, 20m, 24h or 1d")
        number, unit = match.groups()
        return float(number) * _UNIT_S[(unit or "s").lower()]
    return value


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


_PREFIXES = ("VF_", "VIRTFUSION_", "SLACK_")
# Slack ids: channels are C… (public) or G… (private, older ones); tokens by their prefix.
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_TOKEN_PREFIXES = {
    "slack_bot_token": ("xoxb-", "the bot token (xoxb-) from OAuth & Permissions"),
    "slack_app_token": ("xapp-", "an app-level token (xapp-) from Basic Information"),
}


def _not_below(minimum_field: str) -> Callable[[int, int], str | None]:
    def check(value: int, minimum: int) -> str | None:
        if value >= minimum:
            return None
        return (
            f"({value}) is smaller than {minimum_field.upper()} ({minimum}); "
            "raise it or lower the minimum"
        )

    return check


def _holds_the_default(maximum: float, default: float) -> str | None:
    if default <= maximum:
        return None
    return (
        f"({maximum:g}s) is shorter than VF_DEFAULT_LIFETIME ({default:g}s); every request "
        "without expires_in would be refused: raise it or lower the default"
    )


def _outlasts_a_create(lease: float, timeout: float) -> str | None:
    # A shorter lease could run out while a create is still in flight, and another worker
    # would then look for that server as if the call had been lost.
    if lease >= 3 * timeout:
        return None
    return (
        f"({lease:g}s) is shorter than one create call with its retries "
        f"({3 * timeout:g}s = 3 times VIRTFUSION_TIMEOUT); set it to at least "
        f"{3 * timeout:g}s, or leave it unset"
    )


def _report_channel(_report: time, channel: None) -> str:
    return (
        "is set but VF_ALERT_CHANNEL is not: the report is posted there; set "
        "VF_ALERT_CHANNEL to a channel id, or VF_DAILY_REPORT=off"
    )


# Settings that only work together with one read before them: the setting (when set) -> the
# other one, the type that other has when the check applies, and the check (a problem or None).
_CHECKED_AGAINST: dict[str, tuple[str, type, Callable[[Any, Any], str | None]]] = {
    "vf_daily_report": ("vf_alert_channel", type(None), _report_channel),
    "vf_max_memory_mb": ("vf_min_memory_mb", int, _not_below("vf_min_memory_mb")),
    "vf_max_disk_gb": ("vf_min_disk_gb", int, _not_below("vf_min_disk_gb")),
    "vf_max_lifetime": ("vf_default_lifetime", float, _holds_the_default),
    "vf_lease": ("virtfusion_timeout", float, _outlasts_a_create),
}


def _database_url(value: str) -> str:
    from bot.store.sql import check_database_url  # SQLAlchemy: only once settings are read

    check_database_url(value)
    return value.strip()


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _thresholds(value: object) -> object:
    return parse_capacity_alert(value) if isinstance(value, str) else value


def _percent(value: object) -> object:
    return parse_percent(value) if isinstance(value, str) else value


_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _clock_time(value: object) -> object:
    """`09:00` as a time of day; `off` as None."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in ("", "off", "none"):
        return None
    match = _CLOCK_TIME.match(text)
    if match is None:
        raise ValueError("must be a time of day as HH:MM, e.g. 09:00 (or off)")
    return time(int(match.group(1)), int(match.group(2)))


def _time_zone(value: str) -> str:
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'"{name[:40]}" is no IANA time zone name') from None
    return name


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
IdList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
GroupIdList = Annotated[list[Annotated[int, Field(gt=0)]], NoDecode, BeforeValidator(_split_list)]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
LogLevel = Annotated[str, AfterValidator(_log_level)]
LogFormat = Annotated[Literal["text", "json"], BeforeValidator(_lower)]
ExpiryActionName = Annotated[Literal["delete", "suspend", "notify"], BeforeValidator(_lower)]
Thresholds = Annotated[tuple[Threshold, ...], NoDecode, BeforeValidator(_thresholds)]
Percent = Annotated[float | None, BeforeValidator(_percent)]
ClockTime = Annotated[time | None, BeforeValidator(_clock_time)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
DEFAULT_CAPACITY_ALERT = "memory<10%,disk<10%,ipv4<5"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///vfbot.db"

# What a valid value looks like, per variable, for the error message.
_EXAMPLES: dict[str, str] = {
    "virtfusion_host": "https://panel.example.com (with or without /api/v1)",
    "virtfusion_api_token": "the token from the panel's Configuration → API page",
    "virtfusion_user_id": "a whole number, e.g. 1 (VirtFusion user that will own servers)",
    "virtfusion_package_id": "a whole number, e.g. 1 (the package whose defaults servers get)",
    "virtfusion_hypervisor_group_id": "a whole number, e.g. 1 (see `vfbot hypervisors`)",
    "virtfusion_failover_group_ids": "comma-separated group ids tried in order after the "
    "default group, e.g. 2,3 (or leave it unset)",
    "virtfusion_network_profile_id": "a whole number, or leave it unset",
    "virtfusion_timeout": "seconds, e.g. 30 (or 30s, 2m)",
    "virtfusion_rate_limit": "requests per second, e.g. 5",
    "virtfusion_concurrency": "a whole number from 1 to 64, e.g. 4",
    "virtfusion_allow_insecure": "true or false (default false)",
    "virtfusion_webhook_token": "a long random string, also entered in the panel's webhook",
    "database_url": "sqlite+aiosqlite:///vfbot.db or postgresql+asyncpg://user@host/db",
    "vf_max_instances": "a whole number from 1 to 500, e.g. 20",
    "vf_min_memory_mb": "megabytes, a whole number, e.g. 256",
    "vf_max_memory_mb": "megabytes, a whole number, e.g. 262144",
    "vf_min_disk_gb": "gigabytes, a whole number, e.g. 5",
    "vf_max_disk_gb": "gigabytes, a whole number, e.g. 4096",
    "vf_max_cpu": "a whole number of cores, e.g. 64",
    "vf_poll_interval": "a duration above zero, e.g. 10s",
    "vf_build_timeout": "a duration above zero, e.g. 20m",
    "vf_create_grace": "a duration above zero, e.g. 2m",
    "vf_lease": "a duration above zero, e.g. 2m (at least 3 times VIRTFUSION_TIMEOUT)",
    "vf_cleanup_failed": "true or false (default false)",
    "vf_worker_id": "any short name, e.g. worker-1",
    "vf_default_lifetime": "a duration, e.g. 3d (or leave it unset: no expiry)",
    "vf_max_lifetime": "a duration, e.g. 14d (or leave it unset: no maximum)",
    "vf_expiry_warning": "a duration above zero, e.g. 24h",
    "vf_expiry_action": "delete, suspend or notify",
    "slack_bot_token": "the xoxb- token from the Slack app's OAuth & Permissions page",
    "slack_signing_secret": "the signing secret from the Slack app's Basic Information page",
    "slack_app_token": "the xapp- app-level token (Socket Mode), or leave it unset",
    "slack_api_url": "https://slack.com/api/ (change only for a test double)",
    "port": "a TCP port from 1 to 65535, e.g. 3000 (0: any free one)",
    "vf_require_approval": "e.g. always (the default)",
    "vf_approvers": "comma-separated Slack user ids, e.g. U0123ABCDEF,U0456GHIJKL",
    "vf_approver_groups": "comma-separated Slack user group ids, e.g. S0123ABCDEF",
    "vf_allow_self_approval": "true or false (default false)",
    "vf_approval_ttl": "a duration above zero, e.g. 24h",
    "vf_allowed_channels": "comma-separated Slack channel ids, e.g. C0123ABCDEF",
    "vf_requesters": "comma-separated Slack user or user-group ids, e.g. U0123ABCDEF,S0456",
    "vf_admins": "comma-separated Slack user ids, e.g. U0123ABCDEF",
    "vf_notify_channel": "a Slack channel id, e.g. C0123ABCDEF",
    "vf_group_cache": "a duration above zero, e.g. 5m",
    "vf_alert_channel": "a Slack channel id, e.g. C0123ABCDEF",
    "vf_capacity_alert": f"e.g. {DEFAULT_CAPACITY_ALERT} (or off)",
    "vf_traffic_alert": "a percentage of a server's traffic limit, e.g. 80% (or off)",
    "vf_alert_interval": "a duration above zero, e.g. 15m",
    "vf_daily_report": "a time of day, e.g. 09:00 (or off)",
    "vf_timezone": "an IANA time zone name, e.g. UTC or Europe/Prague",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "log_format": "text or json",
    "vf_bind": "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0 (all interfaces)",
    "vf_shutdown_timeout": "a duration above zero, e.g. 20s",
}


class ConfigError(Exception):
    """The configuration is unusable; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"vfbot is not configured correctly ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}\n"
            "Set these in the environment or in .env (see .env.example and the README)."
        )


def normalize_panel_url(value: str, *, allow_insecure: bool) -> str:
    """The panel's API base URL ending in `/api/v1`; http only for loopback unless allowed."""
    url = value.strip()
    parts = urlsplit(url)
    try:
        _ = parts.port  # a malformed port ("host:abc", "host:99999") only raises when read
    except ValueError:
        message = "has an invalid port; use a URL such as https://panel.example.com:443"
        raise ValueError(message) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be a URL such as https://panel.example.com")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
        raise ValueError(
            "uses plain http for a non-loopback host; use https (the API token would travel "
            "in clear text) or set VIRTFUSION_ALLOW_INSECURE=true"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/api/v1"):
        path += "/api/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def normalize_slack_api_url(value: str) -> str:
    """The Slack Web API base URL ending in `/`; https, or plain http to a loopback test double.

    The bot token travels with every call, so it never goes in clear text over a network.
    """
    url = value.strip()
    parts = urlsplit(url)
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("has an invalid port; use https://slack.com/api/") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be a URL such as https://slack.com/api/")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password; use https://slack.com/api/")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            "uses plain http for a non-loopback host; use https (SLACK_BOT_TOKEN would travel "
            "in clear text); plain http is only for a test double on this machine"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/", "", ""))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every setting vfbot reads; names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # -- the panel -------------------------------------------------------------------------------
    virtfusion_allow_insecure: bool = False  # declared first: the host check reads it
    virtfusion_host: str
    virtfusion_api_token: SecretStr
    virtfusion_user_id: int = Field(gt=0)
    virtfusion_package_id: int = Field(gt=0)
    virtfusion_hypervisor_group_id: int | None = Field(default=None, gt=0)
    virtfusion_failover_group_ids: GroupIdList = Field(default_factory=list)
    virtfusion_network_profile_id: int | None = Field(default=None, gt=0)
    virtfusion_timeout: Duration = 30.0
    virtfusion_rate_limit: float = Field(default=5.0, gt=0, le=1000)
    virtfusion_concurrency: int = Field(default=4, ge=1, le=64)
    virtfusion_webhook_token: SecretStr | None = None  # unset: POST /virtfusion/webhook is off

    # -- storage ---------------------------------------------------------------------------------
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL

    # -- the provisioning engine -----------------------------------------------------------------
    vf_max_instances: int = Field(default=20, ge=1, le=500)
    vf_min_memory_mb: int = Field(default=256, ge=1)
    vf_max_memory_mb: int = Field(default=262144, ge=1)
    vf_min_disk_gb: int = Field(default=5, ge=1)
    vf_max_disk_gb: int = Field(default=4096, ge=1)
    vf_max_cpu: int = Field(default=64, ge=1)
    vf_poll_interval: Duration = 10.0
    vf_build_timeout: Duration = 1200.0
    vf_create_grace: Duration = 120.0
    vf_lease: Duration | None = None  # unset: one create call with its retries, plus 30 s
    vf_cleanup_failed: bool = False
    vf_worker_id: str | None = None

    # -- server lifetimes ------------------------------------------------------------------------
    vf_default_lifetime: Duration | None = None  # unset: servers never expire
    vf_max_lifetime: Duration | None = None  # unset: no maximum
    vf_expiry_warning: Duration = 86400.0
    vf_expiry_action: ExpiryActionName = "delete"

    # -- Slack (needed by `vfbot serve` only) ------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    port: int = Field(default=3000, ge=0, le=65535)  # 0: any free port (tests)
    vf_bind: str = "127.0.0.1"
    vf_require_approval: str = "always"
    vf_approvers: IdList = Field(default_factory=list)
    vf_approver_groups: IdList = Field(default_factory=list)
    vf_allow_self_approval: bool = False
    vf_approval_ttl: Duration = 86400.0
    vf_allowed_channels: IdList = Field(default_factory=list)
    vf_requesters: IdList = Field(default_factory=list)
    vf_admins: IdList = Field(default_factory=list)
    vf_notify_channel: str | None = None
    vf_group_cache: Duration = 300.0

    # -- alerts and the daily report (`vfbot serve`, with VF_ALERT_CHANNEL) -----------------------
    vf_alert_channel: str | None = None
    vf_capacity_alert: Thresholds = parse_capacity_alert(DEFAULT_CAPACITY_ALERT)
    vf_traffic_alert: Percent = 80.0
    vf_alert_interval: Duration = 900.0
    vf_daily_report: ClockTime = None
    vf_timezone: TimeZone = "UTC"

    # -- operations ------------------------------------------------------------------------------
    vf_shutdown_timeout: Duration = 20.0
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"

    @field_validator("virtfusion_host")
    @classmethod
    def _panel_url(cls, value: str, info: ValidationInfo) -> str:
        allow = bool(info.data.get("virtfusion_allow_insecure", False))
        return normalize_panel_url(value, allow_insecure=allow)

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        return normalize_slack_api_url(value)

    @field_validator("virtfusion_webhook_token")
    @classmethod
    def _webhook_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("is shorter than 16 characters (or empty); use a long random string")
        return value

    @field_validator("virtfusion_api_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

    @field_validator("slack_bot_token", "slack_app_token")
    @classmethod
    def _token_prefix(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        prefix, what = _TOKEN_PREFIXES[str(info.field_name)]
        token = value.get_secret_value() if value is not None else prefix
        if not token.startswith(prefix):
            # Name a Slack token's kind (its public prefix), never any other part of it.
            kind = re.match(r"(xox[a-z]|xapp)-", token)
            given = f"this one starts with {kind.group(0)}" if kind else "this is no Slack token"
            raise ValueError(f"must start with {prefix} ({given}); use {what}")
        return value

    @field_validator("vf_allowed_channels", "vf_notify_channel", "vf_alert_channel")
    @classmethod
    def _channel_ids(cls, value: list[str] | str | None) -> list[str] | str | None:
        for entry in [value] if isinstance(value, str) else value or []:
            if not _CHANNEL_ID.match(entry):
                name = "a channel name" if entry.startswith("#") else "not a channel id"
                raise ValueError(
                    f'"{entry[:40]}" is {name}; use the channel id (C…): in Slack, open the '
                    "channel's details and copy the Channel ID at the bottom"
                )
        return value

    @field_validator(*_CHECKED_AGAINST)
    @classmethod
    def _checked_against(cls, value: object, info: ValidationInfo) -> object:
        other_field, kind, check = _CHECKED_AGAINST[str(info.field_name)]
        # Absent from info.data when the other setting was invalid itself: said already.
        if value is not None and other_field in info.data:
            other = info.data[other_field]
            problem = check(value, other) if isinstance(other, kind) else None
            if problem is not None:
                raise ValueError(problem)
        return value

    @property
    def zone(self) -> ZoneInfo:
        """VF_TIMEZONE: the daily report's time zone."""
        return ZoneInfo(self.vf_timezone)

    @property
    def panel_api_url(self) -> str:
        """The panel's API base URL, always ending in `/api/v1`."""
        return self.virtfusion_host

    @property
    def panel_retry_s(self) -> float:
        """How long the panel client keeps starting new attempts of one call: twice
        VIRTFUSION_TIMEOUT."""
        return 2 * self.virtfusion_timeout

    @property
    def create_call_s(self) -> float:
        """The longest one create call with its retries can take: attempts start for
        `panel_retry_s`, and the last one may take VIRTFUSION_TIMEOUT."""
        return self.panel_retry_s + self.virtfusion_timeout

    @property
    def lease_s(self) -> float:
        """How long a worker owns a row it works on (VF_LEASE, renewed while it works)."""
        return self.vf_lease if self.vf_lease is not None else self.create_call_s + 30


class DatabaseSettings(BaseSettings):
    """What `vfbot db` reads: the database alone, so it runs without the panel's settings."""

    model_config = Settings.model_config

    database_url: DatabaseUrl = DEFAULT_DATABASE_URL
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"


def load_database_settings(
    env: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> DatabaseSettings:
    """Read and check DATABASE_URL and LOG_LEVEL; raise ConfigError listing the problems."""
    overrides = {
        k.lower(): v for k, v in (env or {}).items() if k.lower() in DatabaseSettings.model_fields
    }
    try:
        # pydantic-settings parses the strings; its stubs type each keyword as the field's type.
        return DatabaseSettings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    env_file: str | Path | None = ".env",
    require_slack: bool = False,
) -> Settings:
    """Read and check the settings; raise ConfigError listing every problem.

    `env` values take precedence over the process environment (tests clear the latter);
    `env_file=None` skips `.env`. `require_slack` (`vfbot serve`) also needs the Slack tokens.
    """
    raw = _raw_names(env, env_file)
    problems = _unknown_names(raw)
    overrides = {k.lower(): v for k, v in (env or {}).items() if k.lower() in Settings.model_fields}
    settings: Settings | None = None
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems.extend(_describe(exc))
    if require_slack:
        problems.extend(_slack_missing(raw))
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def _raw_names(env: Mapping[str, str] | None, env_file: str | Path | None) -> dict[str, str]:
    """Every variable set for vfbot (`env`, the process environment, `.env`), upper-cased, with
    its raw value; empty values count as unset."""
    found: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        file_values = dotenv_values(env_file, encoding="utf-8")
        found.update({k.upper(): v for k, v in file_values.items() if v})
    found.update({k.upper(): v for k, v in os.environ.items() if v})
    found.update({k.upper(): v for k, v in (env or {}).items() if v})
    return found


def _unknown_names(raw: Mapping[str, str]) -> list[str]:
    """A problem per `VF_*`, `VIRTFUSION_*` or `SLACK_*` variable that is no setting, with the
    closest real name: a misspelt setting would otherwise be silently ignored."""
    known = sorted(name.upper() for name in Settings.model_fields)
    problems = []
    for name in sorted(raw):
        if name.startswith(_PREFIXES) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "remove it (the README lists them)"
            problems.append(f"{name} is not a vfbot setting; {hint}")
    return problems


def _slack_missing(raw: Mapping[str, str]) -> list[str]:
    """What `vfbot serve` needs from Slack that is not set at all."""
    guide = "docs/slack-setup.md has every step"
    problems = []
    if "SLACK_BOT_TOKEN" not in raw:
        problems.append(
            f"SLACK_BOT_TOKEN is not set (the xoxb- token from OAuth & Permissions; {guide})"
        )
    if "SLACK_APP_TOKEN" not in raw and "SLACK_SIGNING_SECRET" not in raw:
        problems.append(
            "set SLACK_APP_TOKEN (xapp-, Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode); " + guide
        )
    return problems


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = field.upper()
        if error["type"] == "missing":
            text = "is not set"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
            text = text[0].lower() + text[1:] if text else "is invalid"
        example = _EXAMPLES.get(field)
        problems.append(f"{variable} {text}" + (f"; expected {example}" if example else ""))
    return problems
