"""Imports point one way (docs/architecture.md): the domain knows no surface or adapter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BOT = Path(__file__).parents[1] / "bot"

# package -> prefixes its modules must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "provisioning": (
        "bot.slack",
        "bot.cli",
        "bot.store",
        "bot.app",
        "bot.factories",
        "bot.sandbox",
        "sqlalchemy",
        "aiohttp",
        "slack_bolt",
        "slack_sdk",
        # Instrumentation stays out of the domain: the composition root measures around it.
        "prometheus_client",
        "bot.metrics",
        "bot.ops",
    ),
    "virtfusion": (
        "bot.provisioning",
        "bot.slack",
        "bot.cli",
        "bot.store",
        "bot.app",
        "bot.factories",
        "prometheus_client",
    ),
    "store": (
        "bot.slack.listeners",
        "bot.slack.blocks",
        "bot.cli",
        "bot.app",
        "bot.factories",
        "aiohttp",
    ),
    "slack": (
        "bot.store",
        "bot.cli",
        "bot.app",
        "bot.factories",
        "sqlalchemy",
        "prometheus_client",
        "bot.metrics",
    ),
    "cli": ("bot.store", "sqlalchemy", "bot.slack.listeners", "bot.slack.blocks"),
    "sandbox": ("bot.provisioning", "bot.slack", "bot.cli", "bot.store", "bot.app"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    wrong = []
    for path in sorted((BOT / package).rglob("*.py")):
        for name in sorted(_imports(path)):
            if any(name == p or name.startswith(p + ".") for p in FORBIDDEN[package]):
                wrong.append(f"{path.relative_to(BOT.parent)} imports {name}")
    assert wrong == []


def test_the_command_line_starts_without_the_heavy_imports() -> None:
    """`vfbot --help` and a mistyped command build the parser only: the store, Slack, metrics,
    the scheduler and the HTTP stack load when a command that needs them runs (issue 11)."""
    heavy = ("sqlalchemy", "alembic", "slack_bolt", "slack_sdk", "apscheduler", "aiohttp")
    heavy += ("prometheus_client", "bot.app", "bot.factories", "bot.store", "bot.slack", "bot.ops")
    probe = (
        "import sys, bot.cli; bot.cli.build_parser();"
        f"print(sorted({{m.split('.')[0] if not m.startswith('bot.') else m for m in sys.modules"
        f" if any(m == h or m.startswith(h + '.') for h in {heavy!r})}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
