"""Property: every request vfbot can be sent is accepted, or rejected with problems that each
name a JSON path into what was sent; nothing else is ever raised.

Seeded (derandomized) so the suite stays deterministic; about 1,000 requests per run, built from
the real format with hostile values mixed in (lone surrogates, numbers past Python's 4300-digit
limit, floats, NaN, deep nesting, duplicate keys, truncated and corrupted text and bytes).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.provisioning.reading import MAX_PROBLEMS, parse_request
from bot.provisioning.request import ProvisionRequest, RequestError, RequestLimits, request_to_json

LIMITS = RequestLimits(max_body_bytes=64 * 1024)  # the same code paths, smaller inputs

_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["web", "ubuntu-22.04", "Prague", "/mnt/data", "default", " x ", ""]),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), _SURROGATES, st.text(max_size=4)),
)
_INTS = st.one_of(
    st.integers(min_value=-3, max_value=300_000),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.sampled_from([int("9" * 4300), -int("9" * 4300), 2**63, 0, 1, 20, 21]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    _INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a plausible value, sometimes any JSON at all."""
    return st.one_of(value, value, value, _JSON)


_RESOURCES = st.fixed_dictionaries(
    {},
    optional={"memory": _maybe(_INTS), "disk": _maybe(_INTS), "cpu": _maybe(_INTS), "ram": _JSON},
)
_NETWORK = st.fixed_dictionaries(
    {},
    optional={
        "profile_id": _maybe(_INTS),
        "bandwidth": _maybe(_INTS),
        "public_ip": _maybe(st.booleans()),
        "firewall_rulesets": _maybe(st.lists(_INTS, max_size=5)),
    },
)
_VOLUME = st.fixed_dictionaries(
    {"name": _maybe(_TEXT), "size_gb": _maybe(_INTS)}, optional={"mount_point": _maybe(_TEXT)}
)
_INSTANCE = st.fixed_dictionaries(
    {"name": _maybe(_TEXT), "template": _maybe(st.one_of(_TEXT, _INTS))},
    optional={
        "number_of_instances": _maybe(_INTS),
        "provider": _maybe(st.just("virtfusion")),
        "provision": _maybe(st.booleans()),
        "hypervisor_id": _maybe(_INTS),
        "hypervisor_group": _maybe(st.one_of(_TEXT, _INTS)),
        "resources": _maybe(_RESOURCES),
        "ssh_key_name": _maybe(_TEXT),
        "network": _maybe(_NETWORK),
        "volumes": _maybe(st.lists(_VOLUME, max_size=3)),
        "memory": _JSON,
    },
)
_REQUEST = st.fixed_dictionaries(
    {},
    optional={
        "project_name": _maybe(_TEXT),
        "instances": _maybe(st.lists(_maybe(_INSTANCE), max_size=4)),
        "extra": _JSON,
    },
)


def _dumps(value: object, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)


@st.composite
def _raw(draw: st.DrawFn) -> bytes | str | dict[str, Any]:
    """One request as it could arrive: an object (the form), text (inline) or bytes (a file)."""
    value = draw(st.one_of(_REQUEST, _REQUEST, _REQUEST, _JSON))
    form = draw(st.sampled_from(["object", "text", "bytes"]))
    if form == "object":
        return value if isinstance(value, dict) else {"value": value}
    text = _dumps(value, ascii_only=draw(st.booleans()) or form == "bytes")
    mutation = draw(st.sampled_from(["none", "none", "duplicate", "cut", "insert", "nest"]))
    if mutation == "duplicate" and text.startswith("{") and len(text) > 2:
        key = draw(st.sampled_from(['"project_name"', '"instances"', '"name"', '"x"']))
        # Repeat a key in the first object (the last one would silently win).
        text = "{" + key + ": 1, " + text[1:] if text != "{}" else text
        text = text.replace('{"name"', '{"name": "a", "name"', 1)
    elif mutation == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif mutation == "insert":
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at]
            + draw(st.sampled_from(['"', "{", "]", ",", "\\", "\\ud800", "\x00"]))
            + text[at:]
        )
    elif mutation == "nest":
        depth = draw(st.sampled_from([10, 500, 5_000]))
        text = "[" * depth + text + "]" * depth
    if form == "text":
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=3)) + raw[at:]
    return raw


_STEP = re.compile(r'\.?([A-Za-z0-9_-]{1,40})|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def _steps(path: str) -> list[int | str] | None:
    """The keys and indexes of a path, or None when it quotes a field name it had to cut."""
    steps: list[int | str] = []
    at = 0
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None and path[at] == "…":
            return None  # a deep path, cut in the middle
        assert match is not None, f"not a JSON path: {path!r}"
        if match[1] is not None:
            steps.append(match[1])
        elif match[2] is not None:
            steps.append(int(match[2]))
        else:
            key = json.loads(match[3])
            if key.endswith("…"):
                return None
            steps.append(key)
        at = match.end()
    return steps


def _decoded(raw: bytes | str | dict[str, Any]) -> object:
    if isinstance(raw, dict):
        return raw
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return json.loads(text.removeprefix("\ufeff"))


def _check_path_points_into(raw: bytes | str | dict[str, Any], path: str) -> None:
    """A problem's path leads to what was sent: every step but the last exists (the last may be
    a missing required field)."""
    steps = _steps(path)
    if not steps:
        return
    node: object = _decoded(raw)
    for step in steps[:-1]:
        if isinstance(step, int):
            assert isinstance(node, list) and step < len(node), path
        else:
            assert isinstance(node, dict) and step in node, path
        node = node[step]  # type: ignore[index]
    assert isinstance(node, list if isinstance(steps[-1], int) else dict), path


@settings(
    max_examples=1000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_raw())
def test_every_request_is_accepted_or_rejected_with_json_paths(
    raw: bytes | str | dict[str, Any],
) -> None:
    try:
        request = parse_request(raw, LIMITS)
    except RequestError as error:
        assert 1 <= len(error.problems) <= MAX_PROBLEMS + 1
        str(error).encode("utf-8")  # shown in Slack, stored, logged: always valid text
        for problem in error.problems:
            assert isinstance(problem.path, str) and problem.message
            assert len(problem.path) <= 200 and len(problem.message) <= 400
            if problem.path:
                _check_path_points_into(raw, problem.path)
        return
    assert isinstance(request, ProvisionRequest)
    json.dumps(request_to_json(request), ensure_ascii=False).encode("utf-8")
    assert parse_request(request_to_json(request), LIMITS) == request
