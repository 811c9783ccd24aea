"""Read untrusted Slack input: modal state, attached files, command text; pure, no I/O."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from bot.provisioning.reading import parse_request
from bot.provisioning.request import (
    Problem,
    ProvisionRequest,
    RequestError,
    RequestLimits,
)
from bot.slack.ids import (
    B_BANDWIDTH,
    B_COUNT,
    B_CPU,
    B_DISK,
    B_FILE,
    B_GROUP,
    B_LIFETIME,
    B_MEMORY,
    B_NAME,
    B_PROFILE,
    B_PROJECT,
    B_PUBLIC_IP,
    B_SSH_KEY,
    B_TEMPLATE,
    B_VOLUME_MOUNT,
    B_VOLUME_SIZE,
    CREATE_INPUT_BLOCKS,
    OPTION_DEFAULT,
)
from bot.slack.limits import METADATA_MAX

__all__ = [
    "MAX_BLOCK_ERROR",
    "MAX_FILE_ERROR",
    "MAX_METADATA",
    "VOLUME_NAME",
    "FileRef",
    "StateValues",
    "build_metadata",
    "check_file_meta",
    "form_to_request",
    "inline_request",
    "parse_create_submission",
    "parse_file_body",
    "parse_metadata",
    "problems_to_blocks",
    "selected_file",
    "split_command",
    "suggest",
]

StateValues = Mapping[str, Mapping[str, Mapping[str, object]]]
"""A submitted view's `view["state"]["values"]`: block_id -> action_id -> element state."""

MAX_BLOCK_ERROR: Final = 300
"""Longest error text vfbot puts under one input block."""
MAX_FILE_ERROR: Final = 2000
"""Longest problem list vfbot puts under the file input."""
MAX_METADATA: Final = METADATA_MAX
"""Slack's limit on a view's `private_metadata`, in characters."""
VOLUME_NAME: Final = "data"
"""The name the form gives its one extra volume."""


_INT: Final = re.compile(r"\s*[+-]?[0-9]+\s*")
_TRUE: Final = frozenset({"yes", "true", "on", "1"})
_FALSE: Final = frozenset({"no", "false", "off", "0"})
_JSON_FILETYPES: Final = frozenset({"json", "javascript", "text"})
_JSON_MIMETYPES: Final = frozenset({"application/json", "text/json"})
_LOGIN_PAGE: Final = (
    "Slack returned a login page instead of the file: the app needs the files:read scope; "
    "reinstall it from manifest.yml"
)
_NO_QUOTES_HINT: Final = "; write the number without quotes"
_MISSING: Final = "required field is missing; "

# Where each field of instance entry 0 sits in the create modal (list indexes written as []).
_INSTANCE_FIELD_BLOCKS: Final[dict[str, str]] = {
    "": B_NAME,
    "name": B_NAME,
    "number_of_instances": B_COUNT,
    "hypervisor_group": B_GROUP,
    "hypervisor_id": B_GROUP,
    "template": B_TEMPLATE,
    "resources": B_MEMORY,
    "resources.memory": B_MEMORY,
    "resources.disk": B_DISK,
    "resources.cpu": B_CPU,
    "ssh_key_name": B_SSH_KEY,
    "network": B_PROFILE,
    "network.profile_id": B_PROFILE,
    "network.public_ip": B_PUBLIC_IP,
    "network.bandwidth": B_BANDWIDTH,
    "network.firewall_rulesets": B_NAME,  # not in the form
    "volumes": B_VOLUME_SIZE,
    "volumes[]": B_VOLUME_SIZE,
    "volumes[].size_gb": B_VOLUME_SIZE,
    "volumes[].mount_point": B_VOLUME_MOUNT,
    "expires_in": B_LIFETIME,
}
_FIELDS_NOT_IN_FORM: Final = frozenset({"", "network.firewall_rulesets"})
_REQUEST_FIELD_BLOCKS: Final[dict[str, str]] = {
    "project_name": B_PROJECT,
    "expires_in": B_LIFETIME,
    "instances": B_COUNT,  # request-wide totals: "this request creates 25 servers"
}
_INSTANCE_PATH: Final = re.compile(r"instances\[(\d+)\](?:\.(.+))?")
_SLACK_ESCAPES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_SMART_QUOTES: Final = str.maketrans(
    # Curly quotes become straight ones; a no-break space (from rich text) a plain space.
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u00a0": " ",
    }
)
_FENCE: Final = re.compile(r"```[ \t]*(?:json\b)?(.*?)```", re.IGNORECASE | re.DOTALL)


