"""The user-facing provisioning request: its models and per-field rules; pure, no I/O.

Untrusted JSON becomes a `ProvisionRequest` through `bot.provisioning.reading.parse_request`.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.provisioning.durations import duration_problem

__all__ = [
    "InstanceRequest",
    "Network",
    "PlannedServer",
    "Problem",
    "ProvisionRequest",
    "RequestError",
    "RequestLimits",
    "Resources",
    "Volume",
    "cross_problems",
    "expand_servers",
    "request_to_json",
    "server_name_problem",
]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Bounds a request must stay within; every `(low, high)` range is inclusive."""

    max_instances: int = 20
    memory_mb: tuple[int, int] = (256, 262_144)
    disk_gb: tuple[int, int] = (5, 4096)
    cpu: tuple[int, int] = (1, 64)
    bandwidth_mbps: tuple[int, int] = (1, 100_000)
    volume_gb: tuple[int, int] = (1, 16_384)
    max_body_bytes: int = 1_048_576
    # VirtFusion's create call has only additionalStorage1* and additionalStorage2*.
    max_volumes: int = 2
    max_firewall_rulesets: int = 32


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request: a JSON path (`""` for the whole request) and what to do."""

    path: str
    message: str


class RequestError(Exception):
    """A request was rejected; `problems` lists every problem found, in document order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(
            "\n".join(f"- {p.path}: {p.message}" if p.path else f"- {p.message}" for p in problems)
        )


_DEFAULT_LIMITS: Final = RequestLimits()
_LIMITS_KEY: Final = "vfbot_limits"
_CROSS_CHECKED_KEY: Final = "vfbot_cross_checked"
_RULE_ERROR: Final = "vfbot_rule"
_MAX_LABEL: Final = 63
_MAX_PROJECT_NAME: Final = 64
_DNS_LABEL: Final = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_PROJECT_NAME: Final = re.compile(r"[A-Za-z0-9 _.\-]+")
_DIGITS: Final = re.compile(r"[0-9]+")
_PROVIDER_MESSAGE: Final = (
    'vfbot only provisions on VirtFusion; set provider to "virtfusion" or omit it'
)
_PROVISION_MESSAGE: Final = (
    "VirtFusion's API cannot run post-install provisioning (no user-data/cloud-init field "
    "on create or build); set provision to false or omit it"
)


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError(_RULE_ERROR, "{reason}", {"reason": message})


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _amount(value: int) -> str:
    """A whole number for a message; one too long to print (or read) is described instead."""
    if value >= 10**40:
        return "more than 10^40"
    return str(value) if value > -(10**40) else "less than -10^40"


