"""Reading untrusted request JSON: a `ProvisionRequest`, or every problem at its JSON path.

Field rules live on the models (`request.py`); the rules that span fields or instances, the
mapping of validation errors to paths and sentences, and the loading of bytes live here.
"""

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Final

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.provisioning.request import (  # the rules' shared constants are package-internal
    _CROSS_CHECKED_KEY,
    _DEFAULT_LIMITS,
    _DIGITS,
    _LIMITS_KEY,
    _PROVIDER_MESSAGE,
    _RULE_ERROR,
    InstanceRequest,
    Network,
    Problem,
    ProvisionRequest,
    RequestError,
    RequestLimits,
    Resources,
    Volume,
    _describe,
    cross_problems,
)

__all__ = ["MAX_PROBLEMS", "parse_request"]

MAX_PROBLEMS: Final = 50
"""Most problems one rejection lists; the rest are counted in a last line."""
_MAX_PATH: Final = 200
_MAX_MESSAGE: Final = 400
_MAX_KEY: Final = 40  # characters of an unusual field name quoted in a path


# Per field (list indexes written as []): what a valid value is, and an example of one.
_HINTS: Final[dict[str, tuple[str, str]]] = {
    "project_name": ("a project name", '"web-shop"'),
    "instances": ("a list of instance objects", '[{"name": "web", "template": "ubuntu-22.04"}]'),
    "instances[]": ("an instance object", '{"name": "web", "template": "ubuntu-22.04"}'),
    "instances[].name": ("a server name", '"web"'),
    "instances[].number_of_instances": ("a whole number of servers", "3"),
    "instances[].provision": ("false (a JSON boolean, without quotes)", "false"),
    "instances[].hypervisor_id": ("a whole-number hypervisor id", "2"),
    "instances[].hypervisor_group": (
        "a hypervisor group name or id, or a list of them",
        '["Frankfurt", "Prague"]',
    ),
    "instances[].template": ("a template name or numeric template id", '"ubuntu-22.04"'),
    "instances[].ssh_key_name": ("the name of an SSH key", '"default"'),
    "instances[].resources": (
        "an object with memory, disk and cpu",
        '{"memory": 2048, "disk": 25, "cpu": 2}',
    ),
    "instances[].resources.memory": ("a whole number of MB", "2048"),
    "instances[].resources.disk": ("a whole number of GB", "25"),
    "instances[].resources.cpu": ("a whole number of CPU cores", "2"),
    "instances[].network": (
        "an object with profile_id, bandwidth, public_ip and firewall_rulesets",
        '{"profile_id": 2, "bandwidth": 1000}',
    ),
    "instances[].network.profile_id": ("a whole-number network profile id", "2"),
    "instances[].network.bandwidth": ("a whole number of Mbps", "1000"),
    "instances[].network.public_ip": ("true or false (a JSON boolean, without quotes)", "true"),
    "instances[].network.firewall_rulesets": ("a list of firewall ruleset ids", "[2, 3]"),
    "instances[].network.firewall_rulesets[]": ("a whole-number firewall ruleset id", "2"),
    "instances[].volumes": ("a list of volume objects", '[{"name": "data", "size_gb": 20}]'),
    "instances[].volumes[]": (
        "a volume object",
        '{"name": "data", "size_gb": 20, "mount_point": "/mnt/data"}',
    ),
    "instances[].volumes[].name": ("a volume name", '"data"'),
    "instances[].volumes[].size_gb": ("a whole number of GB", "20"),
    "instances[].volumes[].mount_point": ("an absolute path", '"/mnt/data"'),
}

# Which model's fields are allowed inside the object at each (index-free) path.
_MODELS_AT: Final[dict[str, type[BaseModel]]] = {
    "": ProvisionRequest,
    "instances[]": InstanceRequest,
    "instances[].resources": Resources,
    "instances[].network": Network,
    "instances[].volumes[]": Volume,
}

