"""`vfbot extend` and `vfbot expiring` end to end: `main()` against the threaded sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.common import EXIT_CONFIG, EXIT_OK
from tests.conftest import ThreadedSandbox, Vfbot
from tests.test_cli_ops import EXAMPLE, panel  # the fixture

__all__ = ["panel"]


@pytest.fixture
def request_file(isolated_cwd: Path) -> Path:
    body = json.loads(EXAMPLE.read_text())
    body["expires_in"] = "3d"
    path = isolated_cwd / "lifetime.json"
    path.write_text(json.dumps(body))
    return path


def test_expiring_and_extend(panel: ThreadedSandbox, vfbot: Vfbot, request_file: Path) -> None:
    planned = vfbot("create", "-f", str(request_file), "--dry-run")
    assert "expires 3d after it is built" in planned.out, planned.everything
    created = vfbot("create", "-f", str(request_file), "--yes", "--wait")
    assert created.code == EXIT_OK, created.everything
    listed = vfbot("expiring")
    assert listed.code == EXIT_OK and "test-server" in listed.out and "2d 23h" in listed.out
    extended = vfbot("extend", "test-server", "1d")
    assert extended.code == EXIT_OK, extended.everything
    assert "test-server" in extended.out and "(in 3d 23h)" in extended.out
    by_request = vfbot("extend", "VF-1", "2w")  # the operator is not bound by VF_MAX_LIFETIME
    assert by_request.code == EXIT_OK and "(in 17d 23h)" in by_request.out
    with pytest.raises(SystemExit) as usage:  # argparse's own exit, as for every usage error
        vfbot("extend", "test-server", "soon")
    assert usage.value.code == EXIT_CONFIG
