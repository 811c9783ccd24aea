"""The create and reject modals; pure, fed with choices the listener read from the panel.

Every input's block_id equals its action_id (`ids.CREATE_INPUT_BLOCKS`), so `slack/parse.py`
reads `view.state.values[b][b]`. Select lists that the panel makes too long are cut to Slack's
100 options with a note in the hint; a choice missing from the form is not lost, because a
request JSON can name anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.provisioning.durations import format_duration, parse_lifetime
from bot.provisioning.lifetimes import LifetimePolicy
from bot.slack import ids
from bot.slack.blocks._kit import (
    Json,
    context,
    plain_text,
    section,
)
from bot.slack.limits import (
    HINT_MAX,
    OPTION_TEXT_MAX,
    OPTION_VALUE_MAX,
    OPTIONS_MAX,
    PLACEHOLDER_MAX,
)
from bot.slack.mrkdwn import escape, truncate

__all__ = ["ModalChoices", "create_modal", "reject_modal"]

_TITLE = "New servers"
_SUBMIT = "Plan request"
_CLOSE = "Cancel"
_FILE_HINT = (
    "If you attach a request JSON, it is the whole request and the fields above are ignored."
)
_ERROR_CHARS = 1500


@dataclass(frozen=True)
class ModalChoices:
    """What the create form offers, read from the panel by the listener.

    `groups` and `templates` are (id, name) pairs; the package sizes fill the placeholders.
    """

    package_id: int
    package_name: str
    package_memory_mb: int | None
    package_disk_gb: int | None
    package_cpu: int | None
    groups: Sequence[tuple[int, str]] = ()
    default_group_id: int | None = None
    templates: Sequence[tuple[int, str]] = ()
    ssh_keys: Sequence[str] = ()
    max_instances: int = 10
    lifetimes: LifetimePolicy = field(default_factory=LifetimePolicy)


def create_modal(
    choices: ModalChoices | None, *, private_metadata: str, error: str | None = None
) -> Json:
    """The `/vf create` modal: loading (no choices yet), error (file input only), or the form."""
    if error is not None:
        blocks = [
            section(
                ":warning: vfbot could not load the choices for this form: "
                f"{truncate(escape(error), _ERROR_CHARS)}\n"
                "You can still attach a request JSON, or close this and try again later."
            ),
            _file_input(),
        ]
        return _view(blocks, private_metadata=private_metadata, submit=True)
    if choices is None:
        blocks = [context(["Loading choices from the panel…"], block_id=ids.B_LOADING)]
        return _view(blocks, private_metadata=private_metadata, submit=False)
    return _view(_form(choices), private_metadata=private_metadata, submit=True)


def reject_modal(human_id: str, *, private_metadata: str) -> Json:
    """Asks for an optional reason before rejecting request `human_id`."""
    return {
        "type": "modal",
        "callback_id": ids.REJECT_VIEW,
        "title": plain_text(f"Reject {human_id}", 24),
        "submit": plain_text("Reject"),
        "close": plain_text(_CLOSE),
        "private_metadata": private_metadata,
        "blocks": [
            _input(
                ids.B_REASON,
                "Reason (shown to the requester)",
                {
                    "type": "plain_text_input",
                    "multiline": True,
                    "max_length": 500,
                    "placeholder": plain_text("e.g. use the smaller package for staging"),
                },
                optional=True,
            )
        ],
    }


def _view(blocks: list[Json], *, private_metadata: str, submit: bool) -> Json:
    view: Json = {
        "type": "modal",
        "callback_id": ids.CREATE_VIEW,
        "title": plain_text(_TITLE),
        "close": plain_text(_CLOSE),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }
    if submit:
        view["submit"] = plain_text(_SUBMIT)
    return view


def _form(choices: ModalChoices) -> list[Json]:
    package = truncate(choices.package_name, 40)
    blocks: list[Json] = [
        _input(
            ids.B_PROJECT,
            "Project name",
            {"type": "plain_text_input", "placeholder": plain_text("e.g. web-shop")},
            hint="Letters, digits, spaces, dots, dashes and underscores.",
        ),
        _input(
            ids.B_NAME,
            "Server name",
            {"type": "plain_text_input", "max_length": 63, "placeholder": plain_text("e.g. web")},
            hint="A lowercase DNS label: a-z, 0-9 and hyphens. With a count above 1 the "
            "servers are named web-1, web-2, …",
        ),
        _input(
            ids.B_COUNT,
            "How many servers",
            _number(minimum=1, maximum=max(1, choices.max_instances), initial=1),
        ),
    ]
    blocks.append(_lifetime(choices.lifetimes))
    blocks += _select_or_note(
        ids.B_GROUP,
        "Hypervisor group",
        [(str(i), name) for i, name in choices.groups],
        initial=str(choices.default_group_id) if choices.default_group_id is not None else None,
        optional=False,
        hint="The panel picks a hypervisor inside the group.",
        missing="The panel lists no hypervisor groups; the configured default group applies.",
    )
    blocks += _select_or_note(
        ids.B_TEMPLATE,
        "OS template",
        [(str(i), label) for i, label in choices.templates],
        initial=None,
        optional=False,
        hint=None,
        missing="The panel lists no OS templates for this package; attach a request JSON.",
    )
    blocks += [
        _size(ids.B_MEMORY, "Memory (MB)", choices.package_memory_mb, package),
        _size(ids.B_DISK, "Disk (GB)", choices.package_disk_gb, package),
        _size(ids.B_CPU, "CPU cores", choices.package_cpu, package),
    ]
    # A key name is its option value; a name over Slack's 150-char value limit cannot be offered.
    keys = [(name, name) for name in choices.ssh_keys if 0 < len(name) <= OPTION_VALUE_MAX]
    blocks += _select_or_note(
        ids.B_SSH_KEY,
        "SSH key",
        [(ids.OPTION_DEFAULT, "No SSH key"), *keys] if keys else [],
        initial=ids.OPTION_DEFAULT,
        optional=True,
        hint="Without a key the root password is only in the VirtFusion panel.",
        missing="No SSH keys on the panel for the owner; the server gets no key.",
    )
    blocks += [
        _input(
            ids.B_PROFILE,
            "Network profile id",
            _number(minimum=1),
            optional=True,
            hint="Leave empty to use the configured default, else the package's own profile.",
        ),
        _input(
            ids.B_PUBLIC_IP,
            "Public IPv4",
            {
                "type": "radio_buttons",
                "options": [_PACKAGE_DEFAULT, _option("yes", "Yes"), _option("no", "No")],
                "initial_option": _PACKAGE_DEFAULT,
            },
            optional=True,
        ),
        _input(
            ids.B_BANDWIDTH,
            "Bandwidth (Mbps)",
            _number(minimum=1),
            optional=True,
            hint="Inbound and outbound limit. Leave empty for the package default.",
        ),
        _input(
            ids.B_VOLUME_SIZE,
            "Additional volume (GB)",
            _number(minimum=1),
            optional=True,
            hint="An extra disk attached to each server.",
        ),
        _input(
            ids.B_VOLUME_MOUNT,
            "Volume mount point",
            {"type": "plain_text_input", "placeholder": plain_text("e.g. /data")},
            optional=True,
            hint="VirtFusion does not mount it (nor format the volume); it is only recorded.",
        ),
        _file_input(),
    ]
    return blocks


_LIFETIMES = ("4h", "1d", "3d", "7d", "14d", "30d")


def _lifetime(policy: LifetimePolicy) -> Json:
    """How long the servers live: the default (VF_DEFAULT_LIFETIME, or never), or a choice
    within VF_MAX_LIFETIME; a longer one can be asked for in a request JSON (admins)."""
    default = (
        f"Default: {format_duration(policy.default_s)}" if policy.default_s else "Never expires"
    )
    choices = [
        _option(text, text)
        for text in _LIFETIMES
        if policy.max_s is None or parse_lifetime(text).total_seconds() <= policy.max_s
    ]
    default_option = _option(ids.OPTION_DEFAULT, default)
    most = f" (at most {format_duration(policy.max_s)})" if policy.max_s else ""
    return _input(
        ids.B_LIFETIME,
        "Lifetime",
        {
            "type": "static_select",
            "options": [default_option, *choices],
            "initial_option": default_option,
        },
        optional=True,
        hint=f"Counted from the build; you are reminded before it ends{most}.",
    )


_PACKAGE_DEFAULT: Json = {
    "text": {"type": "plain_text", "text": "Package default", "emoji": True},
    "value": ids.OPTION_DEFAULT,
}


def _input(
    block_id: str,
    label: str,
    element: Json,
    *,
    optional: bool = False,
    hint: str | None = None,
) -> Json:
    block: Json = {
        "type": "input",
        "block_id": block_id,
        "label": plain_text(label),
        "element": {**element, "action_id": block_id},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain_text(hint, HINT_MAX)
    return block


def _file_input() -> Json:
    return _input(
        ids.B_FILE,
        "Request JSON file",
        {"type": "file_input", "filetypes": ["json"], "max_files": 1},
        optional=True,
        hint=_FILE_HINT,
    )


def _number(*, minimum: int, maximum: int | None = None, initial: int | None = None) -> Json:
    element: Json = {
        "type": "number_input",
        "is_decimal_allowed": False,
        "min_value": str(minimum),
    }
    if maximum is not None:
        element["max_value"] = str(maximum)
    if initial is not None:
        element["initial_value"] = str(initial)
    return element


def _size(block_id: str, label: str, default: int | None, package: str) -> Json:
    shown = str(default) if default is not None else "no default"  # as the user would type it
    element = _number(minimum=1)
    element["placeholder"] = plain_text(f"{shown} (package {package})", PLACEHOLDER_MAX)
    return _input(
        block_id, label, element, optional=True, hint="Leave empty for the package's size."
    )


def _option(value: str, text: str) -> Json:
    return {"text": plain_text(text, OPTION_TEXT_MAX), "value": value}


def _select_or_note(
    block_id: str,
    label: str,
    values: Sequence[tuple[str, str]],
    *,
    initial: str | None,
    optional: bool,
    hint: str | None,
    missing: str,
) -> list[Json]:
    """A static_select of at most 100 options, or a context note when there are none."""
    if not values:
        return [context([f"*{escape(label)}*: {escape(missing)}"])]
    shown = list(values[:OPTIONS_MAX])
    chosen = next((v for v in values if v[0] == initial), None)
    if chosen is not None and chosen not in shown:
        shown[-1] = chosen  # the default must be selectable even past the cut
    notes = [hint] if hint else []
    if len(values) > len(shown):
        notes.append(f"Showing {len(shown)} of {len(values)}; name any other in a request JSON.")
    element: Json = {
        "type": "static_select",
        "placeholder": plain_text("Choose one"),
        "options": [_option(value, text) for value, text in shown],
    }
    if chosen is not None:
        element["initial_option"] = _option(*chosen)
    return [
        _input(
            block_id,
            label,
            element,
            optional=optional,
            hint=" ".join(notes) or None,
        )
    ]
