"""Expected outcomes of provisioning that end as one short message to the user."""

from __future__ import annotations

from collections.abc import Sequence

from bot.provisioning.request import Problem

__all__ = [
    "AlreadyDecidedError",
    "AmbiguousServerError",
    "InvalidValueError",
    "NotAllowedError",
    "OperationFailedError",
    "OperationPendingError",
    "PlanError",
    "ProvisioningError",
    "ServerBuildingError",
    "ServerLockedError",
    "UnknownOperationError",
    "UnknownRequestError",
    "UnknownServerError",
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

    @classmethod
    def for_id(cls, request_id: int) -> UnknownRequestError:
        return cls(
            f"There is no request VF-{request_id}. Check the number: `vfbot requests` and the "
            "vfbot Home tab in Slack list recent ones."
        )


class AlreadyDecidedError(ProvisioningError):
    """The request left the state the action needs (already approved, rejected, finished...)."""


class NotAllowedError(ProvisioningError):
    """The actor may not do this; the message says who may."""


class UnknownServerError(ProvisioningError):
    """No server vfbot may manage goes by that id or name; `suggestions` are close names."""

    def __init__(self, message: str, suggestions: Sequence[str] = ()) -> None:
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
    """The server is still being created or built by a request; cancel that request instead."""


class OperationPendingError(ProvisioningError):
    """An operation on this server is already waiting or running; `operation_id` names it."""

    def __init__(self, message: str, operation_id: int) -> None:
        self.operation_id = operation_id
        super().__init__(message)


class UnknownOperationError(ProvisioningError):
    """No operation with that id (OP-n) exists."""


class InvalidValueError(ProvisioningError):
    """A value the user gave is out of range; the message says what is allowed."""
