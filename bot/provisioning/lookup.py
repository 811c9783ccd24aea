"""Match what a request names (a template, an SSH key) to the panel's objects; pure, no I/O."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from bot.virtfusion import OsTemplate, SshKey

__all__ = ["match_key", "match_template"]

# ASCII digits only: str.isdigit() is also true for "²", which int() rejects.
_ID = re.compile(r"[0-9]+")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.casefold()).strip("-")


def match_template(wanted: str, templates: Sequence[OsTemplate]) -> OsTemplate | str:
    """The template `wanted` names (`ubuntu-22.04`, `Ubuntu 22.04`, or an id), else why not."""
    if _ID.fullmatch(wanted):
        found = next((t for t in templates if t.id == int(wanted)), None)
        if found is not None:
            return found
        return f"no OS template with id {wanted} for this package; " + _template_choices(templates)
    key = _slug(wanted)
    exact = [t for t in templates if _slug(t.label) == key]
    if len(exact) == 1:
        return exact[0]
    by_version = exact or [t for t in templates if _slug(f"{t.name} {t.version}") == key]
    if len(by_version) == 1:
        return by_version[0]
    if len(by_version) > 1:
        labels = ", ".join(f"{t.label} (id {t.id})" for t in by_version)
        return f"{wanted!r} matches several templates: {labels}; use the id or the full name"
    keys = {_slug(t.label): t for t in templates}
    close = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.5)
    hint = (
        "closest: " + ", ".join(f"{keys[c].label} → {c!r}" for c in close)
        if close
        else _template_choices(templates)
    )
    return f"no OS template {wanted!r} for this package; {hint}"


def _template_choices(templates: Sequence[OsTemplate]) -> str:
    names = sorted({_slug(t.label) for t in templates if not t.eol})
    return "available: " + (", ".join(names) if names else "(none)")


def match_key(wanted: str, keys: Sequence[SshKey]) -> SshKey | None:
    exact = [k for k in keys if k.name == wanted]
    if len(exact) == 1:
        return exact[0]
    folded = [k for k in keys if k.name.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else None