# Fields people put on the instance that belong inside one of its objects.
_NESTED_AT_INSTANCE: Final[dict[str, str]] = {
    **{field: "resources" for field in Resources.model_fields},
    **{field: "network" for field in Network.model_fields},
}


def _has_surrogate(text: str) -> bool:
    """Whether `text` holds a lone UTF-16 surrogate (JSON's `"\\udfff"`), which no UTF-8 text,
    database or Slack message can carry."""
    return not text.isascii() and _SURROGATE.search(text) is not None


_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SIMPLE_KEY: Final = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _key(part: str) -> str:
    """A field name that is not a plain word, quoted (and cut) for a path."""
    shown = part if len(part) <= _MAX_KEY else part[: _MAX_KEY - 1] + "…"
    return json.dumps(shown, ensure_ascii=_has_surrogate(shown))


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{_key(part)}]"
    return out


def _index_free(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += "[]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _unknown_field(loc: Sequence[int | str]) -> str:
    key = str(loc[-1])
    parent = _index_free(loc[:-1])
    model = _MODELS_AT.get(parent)
    allowed = list(model.model_fields) if model else []
    if parent == "instances[]" and key in _NESTED_AT_INSTANCE:
        return f'unknown field here; "{key}" goes inside "{_NESTED_AT_INSTANCE[key]}"'
    squashed = {field.replace("_", ""): field for field in allowed}
    exact = squashed.get(key.lower().replace("_", "").replace("-", ""))
    close = [exact] if exact else difflib.get_close_matches(key.lower(), allowed, n=1)
    if close:
        return f'unknown field; did you mean "{close[0]}"?'
    return "unknown field; allowed fields here: " + ", ".join(allowed)


def _wrong_type(error: ErrorDetails, hint: tuple[str, str] | None) -> str:
    if hint is None:
        return error["msg"]
    what, example = hint
    value = error["input"]
    message = f"must be {what}, e.g. {example}; got {_describe(value)}"
    if isinstance(value, str) and example[:1].isdigit() and _DIGITS.fullmatch(value.strip()):
        message += "; write the number without quotes"
    return message


def _problem(error: ErrorDetails) -> Problem:
    loc = error["loc"]
    path = _path(loc)
    pattern = _index_free(loc)
    kind = error["type"]
    if kind == _RULE_ERROR:
        return Problem(path, error["msg"])
    if kind == "extra_forbidden":
        return Problem(path, _unknown_field(loc))
    if pattern == "instances[].provider":
        return Problem(path, f"{_PROVIDER_MESSAGE}; got {_describe(error['input'])}")
    hint = _HINTS.get(pattern)
    if kind == "missing":
        what, example = hint if hint else ("a value", '""')
        return Problem(path, f"required field is missing; add {what}, e.g. {example}")
    return Problem(path, _wrong_type(error, hint))


def _instance_order(problem: Problem) -> int:
    """Sort key: request-wide problems first, then each instance's problems together."""
    match = re.match(r"instances\[(\d+)\]", problem.path)
    return int(match[1]) + 1 if match else 0


class _Object(dict[str, object]):
    """A JSON object as read, remembering the keys it was given more than once (JSON allows
    them; the last one would silently win)."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        super().__init__(pairs)
        self.repeated: list[str] = []
        if len(self) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in self.repeated:
                    self.repeated.append(key)
                seen.add(key)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _text_problems(data: object) -> tuple[list[Problem], int]:
    """Keys given twice and text that is not valid Unicode, anywhere, each at its path, in
    document order: the first `2 * MAX_PROBLEMS`, and how many more there are.

    Walks the value without recursion, so no nesting depth can break it.
    """
    found: list[tuple[tuple[int | str, ...], str]] = []
    more = 0

    def note(loc: tuple[int | str, ...], message: str) -> None:
        nonlocal more
        if len(found) < 2 * MAX_PROBLEMS:
            found.append((loc, message))
        else:
            more += 1

    stack: list[tuple[object, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                note(loc, _SURROGATE_MESSAGE)
        elif isinstance(value, dict):
            for key in getattr(value, "repeated", ()):
                note((*loc, key), "is given more than once in this object; keep one")
            children: list[tuple[object, tuple[int | str, ...]]] = []
            for key, item in value.items():
                if isinstance(key, str) and _has_surrogate(key):
                    note((*loc, key), _SURROGATE_KEY_MESSAGE)
                if isinstance(item, _NESTED):
                    children.append((item, (*loc, key)))
            stack.extend(reversed(children))  # popped in document order
        elif isinstance(value, list):
            # Numbers, booleans and null need no look: only text and containers go on the stack.
            stack.extend(
                (value[index], (*loc, index))
                for index in range(len(value) - 1, -1, -1)
                if isinstance(value[index], _NESTED)
            )
    return [Problem(_path(loc), message) for loc, message in found], more


_NESTED: Final = (str, dict, list)


_SURROGATE_MESSAGE: Final = (
    "contains a character that is not valid Unicode (a lone surrogate such as \\udfff); "
    "remove it or type the text again"
)
_SURROGATE_KEY_MESSAGE: Final = (
    "this field name contains a character that is not valid Unicode (a lone surrogate); "
    "type the name again"
)


def _bounded(problems: list[Problem], unread: int = 0) -> list[Problem]:
    """At most `MAX_PROBLEMS` problems, each path and message cut to a readable length;
    `unread` more were found but not worded."""
    kept = [
        Problem(
            # A deep path keeps its start and its end: where it is, and which field.
            p.path if len(p.path) <= _MAX_PATH else p.path[:99] + "…" + p.path[-100:],
            p.message if len(p.message) <= _MAX_MESSAGE else p.message[: _MAX_MESSAGE - 1] + "…",
        )
        for p in problems[:MAX_PROBLEMS]
    ]
    more = len(problems) - len(kept) + unread
    if more > 0:
        kept.append(Problem("", f"and {more} more problems; fix these and send the request again"))
    return kept


def _trim(obj: dict[str, object], model: type[BaseModel]) -> tuple[dict[str, object], int]:
    """`obj` with at most `MAX_PROBLEMS` unknown fields, and how many more were dropped."""
    unknown = [key for key in obj if key not in model.model_fields]
    if len(unknown) <= MAX_PROBLEMS:
        return obj, 0
    dropped = set(unknown[MAX_PROBLEMS:])
    return {k: v for k, v in obj.items() if k not in dropped}, len(dropped)


def _for_validation(
    data: dict[str, object], limits: RequestLimits
) -> tuple[dict[str, object], int]:
    """`data` cut to what can be checked cheaply, and how many problems the cut hides.

    Lists are cut to their limits (`cross_problems` reports the real counts) and objects to
    `MAX_PROBLEMS` unknown fields, so a 1 MiB request never turns into a validation that holds
    the interpreter for seconds: pydantic's validation and its error list are one native call.
    """
    data, hidden = _trim(data, ProvisionRequest)
    instances = data.get("instances")
    if not isinstance(instances, list):
        return data, hidden
    kept: list[object] = []
    for instance in instances[: limits.max_instances]:
        if isinstance(instance, dict):
            instance, dropped = _trim(instance, InstanceRequest)
            hidden += dropped
            instance = dict(instance)
            for name, model in (("resources", Resources), ("network", Network)):
                part = instance.get(name)
                if isinstance(part, dict):
                    instance[name], dropped = _trim(part, model)
                    hidden += dropped
            network = instance.get("network")
            rulesets = network.get("firewall_rulesets") if isinstance(network, dict) else None
            if isinstance(network, dict) and isinstance(rulesets, list):
                instance["network"] = {
                    **network,
                    "firewall_rulesets": rulesets[: limits.max_firewall_rulesets],
                }
            volumes = instance.get("volumes")
            if isinstance(volumes, list):
                cut = []
                for volume in volumes[: limits.max_volumes]:
                    if isinstance(volume, dict):
                        volume, dropped = _trim(volume, Volume)
                        hidden += dropped
                    cut.append(volume)
                instance["volumes"] = cut
        kept.append(instance)
    return {**data, "instances": kept}, hidden


def _load(raw: bytes | str, limits: RequestLimits) -> tuple[object, bool]:
    """The decoded JSON, and whether it may hold a repeated key or a lone surrogate (else the
    walk that looks for them is skipped)."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > limits.max_body_bytes:
        raise RequestError(
            [
                Problem(
                    "",
                    f"the request is {size:,} bytes; the limit is {limits.max_body_bytes:,} bytes",
                )
            ]
        )
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(
                [
                    Problem(
                        "",
                        f"the request is not UTF-8 text (bad byte at offset {exc.start}); "
                        "save it as UTF-8 and send it again",
                    )
                ]
            ) from None
    text = raw.removeprefix("\ufeff")
    repeated = False

    def read_object(pairs: list[tuple[str, object]]) -> _Object:
        nonlocal repeated
        value = _Object(pairs)
        repeated = repeated or bool(value.repeated)
        return value

    try:
        data = json.loads(text, object_pairs_hook=read_object, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        message = (
            f"the request is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        )
        if text[exc.pos : exc.pos + 2] in ("//", "/*"):
            message += "; JSON does not allow comments, so remove them"
        raise RequestError([Problem("", message)]) from None
    except RecursionError:
        raise RequestError([Problem("", "the request is nested too deeply")]) from None
    except ValueError as exc:
        # NaN and Infinity (which json.loads would accept), or an integer longer than Python
        # reads (4300 digits, sys.int_info.str_digits_check_threshold).
        reason = str(exc) if "JSON number" in str(exc) else "it has a number too long to read"
        raise RequestError([Problem("", f"the request is not valid JSON: {reason}")]) from None
    maybe_surrogate = _SURROGATE_ESCAPE.search(text) is not None or _has_surrogate(text)
    return data, repeated or maybe_surrogate


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def parse_request(
    raw: bytes | str | Mapping[str, object], limits: RequestLimits = _DEFAULT_LIMITS
) -> ProvisionRequest:
    """Parse a request body (bytes or text of JSON) or an already-decoded JSON object.

    Raises RequestError listing every problem found, each with its JSON path and what to do.
    """
    data, suspect = (dict(raw), True) if isinstance(raw, Mapping) else _load(raw, limits)
    problems, unread = _text_problems(data) if suspect else ([], 0)
    if any(p.message in (_SURROGATE_MESSAGE, _SURROGATE_KEY_MESSAGE) for p in problems):
        # Text that cannot be encoded must not reach the messages that quote what was typed.
        raise RequestError(_bounded(sorted(problems, key=_instance_order), unread))
    if not isinstance(data, dict):
        raise RequestError(
            [
                Problem(
                    "",
                    'the request must be a JSON object like {"project_name": "...", '
                    f'"instances": [...]}}; got {_describe(data)}',
                )
            ]
        )
    context = {_LIMITS_KEY: limits, _CROSS_CHECKED_KEY: True}
    request: ProvisionRequest | None = None
    checked, hidden = _for_validation(data, limits)
    unread += hidden
    try:
        request = ProvisionRequest.model_validate(checked, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # Wording a problem costs more than finding it: word only what can be shown.
        problems += [_problem(error) for error in errors[: 2 * MAX_PROBLEMS]]
        unread += max(0, len(errors) - 2 * MAX_PROBLEMS)
    problems += cross_problems(data, limits)
    if problems or request is None:
        ordered = sorted(dict.fromkeys(problems), key=_instance_order)
        raise RequestError(_bounded(ordered, unread))
    return request
