"""Names of the outbox events the engine writes; subscribers (CLI, Slack) switch on these."""

from __future__ import annotations

__all__ = [
    "INSTANCE_BUILD_STARTED",
    "INSTANCE_BUILT",
    "INSTANCE_CANCELLED",
    "INSTANCE_CREATED",
    "INSTANCE_DELETED",
    "INSTANCE_FAILED",
    "MILESTONES",
    "REQUEST_APPROVED",
    "REQUEST_CANCEL_REQUESTED",
    "REQUEST_EXPIRED",
    "REQUEST_FINISHED",
    "REQUEST_REJECTED",
    "REQUEST_RETRIED",
    "REQUEST_STARTED",
    "REQUEST_SUBMITTED",
]

REQUEST_SUBMITTED = "request.submitted"
REQUEST_APPROVED = "request.approved"
REQUEST_REJECTED = "request.rejected"
REQUEST_EXPIRED = "request.expired"
REQUEST_STARTED = "request.started"
REQUEST_CANCEL_REQUESTED = "request.cancel_requested"
REQUEST_FINISHED = "request.finished"
REQUEST_RETRIED = "request.retried"

INSTANCE_CREATED = "instance.created"
INSTANCE_BUILD_STARTED = "instance.build_started"
INSTANCE_BUILT = "instance.built"
INSTANCE_FAILED = "instance.failed"
INSTANCE_CANCELLED = "instance.cancelled"
INSTANCE_DELETED = "instance.deleted"

MILESTONES = frozenset(
    {
        INSTANCE_CREATED,
        INSTANCE_BUILD_STARTED,
        INSTANCE_BUILT,
        INSTANCE_FAILED,
        INSTANCE_CANCELLED,
        INSTANCE_DELETED,
    }
)
