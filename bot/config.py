"""Settings from the environment (and `.env`); read only when `load_settings()` is called."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

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

from bot.store.sql import check_database_url

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


def _database_url(value: str) -> str:
    check_database_url(value)
    return value.strip()


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
IdList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
LogLevel = Annotated[str, AfterValidator(_log_level)]
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///vfbot.db"

# What a valid value looks like, per variable, for the error message.
_EXAMPLES: dict[str, str] = {
    "virtfusion_host": "https://panel.example.com (with or without /api/v1)",
    "virtfusion_api_token": "the token from the panel's Configuration → API page",
    "virtfusion_user_id": "a whole number, e.g. 1 (VirtFusion user that will own servers)",
    "virtfusion_package_id": "a whole number, e.g. 1 (the package whose defaults servers get)",
    "virtfusion_hypervisor_group_id": "a whole number, e.g. 1 (see `vfbot hypervisors`)",
    "virtfusion_network_profile_id": "a whole number, or leave it unset",
    "virtfusion_timeout": "seconds, e.g. 30 (or 30s, 2m)",
    "virtfusion_rate_limit": "requests per second, e.g. 5",
    "virtfusion_concurrency": "a whole number from 1 to 64, e.g. 4",
    "virtfusion_allow_insecure": "true or false (default false)",
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
    "slack_bot_token": "the xoxb- token from the Slack app's OAuth & Permissions page",
    "slack_signing_secret": "the signing secret from the Slack app's Basic Information page",
    "slack_app_token": "the xapp- app-level token (Socket Mode), or leave it unset",
    "slack_api_url": "https://slack.com/api/ (change only for a test double)",
    "port": "a TCP port from 1 to 65535, e.g. 3000",
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
    "log_level": "DEBUG, INFO, WARNING or ERROR",
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
    virtfusion_network_profile_id: int | None = Field(default=None, gt=0)
    virtfusion_timeout: Duration = 30.0
    virtfusion_rate_limit: float = Field(default=5.0, gt=0, le=1000)
    virtfusion_concurrency: int = Field(default=4, ge=1, le=64)

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

    # -- Slack (needed by `vfbot serve` only) ------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    port: int = Field(default=3000, ge=1, le=65535)
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

    log_level: LogLevel = "INFO"

    @field_validator("virtfusion_host")
    @classmethod
    def _panel_url(cls, value: str, info: ValidationInfo) -> str:
        allow = bool(info.data.get("virtfusion_allow_insecure", False))
        return normalize_panel_url(value, allow_insecure=allow)

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        return normalize_slack_api_url(value)

    @field_validator("virtfusion_api_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

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
    env: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> Settings:
    """Read and check the settings; raise ConfigError listing every problem.

    `env` values take precedence over the process environment (tests clear the latter);
    `env_file=None` skips `.env`.
    """
    problems: list[str] = []
    overrides = {k.lower(): v for k, v in (env or {}).items() if k.lower() in Settings.model_fields}
    settings: Settings | None = None
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems.extend(_describe(exc))
    if settings is not None:
        if settings.vf_min_memory_mb > settings.vf_max_memory_mb:
            problems.append("VF_MIN_MEMORY_MB is larger than VF_MAX_MEMORY_MB")
        if settings.vf_min_disk_gb > settings.vf_max_disk_gb:
            problems.append("VF_MIN_DISK_GB is larger than VF_MAX_DISK_GB")
        if settings.vf_lease is not None and settings.vf_lease < settings.create_call_s:
            # A shorter lease could run out while a create is still in flight, and another
            # worker would then look for that server as if the call had been lost.
            problems.append(
                f"VF_LEASE ({settings.vf_lease:g}s) is shorter than one create call with its "
                f"retries ({settings.create_call_s:g}s = 3 times VIRTFUSION_TIMEOUT); set VF_LEASE "
                f"to at least {settings.create_call_s:g}s, or leave it unset"
            )
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


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
