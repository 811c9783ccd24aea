"""The records the store returns (human ids, state sets), and what the store modules export."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import bot.store
import bot.store.memory
import bot.store.sql
from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    TERMINAL_INSTANCE_STATES,
    TERMINAL_REQUEST_STATES,
    InstanceState,
    RequestState,
    parse_human_id,
)
from bot.provisioning.ports import ServerAlreadyClaimedError, StoreError


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


def _store_modules() -> list[ModuleType]:
    found = [bot.store.memory, bot.store.sql]
    for package in (bot.store.memory, bot.store.sql):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            found.append(importlib.import_module(info.name))
    found.append(importlib.import_module("bot.store._values"))
    return found


@pytest.mark.parametrize("module", _store_modules(), ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(module: ModuleType) -> None:
    assert module.__doc__, "every module opens with a docstring"
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


@pytest.mark.parametrize("module", ["bot.store", "bot.store.memory", "bot.provisioning.ports"])
def test_memory_store_and_ports_do_not_import_sqlalchemy(module: str) -> None:
    code = f"import sys, {module}; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
