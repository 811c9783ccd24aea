"""Shared helpers for the VirtFusion client tests: recorded-style panel replies and fixed values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.virtfusion import BuildServerBody, CreateServerBody, RawResponse

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

NOW = datetime(2025, 1, 9, 13, 30, 0, tzinfo=UTC)
TOKEN = "vf-TEST-token-not-real-5f3c9a1e"  # fake; the tests prove it never leaks
ROOT_PASSWORD = "FAKE-r00t-Pw-7Hq2zLm9"  # the build sample's settings.decryptedPassword

CREATE_BODY = CreateServerBody(package_id=1, user_id=1, hypervisor_group_id=1, ipv4=1)
BUILD_BODY = BuildServerBody(
    operating_system_id=11, name="server 1", hostname="server1.domain.com", ssh_key_ids=[1, 2]
)


def sample(name: str) -> Any:
    """The decoded JSON of `tests/samples/<name>.json`."""
    return json.loads(sample_bytes(name))


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def json_response(
    status: int, payload: object, headers: dict[str, str] | None = None
) -> RawResponse:
    return RawResponse(status, headers or {}, json.dumps(payload).encode())


def sample_response(status: int, name: str) -> RawResponse:
    return RawResponse(status, {"content-type": "application/json"}, sample_bytes(name))
