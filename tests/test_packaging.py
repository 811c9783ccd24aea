"""What the image and the compose file are built from: a lock that covers every dependency, a
pinned base, a numeric user, a small build context, and alert rules over real metric names."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from bot.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {_name(r) for r in project["project"]["dependencies"]}
    lock = (ROOT / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, flags=re.MULTILINE))
    missing = wanted - {name.lower() for name in pinned}
    assert not missing, f"requirements.lock lacks {sorted(missing)}: run `make lock`"
    entries = re.findall(r"^[A-Za-z0-9_.-]+==.*?(?=^[A-Za-z]|\Z)", lock, flags=re.M | re.S)
    assert len(entries) == len(pinned)
    assert all("--hash=sha256:" in entry for entry in entries)
    assert "--index-url" not in lock and "--find-links" not in lock  # nothing of this machine


def test_the_dockerfile_is_pinned_numeric_and_installs_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert re.search(r"^USER \d+:\d+$", dockerfile, flags=re.MULTILINE)
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps ." in dockerfile
    assert "VF_BIND=0.0.0.0" in dockerfile
    assert 'CMD ["vfbot", "serve"]' in dockerfile


def test_the_build_context_leaves_out_the_venv_git_and_env() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :]  # everything is excluded first…
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {"requirements.lock", "pyproject.toml", "README.md", "bot"}  # …but these


@pytest.mark.skipif(
    shutil.which("hadolint") is None and not (ROOT / ".venv/bin/hadolint").exists(),
    reason="hadolint is not installed (make install brings it)",
)
def test_hadolint_finds_nothing() -> None:
    binary = shutil.which("hadolint") or str(ROOT / ".venv/bin/hadolint")
    result = subprocess.run([binary, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_postgres_two_replicas_and_prometheus() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    for service in ("postgres:", "vfbot:", "prometheus:"):
        assert re.search(rf"^  {service}$", compose, flags=re.MULTILINE), service
    assert re.search(r"replicas: 2$", compose, flags=re.MULTILINE)
    assert "postgresql+asyncpg://" in compose
    assert "./deploy/prometheus.yml:" in compose and "./deploy/alerts.yml:" in compose
    grace = int(re.findall(r"stop_grace_period: (\d+)s", compose)[0])
    assert grace > 20  # longer than the default VF_SHUTDOWN_TIMEOUT


def test_alert_rules_name_only_metrics_vfbot_exports() -> None:
    registry = Metrics().registry
    families = {metric.name for metric in registry.collect()}
    series = set()
    for family in registry.collect():
        series.update(sample.name for sample in family.samples)
    rules = (ROOT / "deploy" / "alerts.yml").read_text()
    used = set(re.findall(r"\b(vfbot_[a-z_]+)", rules))
    assert used, "no vfbot metric in the alert rules"
    histograms = {f"{name}_bucket" for name in families}
    unknown = {name for name in used if name not in families | series | histograms}
    unknown -= {"vfbot_panel_requests_total", "vfbot_engine_outcomes_total"}  # counters
    assert not unknown, unknown
    assert {"vfbot_panel_requests", "vfbot_engine_outcomes"} <= families


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", "deploy/alerts.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