# -- the create modal --------------------------------------------------------------------------


def _element(values: StateValues, block_id: str) -> Mapping[str, object] | None:
    """The state of the input element in `block_id`; its action_id is normally the block id."""
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return None
    element = block.get(block_id)
    if element is None and len(block) == 1:
        element = next(iter(block.values()))
    return element if isinstance(element, Mapping) else None


def _option_value(option: object) -> str | None:
    if isinstance(option, Mapping):
        value = option.get("value")
        if isinstance(value, str):
            return value
    return None


def _text(values: StateValues, block_id: str) -> str | None:
    """What the user typed or picked, trimmed; None when left empty or on the default option."""
    element = _element(values, block_id)
    if element is None:
        return None
    if "selected_option" in element:
        picked = _option_value(element.get("selected_option"))
        if picked is None or picked == OPTION_DEFAULT:
            return None
        raw: object = picked
    else:
        raw = element.get("value")
    if not isinstance(raw, str) or not raw.strip():
        return None
    return raw.strip()


def _number(text: str) -> int | str:
    """A whole number, or the raw text so `parse_request` names what is wrong with it."""
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts (sys.int_info)
            return text
    return text


def _number_field(values: StateValues, block_id: str) -> int | str | None:
    text = _text(values, block_id)
    return None if text is None else _number(text)


def _public_ip(values: StateValues) -> bool | str | None:
    """Radio buttons give yes/no; a checkbox is on when ticked and off when not."""
    element = _element(values, B_PUBLIC_IP)
    if element is None:
        return None
    if "selected_options" in element:
        options = element.get("selected_options")
        picked = [_option_value(o) for o in options] if isinstance(options, list) else []
        return any(value is not None and value.lower() not in _FALSE for value in picked)
    text = _text(values, B_PUBLIC_IP)
    if text is None:
        return None
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    return text


def form_to_request(values: StateValues) -> dict[str, object]:
    """The request JSON for a submitted create modal: one instance entry, only filled fields.

    `values` is `view["state"]["values"]`. Blocks may be missing (the modal may show only
    the file input); typed numbers that are not whole numbers stay text for `parse_request`.
    """
    request: dict[str, object] = {}
    instance: dict[str, object] = {}
    project = _text(values, B_PROJECT)
    if project is not None:
        request["project_name"] = project
    name = _text(values, B_NAME)
    if name is not None:
        instance["name"] = name
    count = _number_field(values, B_COUNT)
    if count is not None:
        instance["number_of_instances"] = count
    group = _text(values, B_GROUP)
    if group is not None:
        # The select's option value is the group id; a name stays text (the model takes both).
        instance["hypervisor_group"] = _number(group)
    template = _text(values, B_TEMPLATE)
    if template is not None:
        instance["template"] = template  # the model accepts a numeric id as digits
    resources: dict[str, object] = {}
    for field, block_id in (("memory", B_MEMORY), ("disk", B_DISK), ("cpu", B_CPU)):
        value = _number_field(values, block_id)
        if value is not None:
            resources[field] = value
    if resources:
        instance["resources"] = resources
    key = _text(values, B_SSH_KEY)
    if key is not None:
        instance["ssh_key_name"] = key
    network: dict[str, object] = {}
    profile = _number_field(values, B_PROFILE)
    if profile is not None:
        network["profile_id"] = profile
    public_ip = _public_ip(values)
    if public_ip is not None:
        network["public_ip"] = public_ip
    bandwidth = _number_field(values, B_BANDWIDTH)
    if bandwidth is not None:
        network["bandwidth"] = bandwidth
    if network:
        instance["network"] = network
    size = _number_field(values, B_VOLUME_SIZE)
    mount = _text(values, B_VOLUME_MOUNT)
    if size is not None or mount is not None:
        volume: dict[str, object] = {"name": VOLUME_NAME}
        if size is not None:
            volume["size_gb"] = size
        if mount is not None:
            volume["mount_point"] = mount
        instance["volumes"] = [volume]
    lifetime = _text(values, B_LIFETIME)
    if lifetime is not None:
        request["expires_in"] = lifetime
    request["instances"] = [instance]
    return request


