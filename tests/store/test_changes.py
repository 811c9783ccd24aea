"""Typed changes: only the fields a change sets reach the store, and unknown names never do."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.provisioning.ports import (
    RELEASE,
    UNSET,
    InstanceChange,
    OperationChange,
    RequestChange,
    changed_fields,
)

AT = datetime(2025, 1, 1, tzinfo=UTC)


def test_an_empty_change_sets_nothing() -> None:
    assert changed_fields(RequestChange()) == {}
    assert changed_fields(InstanceChange()) == {}
    assert changed_fields(OperationChange()) == {}
    assert repr(UNSET) == "UNSET"


def test_changed_fields_keeps_set_values_including_none_and_falsy() -> None:
    change = InstanceChange(server_id=0, error=None, ipv4=[], attempts=0, next_check_at=AT)
    assert changed_fields(change) == {
        "server_id": 0,
        "error": None,
        "ipv4": [],
        "attempts": 0,
        "next_check_at": AT,
    }
    assert changed_fields(RequestChange(cancel_requested=False, decided_by="U1")) == {
        "decided_by": "U1",
        "cancel_requested": False,
    }
    assert changed_fields(OperationChange(result="deleted", decision_note=None)) == {
        "decision_note": None,
        "result": "deleted",
    }


def test_release_clears_the_lease_and_combines() -> None:
    assert changed_fields(RELEASE) == {"lease_owner": None, "lease_until": None}
    combined = dataclasses.replace(RELEASE, error="boom", next_check_at=AT)
    assert changed_fields(combined) == {
        "error": "boom",
        "next_check_at": AT,
        "lease_owner": None,
        "lease_until": None,
    }


@pytest.mark.parametrize("change", [RequestChange, InstanceChange, OperationChange])
@pytest.mark.parametrize("name", ["state", "colour", "updated_at", "id"])
def test_unknown_or_reserved_fields_are_refused(change: Any, name: str) -> None:
    # The state moves only through `transition(new=...)`; ids and timestamps are the store's.
    with pytest.raises(TypeError, match=name):
        change(**{name: "x"})


def test_changes_are_frozen_and_keyword_only() -> None:
    change = RequestChange(decided_by="U1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.decided_by = "U2"  # type: ignore[misc]  # the point of the test
    with pytest.raises(TypeError):
        InstanceChange(1)  # type: ignore[call-arg]  # the point of the test
