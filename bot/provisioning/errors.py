"""Expected outcomes a user can act on; each carries structured fields and a plain sentence.

The sentence (``str(error)``) says what happened in the domain's terms. What to do next depends
on where the user is (a `/vf` command or a `vfbot` command), so the surfaces add that:
``bot.slack.messages`` and ``bot.cli.common``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from bot.provisioning.request import Problem
from bot.virtfusion import (
    AuthError,
    ConnectError,
    ForbiddenError,
    PanelTimeoutError,
    VirtFusionError,
)

__all__ = [
    "AlreadyDecidedError",
    "AmbiguousServerError",
    "BuildInProgressError",
    "InvalidValueError",
    "LastAddressError",
    "NotOursReason",
    "OperationFailedError",
    "OperationPendingError",
    "PlanError",
    "ProvisioningError",
    "ServerBuildingError",
    "ServerLockedError",
    "UnknownOperationError",
    "UnknownRequestError",
    "UnknownServerError",
    "describe_panel_error",
]


class ProvisioningError(Exception):
    """Base of the errors a user can act on."""


class PlanError(ProvisioningError):
    """The request cannot be planned; nothing was created. `problems` say what to change."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(
            f"- {p.path}: {p.message}" if p.path else f"- {p.message}" for p in problems
        )
        super().__init__(f"The request cannot be carried out; nothing was created.\n{lines}")


class UnknownRequestError(ProvisioningError):
    """No request with that id (VF-n) exists."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        super().__init__(f"There is no request VF-{request_id}.")


class AlreadyDecidedError(ProvisioningError):
    """The request or operation left the state the action needs (already approved, rejected,
    finished…); the sentence names who decided."""


class NotOursReason(StrEnum):
    """Why a named server is not one vfbot may act on."""

    NO_NAME = "no_name"  # nothing was named
    UNKNOWN_NAME = "unknown_name"  # vfbot made no server by that name
    NOT_ON_PANEL = "not_on_panel"  # no server with that id on the panel
    OTHER_OWNER = "other_owner"  # the id belongs to another VirtFusion user
    GIVEN_AWAY = "given_away"  # vfbot made it, but it was given to another user since
    GONE = "gone"  # it was deleted on the panel meanwhile


class UnknownServerError(ProvisioningError):
    """No server vfbot may manage goes by that id or name; `suggestions` are close names."""

    def __init__(
        self, reason: NotOursReason, message: str, suggestions: Sequence[str] = ()
    ) -> None:
        self.reason = reason
        self.suggestions = list(suggestions)
        if self.suggestions:
            message += " Did you mean " + ", ".join(self.suggestions) + "?"
        super().__init__(message)


class AmbiguousServerError(ProvisioningError):
    """Several live servers share the name; `candidates` are (name, server id, request id)."""

    def __init__(self, name: str, candidates: Sequence[tuple[str, int, str | None]]) -> None:
        self.candidates = list(candidates)
        listed = ", ".join(
            f"{n} (server {sid}{', ' + rid if rid else ''})" for n, sid, rid in candidates
        )
        super().__init__(
            f"{len(self.candidates)} servers are called {name!r}: {listed}. "
            "Name the one you mean by its server id."
        )


class ServerLockedError(ProvisioningError):
    """The panel kept answering 423 Locked (another task runs on the server) past our wait."""

    def __init__(self, server_id: int, waited_s: float) -> None:
        self.server_id = server_id
        self.waited_s = waited_s
        super().__init__(
            f"server {server_id} is busy with another task on the panel (HTTP 423) and stayed "
            f"locked for {waited_s:g} s; try again in a few minutes"
        )


class OperationFailedError(ProvisioningError):
    """The panel refused the action; the message carries the panel's own words."""


class ServerBuildingError(ProvisioningError):
    """The server is still being created or built by request `request_id`; cancel that request
    instead."""

    def __init__(self, label: str, request_id: int) -> None:
        self.request_id = request_id
        super().__init__(f"{label}: VF-{request_id} is still building it.")


class BuildInProgressError(ProvisioningError):
    """The panel is installing the server's OS right now (a build or rebuild runs)."""

    def __init__(self, label: str, phase: str) -> None:
        self.phase = phase
        super().__init__(
            f"{label} is being built on the panel right now (its OS install is {phase}); "
            "a rebuild can start once that has finished."
        )


class LastAddressError(ProvisioningError):
    """Removing this address would leave the server without any IPv4 address; the surfaces
    ask a second time before they do it."""

    def __init__(self, label: str, address: str) -> None:
        self.address = address
        super().__init__(
            f"{address} is the last IPv4 address of {label}: without it the server has no "
            "public IPv4 at all."
        )


class OperationPendingError(ProvisioningError):
    """An operation on this server is already waiting or running; `operation_id` names it."""

    def __init__(self, message: str, operation_id: int) -> None:
        self.operation_id = operation_id
        super().__init__(message)


class UnknownOperationError(ProvisioningError):
    """No operation with that id (OP-n) exists."""

    def __init__(self, operation_id: int) -> None:
        self.operation_id = operation_id
        super().__init__(f"There is no operation OP-{operation_id}.")


class InvalidValueError(ProvisioningError):
    """A value the user gave is out of range; the message says what is allowed."""


def describe_panel_error(error: VirtFusionError) -> str:
    """What went wrong with the panel, in plain words without advice (surfaces add that)."""
    if isinstance(error, AuthError):
        return "the panel rejected vfbot's API token (HTTP 401)"
    if isinstance(error, ForbiddenError):
        return f"vfbot's API token lacks a permission for {error.method} {error.path} (HTTP 403)"
    if isinstance(error, ConnectError):
        return f"the panel could not be reached ({error})"
    if isinstance(error, PanelTimeoutError):
        return f"the panel did not answer in time ({error})"
    return str(error)