def _block_of(path: str) -> tuple[str, bool]:
    """The modal block for a JSON path, and whether that block alone says which field it is."""
    if path in _REQUEST_FIELD_BLOCKS:
        return _REQUEST_FIELD_BLOCKS[path], True
    match = _INSTANCE_PATH.fullmatch(path)
    if match is None:
        return B_NAME, path == ""
    field = re.sub(r"\[\d+\]", "[]", match[2] or "")
    exact = field in _INSTANCE_FIELD_BLOCKS
    while field not in _INSTANCE_FIELD_BLOCKS:
        # Something inside a known object (`resources.foo`) belongs with that object.
        field = field[:-2] if field.endswith("[]") else field.rpartition(".")[0]
    # The form holds one instance: another entry's problem keeps its path to say which one.
    implied = exact and match[1] == "0" and field not in _FIELDS_NOT_IN_FORM
    return _INSTANCE_FIELD_BLOCKS[field], implied


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "This value is not valid."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _form_message(problem: Problem, *, with_path: bool) -> str:
    message = problem.message.removesuffix(_NO_QUOTES_HINT)
    if message.startswith(_MISSING):
        message = "required: " + message.removeprefix(_MISSING).removeprefix("add ")
    if with_path and problem.path:
        return f"{problem.path}: {_sentence(message)}"
    return _sentence(message)


def problems_to_blocks(
    problems: Sequence[Problem], *, present: Collection[str] | None = None
) -> dict[str, str]:
    """Map problems to `{block_id: text}` for `ack(response_action="errors")`.

    Each text drops the JSON path the block already implies and is at most `MAX_BLOCK_ERROR`
    characters; several problems on one block are joined. Slack refuses errors for blocks the
    view lacks, so with `present` (the view's block ids) problems for absent blocks go to the
    file input, else the name block, else the first present block, keeping their paths.
    """
    fallback: str | None = None
    if present is not None:
        fallback = next(
            (b for b in (B_FILE, B_NAME, *CREATE_INPUT_BLOCKS, *present) if b in present), None
        )
    texts: dict[str, list[str]] = {}
    for problem in problems:
        block_id, implied = _block_of(problem.path)
        if present is not None and fallback is not None and block_id not in present:
            block_id, implied = fallback, False
        text = _form_message(problem, with_path=not implied)
        if text not in texts.setdefault(block_id, []):
            texts[block_id].append(text)
    return {block_id: _clip(" ".join(parts), MAX_BLOCK_ERROR) for block_id, parts in texts.items()}


def parse_create_submission(
    values: StateValues, limits: RequestLimits
) -> ProvisionRequest | dict[str, str]:
    """Validate a submitted create modal: the request, or `{block_id: error text}`."""
    try:
        return parse_request(form_to_request(values), limits)
    except RequestError as error:
        return problems_to_blocks(error.problems)


# -- an attached request file ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file picked in the modal's file input; `size` is in bytes (0 when Slack omits it)."""

    id: str
    name: str
    size: int
    mimetype: str
    filetype: str
    url_private_download: str