def _describe(value: object) -> str:
    """Name a JSON value the way a user typed it: `null`, `true`, `1.5`, `the text "x"`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _amount(value)
    if isinstance(value, float):
        return _clip(json.dumps(value))
    if isinstance(value, str):
        # ensure_ascii only for text that is not valid Unicode (a lone surrogate), so the
        # description itself always is.
        shown = json.dumps(value, ensure_ascii=not value.isascii() and not _encodable(value))
        return "the text " + _clip(shown)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _limits(info: ValidationInfo) -> RequestLimits:
    context = info.context
    if isinstance(context, Mapping):
        limits = context.get(_LIMITS_KEY)
        if isinstance(limits, RequestLimits):
            return limits
    return _DEFAULT_LIMITS


def _in_range(pick: Callable[[RequestLimits], tuple[int, int]], unit: str) -> AfterValidator:
    def check(value: int, info: ValidationInfo) -> int:
        low, high = pick(_limits(info))
        if not low <= value <= high:
            raise _fail(f"must be between {low} and {high} {unit}; got {_describe(value)}")
        return value

    return AfterValidator(check)


def _positive(what: str) -> AfterValidator:
    def check(value: int) -> int:
        if value < 1:
            raise _fail(f"must be a positive whole-number {what} (1 or more); got {_amount(value)}")
        return value

    return AfterValidator(check)


def _text(example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not value.strip():
            raise _fail(f"must not be empty; e.g. {example}")
        if value != value.strip():
            raise _fail(f'must not start or end with spaces; use "{value.strip()}"')
        return value

    return AfterValidator(check)


def _suggest_label(name: str) -> str | None:
    candidate = re.sub(r"[^a-z0-9-]+", "-", name.lower())[:_MAX_LABEL].strip("-")
    return candidate if candidate and _DNS_LABEL.fullmatch(candidate) else None


def _check_server_name(value: str) -> str:
    if not value:
        raise _fail('must not be empty; use lowercase letters, digits and hyphens, e.g. "web"')
    if not _DNS_LABEL.fullmatch(value):
        lowered = value.lower()
        if lowered != value and _DNS_LABEL.fullmatch(lowered) and len(lowered) <= _MAX_LABEL:
            raise _fail(f'must be lowercase; use "{lowered}"')
        rule = (
            "may contain only lowercase letters a-z, digits 0-9 and hyphens, "
            "and must not start or end with a hyphen"
        )
        suggestion = _suggest_label(value)
        raise _fail(f'{rule}; e.g. "{suggestion}"' if suggestion else rule)
    if len(value) > _MAX_LABEL:
        raise _fail(f"must be at most {_MAX_LABEL} characters; got {len(value)}")
    return value


def server_name_problem(value: str) -> str | None:
    """What is wrong with `value` as a server name (the DNS-label rule of requests), or None."""
    try:
        _check_server_name(value)
    except PydanticCustomError as error:
        return str(error)
    return None


def _check_project_name(value: str) -> str:
    if not value.strip():
        raise _fail('must not be empty; e.g. "web-shop"')
    if not _PROJECT_NAME.fullmatch(value):
        raise _fail('may contain only letters, digits, spaces, "_", "." and "-"')
    if value != value.strip():
        raise _fail(f'must not start or end with spaces; use "{value.strip()}"')
    if len(value) > _MAX_PROJECT_NAME:
        raise _fail(f"must be at most {_MAX_PROJECT_NAME} characters; got {len(value)}")
    return value


def _parse_template(value: object) -> str:
    """Accept a template name or a numeric template id (int or digits); keep it as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _fail(f"a numeric template id must be 1 or more; got {_amount(value)}")
        return str(value)
    if not isinstance(value, str):
        raise _fail(
            'must be a template name like "ubuntu-22.04" or a numeric template id like 12; '
            f"got {_describe(value)}"
        )
    if not value.strip():
        raise _fail('must not be empty; e.g. "ubuntu-22.04"')
    if value != value.strip():
        raise _fail(f'must not start or end with spaces; use "{value.strip()}"')
    if _DIGITS.fullmatch(value) and int(value) < 1:
        raise _fail(f"a numeric template id must be 1 or more; got {_describe(value)}")
    return value


_MAX_GROUPS: Final = 10


def _parse_one_group(value: object) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _fail(f"a hypervisor group id must be 1 or more; got {_amount(value)}")
        return value
    if not isinstance(value, str):
        raise _fail(
            'must be a hypervisor group name like "Prague", a whole-number group id like 1, '
            f'or a list of them in order of preference like ["Frankfurt", "Prague"]; '
            f"got {_describe(value)}"
        )
    if not value.strip():
        raise _fail('must not be empty; e.g. "Prague"')
    if value != value.strip():
        raise _fail(f'must not start or end with spaces; use "{value.strip()}"')
    return value


def _check_expires_in(value: str) -> str:
    problem = duration_problem(value)
    if problem is not None:
        raise _fail(f"{problem}; got {_describe(value)}")
    return value


def _parse_hypervisor_group(value: object) -> str | int | list[str | int] | None:
    """Accept a group name, a positive group id, or an ordered list of them (failover order);
    `null` means "not given"."""
    if value is None:
        return None
    if not isinstance(value, list):
        return _parse_one_group(value)
    if not value:
        raise _fail('must not be an empty list; give one group or several, e.g. ["Prague"]')
    if len(value) > _MAX_GROUPS:
        raise _fail(f"at most {_MAX_GROUPS} hypervisor groups; got {len(value)}")
    groups: list[str | int] = []
    for position, item in enumerate(value):
        try:
            group = _parse_one_group(item)
        except PydanticCustomError as error:
            raise _fail(f"item {position}: {error}") from None
        key = group.casefold() if isinstance(group, str) else group
        if any((g.casefold() if isinstance(g, str) else g) == key for g in groups):
            raise _fail(f"item {position}: {_describe(item)} is listed twice; list each group once")
        groups.append(group)
    return groups


def _check_provision(value: bool) -> bool:
    if value:
        raise _fail(_PROVISION_MESSAGE)
    return value


def _check_count(value: int) -> int:
    if value < 1:
        raise _fail(f"must be 1 or more; got {_amount(value)}")
    return value


def _check_ruleset_id(value: int) -> int:
    if value < 1 and value != -1:
        raise _fail(
            f"must be a positive firewall ruleset id, or use [-1] for none; got {_amount(value)}"
        )
    return value


