"""Expected outcomes of provisioning that end as one short message to the user."""

from __future__ import annotations

from collections.abc import Sequence

from bot.provisioning.request import Problem

__all__ = [
    "AlreadyDecidedError",
    "NotAllowedError",
    "PlanError",
    "ProvisioningError",
    "UnknownRequestError",
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


class AlreadyDecidedError(ProvisioningError):
    """The request left the state the action needs (already approved, rejected, finished...)."""


class NotAllowedError(ProvisioningError):
    """The actor may not do this; the message says who may."""