def _str(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def selected_file(values: StateValues) -> FileRef | None:
    """The first file in the modal's file input, or None when no usable file was attached."""
    element = _element(values, B_FILE)
    files = element.get("files") if element is not None else None
    if not isinstance(files, list) or not files or not isinstance(files[0], Mapping):
        return None
    data: Mapping[str, object] = files[0]
    size = data.get("size")
    ref = FileRef(
        id=_str(data, "id"),
        name=_str(data, "name") or _str(data, "title") or "the file",
        size=size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 0,
        mimetype=_str(data, "mimetype"),
        filetype=_str(data, "filetype"),
        url_private_download=_str(data, "url_private_download") or _str(data, "url_private"),
    )
    return ref if ref.id and ref.url_private_download else None


def _size(n_bytes: int) -> str:
    """Bytes for people: `512 bytes`, `1.5 KB`, `10 MB` (binary units, as Slack shows them)."""
    if n_bytes < 1024:
        return f"{n_bytes:,} bytes"
    unit, scale = ("MB", 1024 * 1024) if n_bytes >= 1024 * 1024 else ("KB", 1024)
    return f"{n_bytes / scale:,.1f}".removesuffix(".0") + f" {unit}"


def check_file_meta(ref: FileRef, max_bytes: int) -> str | None:
    """Why the attached file cannot be a request (wrong type, too big), or None if it may be."""
    name = _clip(ref.name, 60)
    is_json = (
        ref.name.lower().endswith(".json")
        or ref.filetype.lower() in _JSON_FILETYPES
        or ref.mimetype.lower() in _JSON_MIMETYPES
    )
    if not is_json:
        kind = f" (Slack says it is {_clip(ref.filetype, 20)})" if ref.filetype else ""
        return f'"{name}" is not a JSON file{kind}; attach the request as a .json file.'
    if ref.size > max_bytes:
        return (
            f'"{name}" is {_size(ref.size)}; the limit is {_size(max_bytes)}. '
            "Split the request or remove unused fields."
        )
    return None


def _is_html(body: bytes, content_type: str) -> bool:
    if content_type.split(";", 1)[0].strip().lower() == "text/html":
        return True
    head = body[:64].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _more(count: int) -> str:
    return f"- … and {count} more problem{'s' if count != 1 else ''}"


def _problem_list(problems: Sequence[Problem], limit: int) -> str:
    """One line per problem; when they do not fit in `limit`, the first ones and a count."""
    lines = [f"- {p.path}: {p.message}" if p.path else f"- {p.message}" for p in problems]
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        added = len(line) + (1 if kept else 0)
        after = len(lines) - index - 1
        # Keep room for the "… and N more" line the lines after this one would need.
        if used + added + (len(_more(after)) + 1 if after else 0) > limit:
            break
        kept.append(line)
        used += added
    left = len(lines) - len(kept)
    if not left:
        return "\n".join(kept)
    if kept:
        return "\n".join([*kept, _more(left)])
    if left == 1:
        return _clip(lines[0], limit)
    tail = _more(left - 1)
    return _clip(lines[0], limit - len(tail) - 1) + "\n" + tail


def parse_file_body(
    body: bytes, content_type: str, limits: RequestLimits
) -> ProvisionRequest | str:
    """Parse a downloaded request file: the request, or text for the file input's error.

    The text names the problems one per line (`- instances[0].resources.memory: …`) and is
    at most `MAX_FILE_ERROR` characters.
    """
    if _is_html(body, content_type):
        return _LOGIN_PAGE
    if len(body) > limits.max_body_bytes:
        return (
            f"The file is {_size(len(body))}; the limit is {_size(limits.max_body_bytes)}. "
            "Split the request or remove unused fields."
        )
    if not body.strip():
        return "The file is empty; attach the request JSON."
    try:
        return parse_request(body, limits)
    except RequestError as error:
        return _problem_list(error.problems, MAX_FILE_ERROR)


# -- command text ------------------------------------------------------------------------------

_COMMAND: Final = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?=[\s{`]|$)(.*)", re.DOTALL)


def split_command(text: str) -> tuple[str, str]:
    """Split `/vf` text into (subcommand lower-cased, the rest trimmed); empty means help."""
    match = _COMMAND.match(text)
    if match is not None:
        return match[1].lower(), match[2].strip()
    parts = text.split(maxsplit=1)
    if not parts:
        return "help", ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def suggest(word: str, choices: Sequence[str]) -> str | None:
    """The subcommand among `choices` the user probably meant by an unknown `word`, or None."""
    word = word.strip().lower()
    if not word:
        return None
    prefixed = [name for name in choices if name.startswith(word)]
    if len(word) >= 2 and len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def inline_request(rest: str) -> str | None:
    """The JSON of `/vf create {…}` with Slack's formatting undone, or None when there is none.

    Slack escapes `&`, `<` and `>` in command text, users wrap JSON in backticks or fences,
    and clients may turn straight quotes into “smart” ones.
    """
    text = rest.strip()
    for escaped, plain in _SLACK_ESCAPES:
        text = text.replace(escaped, plain)
    fenced = _FENCE.fullmatch(text)
    text = fenced[1] if fenced is not None else text.strip("`")
    text = text.translate(_SMART_QUOTES).strip()
    return text or None


# -- private_metadata --------------------------------------------------------------------------


def parse_metadata(text: str) -> dict[str, str]:
    """Read a view's `private_metadata` written by `build_metadata`; empty text is `{}`.

    Raises ValueError when it is not a JSON object of strings.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"private_metadata is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError("private_metadata must be a JSON object of strings")
    return data


def build_metadata(**values: str) -> str:
    """Compact JSON for a view's `private_metadata`.

    Raises ValueError when it exceeds Slack's `MAX_METADATA` characters.
    """
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    if len(text) > MAX_METADATA:
        raise ValueError(
            f"private_metadata would be {len(text)} characters; Slack allows {MAX_METADATA}"
        )
    return text
