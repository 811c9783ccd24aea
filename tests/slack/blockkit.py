"""Check Block Kit payloads against Slack's documented limits; pure, raises ValueError.

Limits: Slack's Block Kit reference and slack_sdk `models/blocks` (see
shared/reference/chatops-slack.md §B.5). Used by the builders' tests and by end-to-end tests on
every recorded Slack call, so it accepts any JSON-decoded value and never crashes on odd input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

__all__ = ["Surface", "block_violations", "check_blocks", "check_text", "check_view"]

Surface = Literal["message", "modal", "home"]

_MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
_OPTION_LIMITS = {  # element type -> most options allowed
    "static_select": 100,
    "multi_static_select": 100,
    "radio_buttons": 10,
    "checkboxes": 10,
    "overflow": 5,
}
_TEXT_MAX = 40000
_VIEW_BYTES_MAX = 250_000


def check_blocks(blocks: object, *, surface: Surface = "message") -> None:
    """Raise ValueError listing every limit `blocks` breaks on `surface`."""
    _raise(block_violations(blocks, surface=surface))


def check_view(view: object) -> None:
    """Raise ValueError listing every limit a modal or home view breaks, blocks included."""
    problems: list[str] = []
    if not isinstance(view, Mapping):
        _raise([f"view: expected an object, got {type(view).__name__}"])
        return
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append(f"view.type: {kind!r} is not 'modal' or 'home'")
    surface: Surface = "home" if kind == "home" else "modal"
    for key in ("title", "submit", "close"):
        if key in view:
            _text_object(view[key], f"view.{key}", 24, problems, plain_only=True)
    if kind == "modal" and "title" not in view:
        problems.append("view.title: a modal needs a title")
    blocks = view.get("blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
    )
    if kind == "modal" and has_input and "submit" not in view:
        problems.append("view.submit: a modal with input blocks needs a submit button")
    for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        _length(view.get(key), f"view.{key}", limit, problems)
    size = len(json.dumps(view, default=str).encode())
    if size > _VIEW_BYTES_MAX:
        problems.append(f"view: {size} bytes > {_VIEW_BYTES_MAX}")
    problems += block_violations(blocks, surface=surface)
    _raise(problems)


def check_text(text: object) -> None:
    """Raise ValueError when a message's top-level `text` is not a string of ≤ 40000 chars."""
    if not isinstance(text, str):
        _raise([f"text: expected a string, got {type(text).__name__}"])
    elif len(text) > _TEXT_MAX:
        _raise([f"text: {len(text)} chars > {_TEXT_MAX}"])


def block_violations(blocks: object, *, surface: Surface = "message") -> list[str]:
    """Every limit `blocks` breaks on `surface`, one line each; empty when it is fine."""
    problems: list[str] = []
    if not isinstance(blocks, Sequence) or isinstance(blocks, str):
        return [f"blocks: expected a list, got {type(blocks).__name__}"]
    limit = _MAX_BLOCKS[surface]
    if len(blocks) > limit:
        problems.append(f"blocks: {len(blocks)} blocks > {limit} on a {surface}")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        path = f"blocks[{index}]"
        if not isinstance(block, Mapping):
            problems.append(f"{path}: expected an object")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            _length(block_id, f"{path}.block_id", 255, problems)
            if isinstance(block_id, str):
                if block_id in seen:
                    problems.append(f"{path}.block_id: duplicate {block_id!r}")
                seen.add(block_id)
        _block(block, path, problems)
    return problems


def _block(block: Mapping[str, object], path: str, problems: list[str]) -> None:
    kind = block.get("type")
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            problems.append(f"{path}: a section needs text or fields")
        if text is not None:
            _text_object(text, f"{path}.text", 3000, problems)
        if fields is not None:
            items = _items(fields, f"{path}.fields", problems)
            if len(items) > 10:
                problems.append(f"{path}.fields: {len(items)} fields > 10")
            for i, item in enumerate(items):
                _text_object(item, f"{path}.fields[{i}]", 2000, problems)
        if "accessory" in block:
            _element(block["accessory"], f"{path}.accessory", problems)
    elif kind == "header":
        _text_object(block.get("text"), f"{path}.text", 150, problems, plain_only=True)
    elif kind == "context":
        items = _items(block.get("elements"), f"{path}.elements", problems)
        if not 1 <= len(items) <= 10:
            problems.append(f"{path}.elements: {len(items)} elements, must be 1 to 10")
        for i, item in enumerate(items):
            if isinstance(item, Mapping) and item.get("type") in ("plain_text", "mrkdwn"):
                _text_object(item, f"{path}.elements[{i}]", 3000, problems)
    elif kind == "actions":
        items = _items(block.get("elements"), f"{path}.elements", problems)
        if not 1 <= len(items) <= 25:
            problems.append(f"{path}.elements: {len(items)} elements, must be 1 to 25")
        action_ids: set[object] = set()
        for i, item in enumerate(items):
            _element(item, f"{path}.elements[{i}]", problems)
            action_id = item.get("action_id") if isinstance(item, Mapping) else None
            if action_id is not None:
                if action_id in action_ids:
                    problems.append(f"{path}.elements[{i}].action_id: duplicate {action_id!r}")
                action_ids.add(action_id)
    elif kind == "input":
        _text_object(block.get("label"), f"{path}.label", 2000, problems, plain_only=True)
        if "hint" in block:
            _text_object(block["hint"], f"{path}.hint", 2000, problems, plain_only=True)
        _element(block.get("element"), f"{path}.element", problems)
    elif kind in ("divider", "image", "rich_text", "file", "video", "markdown", "table"):
        return
    else:
        problems.append(f"{path}.type: unknown block type {kind!r}")