def _check_rulesets(value: list[int]) -> list[int]:
    if not value:
        raise _fail(
            "must not be an empty list; omit it to keep the package's rulesets, "
            "or use [-1] for no rulesets"
        )
    if -1 in value and len(value) > 1:
        raise _fail("-1 means no rulesets, so it must be alone: use [-1] or list ruleset ids")
    return value


def _check_mount_point(value: str) -> str:
    if not value.startswith("/") or value == "/":
        raise _fail(f'must be an absolute path below "/", e.g. "/mnt/data"; got {_describe(value)}')
    return value


def _check_instances(value: list["InstanceRequest"]) -> list["InstanceRequest"]:
    if not value:
        raise _fail('must list at least one instance, e.g. [{"name": "web", "template": "..."}]')
    return value


_ServerName = Annotated[str, AfterValidator(_check_server_name)]
_ProjectName = Annotated[str, AfterValidator(_check_project_name)]
_Template = Annotated[str, PlainValidator(_parse_template)]
_HypervisorGroup = Annotated[
    str | int | list[str | int] | None, PlainValidator(_parse_hypervisor_group)
]
_RulesetId = Annotated[int, AfterValidator(_check_ruleset_id)]
_ExpiresIn = Annotated[str, AfterValidator(_check_expires_in)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Resources(_Model):
    """Size of the primary server: memory in MB, disk in GB, cpu in cores; unset means package."""

    memory: Annotated[int, _in_range(lambda lim: lim.memory_mb, "MB")] | None = None
    disk: Annotated[int, _in_range(lambda lim: lim.disk_gb, "GB")] | None = None
    cpu: Annotated[int, _in_range(lambda lim: lim.cpu, "cores")] | None = None


class Network(_Model):
    """Network options; `firewall_rulesets == [-1]` means "no rulesets" (the API's convention)."""

    profile_id: Annotated[int, _positive("network profile id")] | None = None
    bandwidth: Annotated[int, _in_range(lambda lim: lim.bandwidth_mbps, "Mbps")] | None = None
    public_ip: bool | None = None
    firewall_rulesets: Annotated[list[_RulesetId], AfterValidator(_check_rulesets)] | None = None


class Volume(_Model):
    """An additional disk of `size_gb` GB; `mount_point` is an absolute path or unset."""

    name: Annotated[str, _text('"data"')]
    size_gb: Annotated[int, _in_range(lambda lim: lim.volume_gb, "GB")]
    mount_point: Annotated[str, AfterValidator(_check_mount_point)] | None = None


class InstanceRequest(_Model):
    """One entry of `instances`: `number_of_instances` servers built from the same settings.

    `template` is kept as text; a numeric id given as a JSON number becomes its digits, and
    `template_id` reads it back as an int.
    """

    name: _ServerName
    provider: Literal["virtfusion"] = "virtfusion"
    number_of_instances: Annotated[int, AfterValidator(_check_count)] = 1
    provision: Annotated[bool, AfterValidator(_check_provision)] = False
    hypervisor_id: Annotated[int, _positive("hypervisor id")] | None = None
    hypervisor_group: _HypervisorGroup = None
    resources: Resources | None = None
    template: _Template
    ssh_key_name: Annotated[str, _text('"default"')] | None = None
    network: Network | None = None
    volumes: list[Volume] = Field(default_factory=list)
    expires_in: _ExpiresIn | None = None

    @property
    def hypervisor_groups(self) -> list[str | int]:
        """`hypervisor_group` as a list in order of preference (empty when not given)."""
        wanted = self.hypervisor_group
        if wanted is None:
            return []
        return list(wanted) if isinstance(wanted, list) else [wanted]

    @property
    def template_id(self) -> int | None:
        """The template as a numeric id when it is all digits, else None (it is a name)."""
        return int(self.template) if _DIGITS.fullmatch(self.template) else None


class ProvisionRequest(_Model):
    """A whole request: a project name and one or more instance entries.

    Build it with `reading.parse_request`; validating the model directly checks the same rules but
    reports cross-instance problems (totals, name clashes) as one combined error.
    """

    project_name: _ProjectName
    instances: Annotated[list[InstanceRequest], AfterValidator(_check_instances)]
    expires_in: _ExpiresIn | None = None

    @model_validator(mode="after")
    def _check_across_instances(self, info: ValidationInfo) -> "ProvisionRequest":
        context = info.context
        if isinstance(context, Mapping) and context.get(_CROSS_CHECKED_KEY):
            return self
        problems = cross_problems(self.model_dump(), _limits(info))
        if problems:
            raise _fail(str(RequestError(problems)))
        return self


@dataclass(frozen=True, slots=True)
class PlannedServer:
    """One server to create: its 1-based `ordinal` within instance entry `instance_index`."""

    instance_index: int
    ordinal: int
    name: str
    instance: InstanceRequest


def _server_names(name: str, count: int) -> list[str]:
    return [name] if count == 1 else [f"{name}-{n}" for n in range(1, count + 1)]


def expand_servers(request: ProvisionRequest) -> list[PlannedServer]:
    """List every server a request creates, in request order.

    Naming rule: an entry with `number_of_instances` N > 1 yields `name-1` … `name-N`; with
    N = 1 (or omitted) the name is used as is.
    """
    return [
        PlannedServer(instance_index=index, ordinal=ordinal, name=name, instance=instance)
        for index, instance in enumerate(request.instances)
        for ordinal, name in enumerate(
            _server_names(instance.name, instance.number_of_instances), start=1
        )
    ]


def request_to_json(request: ProvisionRequest) -> dict[str, object]:
    """JSON-ready dict of the fields the user set; `parse_request` reads it back unchanged."""
    return request.model_dump(mode="json", exclude_unset=True)


def _valid_count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def _duplicates(items: Sequence[object], key: str, path: str, what: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        value = item.get(key) if isinstance(item, Mapping) else None
        if not isinstance(value, str) or not value:
            continue
        if value in seen:
            problems.append(
                Problem(
                    f"{path}[{index}].{key}",
                    f'{what} "{value}" is also used by {path.rsplit(".", 1)[-1]}[{seen[value]}]; '
                    f"{what}s must be unique within an instance",
                )
            )
        else:
            seen[value] = index
    return problems


def cross_problems(data: Mapping[str, object], limits: RequestLimits) -> list[Problem]:
    """Rules that span fields or instances, read defensively from possibly-invalid input."""
    instances = data.get("instances")
    if not isinstance(instances, list):
        return []
    problems: list[Problem] = []
    total = 0
    named: list[tuple[int, str, int]] = []
    for i, instance in enumerate(instances):
        if not isinstance(instance, Mapping):
            total += 1
            continue
        count = _valid_count(instance.get("number_of_instances", 1))
        total += count or 1
        name = instance.get("name")
        # A count over the limit is reported below; its names are never made.
        too_many = count is not None and count > limits.max_instances
        if (
            count is not None
            and not too_many
            and isinstance(name, str)
            and _DNS_LABEL.fullmatch(name)
        ):
            suffix = f"-{count}" if count > 1 else ""
            if len(name) + len(suffix) > _MAX_LABEL:
                if len(name) <= _MAX_LABEL:
                    problems.append(
                        Problem(
                            f"instances[{i}].name",
                            f'with number_of_instances {count} the last server is "{name}{suffix}"'
                            f" ({len(name) + len(suffix)} characters); a server name may have at "
                            f"most {_MAX_LABEL} characters including the suffix, so shorten the "
                            f"name to {_MAX_LABEL - len(suffix)} characters or fewer",
                        )
                    )
            else:
                named.append((i, name, count))
        network = instance.get("network")
        rulesets = network.get("firewall_rulesets") if isinstance(network, Mapping) else None
        if isinstance(rulesets, list) and len(rulesets) > limits.max_firewall_rulesets:
            problems.append(
                Problem(
                    f"instances[{i}].network.firewall_rulesets",
                    f"at most {limits.max_firewall_rulesets} firewall rulesets per instance; "
                    f"got {len(rulesets)}",
                )
            )
        volumes = instance.get("volumes")
        if isinstance(volumes, list):
            path = f"instances[{i}].volumes"
            if len(volumes) > limits.max_volumes:
                problems.append(
                    Problem(
                        path,
                        f"at most {limits.max_volumes} volumes per instance (VirtFusion's create "
                        f"call supports only two additional disks); got {len(volumes)}",
                    )
                )
            problems += _duplicates(volumes, "name", path, "volume name")
            problems += _duplicates(volumes, "mount_point", path, "mount point")
    if total > limits.max_instances:
        problems.append(
            Problem(
                "instances",
                f"this request creates {_amount(total)} servers; the limit is "
                f"{limits.max_instances} per request; lower number_of_instances or split it "
                "into several requests",
            )
        )
        return problems  # don't expand an oversized request just to compare names
    owner: dict[str, int] = {}
    for i, name, count in named:
        clashes = [n for n in _server_names(name, count) if n in owner]
        if clashes:
            problems.append(
                Problem(
                    f"instances[{i}].name",
                    f'server name "{clashes[0]}" is also produced by instances[{owner[clashes[0]]}]'
                    "; every server name in a request must be unique",
                )
            )
        for server_name in _server_names(name, count):
            owner.setdefault(server_name, i)
    return problems
