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

__all__ = ["parse_request"]


# Per field (list indexes written as []): what a valid value is, and an example of one.
_HINTS: Final[dict[str, tuple[str, str]]] = {
    "project_name": ("a project name", '"web-shop"'),
    "instances": ("a list of instance objects", '[{"name": "web", "template": "ubuntu-22.04"}]'),
    "instances[]": ("an instance object", '{"name": "web", "template": "ubuntu-22.04"}'),
    "instances[].name": ("a server name", '"web"'),
    "instances[].number_of_instances": ("a whole number of servers", "3"),
    "instances[].provision": ("false (a JSON boolean, without quotes)", "false"),
    "instances[].hypervisor_id": ("a whole-number hypervisor id", "2"),
    "instances[].hypervisor_group": ("a hypervisor group name or id", '"Prague"'),
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


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
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


def _load(raw: bytes | str, limits: RequestLimits) -> object:
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
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = (
            f"the request is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        )
        if text[exc.pos : exc.pos + 2] in ("//", "/*"):
            message += "; JSON does not allow comments, so remove them"
        raise RequestError([Problem("", message)]) from None
    except RecursionError:
        raise RequestError([Problem("", "the request is nested too deeply")]) from None
    except ValueError:
        # Python refuses integers longer than 4300 digits (sys.int_info.str_digits_check_threshold).
        raise RequestError([Problem("", "the request has a number too long to read")]) from None


def parse_request(
    raw: bytes | str | Mapping[str, object], limits: RequestLimits = _DEFAULT_LIMITS
) -> ProvisionRequest:
    """Parse a request body (bytes or text of JSON) or an already-decoded JSON object.

    Raises RequestError listing every problem found, each with its JSON path and what to do.
    """
    data = dict(raw) if isinstance(raw, Mapping) else _load(raw, limits)
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
    problems: list[Problem] = []
    request: ProvisionRequest | None = None
    try:
        request = ProvisionRequest.model_validate(data, context=context)
    except ValidationError as exc:
        problems += [_problem(error) for error in exc.errors(include_url=False)]
    problems += cross_problems(data, limits)
    if problems or request is None:
        raise RequestError(sorted(dict.fromkeys(problems), key=_instance_order))
    return request
