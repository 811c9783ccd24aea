"""Pure record helpers: human ids and state sets."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import bot.store
import bot.store.records
import bot.store.sql
from bot.store import (
    IN_FLIGHT_INSTANCE_STATES,
    TERMINAL_INSTANCE_STATES,
    TERMINAL_REQUEST_STATES,
    InstanceState,
    RequestState,
    ServerAlreadyClaimedError,
    StoreError,
    parse_human_id,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("VF-12", 12),
        ("vf-12", 12),
        ("12", 12),
        (" VF-7 ", 7),
        ("VF-", None),
        ("VF-0", None),
        ("abc", None),
        ("VF-1x", None),
        ("-3", None),
        ("", None),
    ],
)
def test_parse_human_id(text: str, expected: int | None) -> None:
    assert parse_human_id(text) == expected


def test_terminal_and_in_flight_sets() -> None:
    assert {s.value for s in TERMINAL_REQUEST_STATES} == {
        "completed",
        "partially_failed",
        "failed",
        "rejected",
        "expired",
        "cancelled",
    }
    assert {s.value for s in TERMINAL_INSTANCE_STATES} == {
        "built",
        "failed",
        "cancelled",
        "deleted",
    }
    assert {s.value for s in IN_FLIGHT_INSTANCE_STATES} == {
        "creating",
        "create_unknown",
        "created",
        "building",
    }
    assert RequestState("pending_approval") is RequestState.PENDING_APPROVAL
    assert str(InstanceState.PLANNED) == "planned"


def test_server_already_claimed_error() -> None:
    err = ServerAlreadyClaimedError(42)
    assert isinstance(err, StoreError)
    assert err.server_id == 42
    assert "42" in str(err)


@pytest.mark.parametrize("module", [bot.store, bot.store.records, bot.store.sql])
def test_all_lists_exactly_the_public_names(module: ModuleType) -> None:
    exported = set(module.__all__)
    assert all(hasattr(module, name) for name in exported)
    defined_here = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert defined_here <= exported


def test_package_re_exports_every_record_name() -> None:
    assert set(bot.store.records.__all__) <= set(bot.store.__all__)


def test_store_package_does_not_import_sqlalchemy() -> None:
    import subprocess
    import sys

    code = "import sys, bot.store; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