def _element(element: object, path: str, problems: list[str]) -> None:
    if not isinstance(element, Mapping):
        problems.append(f"{path}: expected an element object")
        return
    kind = element.get("type")
    if not isinstance(kind, str):
        problems.append(f"{path}.type: missing")
        return
    _length(element.get("action_id"), f"{path}.action_id", 255, problems)
    if "placeholder" in element:
        _text_object(element["placeholder"], f"{path}.placeholder", 150, problems, True)
    if "confirm" in element:
        _confirm(element["confirm"], f"{path}.confirm", problems)
    if kind == "button":
        _text_object(element.get("text"), f"{path}.text", 75, problems, plain_only=True)
        _length(element.get("value"), f"{path}.value", 2000, problems)
        _length(element.get("url"), f"{path}.url", 3000, problems)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            problems.append(f"{path}.style: {style!r} is not 'primary' or 'danger'")
    elif kind in _OPTION_LIMITS:
        _options(element, kind, path, problems)
    elif kind == "plain_text_input":
        max_length = element.get("max_length")
        if isinstance(max_length, int) and not 1 <= max_length <= 3000:
            problems.append(f"{path}.max_length: {max_length} is not 1 to 3000")
        _length(element.get("initial_value"), f"{path}.initial_value", 3000, problems)
    elif kind == "file_input":
        max_files = element.get("max_files")
        if max_files is not None and not (isinstance(max_files, int) and 1 <= max_files <= 10):
            problems.append(f"{path}.max_files: {max_files!r} is not 1 to 10")
    elif kind == "number_input":
        for key in ("min_value", "max_value", "initial_value"):
            value = element.get(key)
            if value is not None and not isinstance(value, str):
                problems.append(f"{path}.{key}: must be a string, got {value!r}")


def _options(element: Mapping[str, object], kind: str, path: str, problems: list[str]) -> None:
    options = _items(element.get("options", []), f"{path}.options", problems)
    limit = _OPTION_LIMITS[kind]
    if not options and "option_groups" not in element:
        problems.append(f"{path}.options: no options")
    if len(options) > limit:
        problems.append(f"{path}.options: {len(options)} options > {limit}")
    known: list[tuple[object, object]] = []
    for i, option in enumerate(options):
        known.append(_option(option, f"{path}.options[{i}]", problems))
    initial = element.get("initial_option")
    if initial is not None and _option(initial, f"{path}.initial_option", problems) not in known:
        problems.append(f"{path}.initial_option: not one of the options")
    for option in _items(element.get("initial_options", []), path, problems):
        if _option(option, f"{path}.initial_options[]", problems) not in known:
            problems.append(f"{path}.initial_options: an option is not one of the options")


def _option(option: object, path: str, problems: list[str]) -> tuple[object, object]:
    if not isinstance(option, Mapping):
        problems.append(f"{path}: expected an option object")
        return (None, None)
    text = option.get("text")
    _text_object(text, f"{path}.text", 75, problems)
    _length(option.get("value"), f"{path}.value", 150, problems)
    if "description" in option:
        _text_object(option["description"], f"{path}.description", 75, problems)
    shown = text.get("text") if isinstance(text, Mapping) else None
    return (option.get("value"), shown)


def _confirm(dialog: object, path: str, problems: list[str]) -> None:
    if not isinstance(dialog, Mapping):
        problems.append(f"{path}: expected a confirm object")
        return
    for key, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
        _text_object(dialog.get(key), f"{path}.{key}", limit, problems, plain_only=key != "text")
    style = dialog.get("style")
    if style is not None and style not in ("primary", "danger"):
        problems.append(f"{path}.style: {style!r} is not 'primary' or 'danger'")


def _text_object(
    obj: object, path: str, limit: int, problems: list[str], plain_only: bool = False
) -> None:
    if not isinstance(obj, Mapping):
        problems.append(f"{path}: expected a text object")
        return
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        problems.append(f"{path}.type: {kind!r} is not one of {', '.join(allowed)}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{path}.text: must be a non-empty string")
        return
    if len(text) > limit:
        problems.append(f"{path}.text: {len(text)} chars > {limit}")


def _length(value: object, path: str, limit: int, problems: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.append(f"{path}: must be a string")
    elif len(value) > limit:
        problems.append(f"{path}: {len(value)} chars > {limit}")


def _items(value: object, path: str, problems: list[str]) -> list[object]:
    if isinstance(value, list | tuple):
        return list(value)
    problems.append(f"{path}: expected a list")
    return []


def _raise(problems: list[str]) -> None:
    if problems:
        listing = "\n".join(f"- {p}" for p in problems)
        raise ValueError(f"{len(problems)} Block Kit limit violation(s):\n{listing}")
