"""The docs stay true: the README's settings table, `make demo`, and the examples in docs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot import demo
from bot.config import Settings
from bot.metrics import Metrics
from bot.provisioning.reading import parse_request

ROOT = Path(__file__).parents[1]


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"README configuration table lacks {sorted(missing)}"


def test_make_demo_runs_a_full_create(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo configures vfbot through os.environ; keep that from leaking into other tests.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    assert demo.main(fast=True) == 0
    out = capsys.readouterr().out
    assert "ready to use it" in out  # vfbot check
    assert "Prague" in out and "Amsterdam" in out  # vfbot hypervisors
    assert "test-server: built (192.0.2." in out  # vfbot create --wait
    assert "completed" in out


@pytest.mark.parametrize("name", ["create.json", "create-with-network.json", "request-format.json"])
def test_example_requests_are_valid(name: str) -> None:
    parse_request((ROOT / "examples" / name).read_bytes())


def test_json_examples_in_docs_are_valid_requests() -> None:
    for doc in ("docs/request-format.md", "docs/field-mapping.md", "README.md"):
        text = (ROOT / doc).read_text()
        for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
            if '"project_name"' in block and '"instances"' in block:
                parse_request(block)


def test_inline_create_examples_in_the_readme_are_valid_requests() -> None:
    readme = (ROOT / "README.md").read_text()
    examples = re.findall(r"`/vf create (\{.*?\})`", readme)
    assert examples, "the README shows /vf create {json}"
    for example in examples:
        if '"instances"' in example:
            parse_request(example)


def test_operations_doc_lists_every_metric_family() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    families = {m.name for m in Metrics().registry.collect() if m.name.startswith("vfbot_")}
    counters = {"vfbot_panel_requests": "_total", "vfbot_engine_outcomes": "_total"}
    missing = {f"{n}{counters.get(n, '')}" for n in families} - set(
        re.findall(r"`(vfbot_\w+)`", doc)
    )
    assert not missing, f"docs/operations.md does not describe {sorted(missing)}"
