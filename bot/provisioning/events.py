"""Outbox events: their kinds and one typed payload per kind; subscribers (CLI, Slack) read these.

Payloads are stored as JSON in the shape of the models below, and parsed back with `parse_event`.
Fields added later have defaults, so events written by older versions still parse.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.provisioning.fleet.model import CapacityChange, ExpiringServer, FailedBuild, GroupUsage
from bot.provisioning.model import EventRecord, JsonDict

__all__ = [
    "FLEET_EVENTS",
    "INSTANCE_BUILD_STARTED",
    "INSTANCE_BUILT",
    "INSTANCE_CANCELLED",
    "INSTANCE_CREATED",
    "INSTANCE_DELETED",
    "INSTANCE_EXPIRED",
    "INSTANCE_EXPIRY_CHANGED",
    "INSTANCE_EXPIRY_WARNING",
    "INSTANCE_FAILED",
    "INSTANCE_FAILED_OVER",
    "INSTANCE_WAITING",
    "MILESTONES",
    "OPERATION_DECIDED",
    "OPERATION_FINISHED",
    "OPERATION_REQUESTED",
    "OPERATION_STARTED",
    "REQUEST_APPROVED",
    "REQUEST_CANCEL_REQUESTED",
    "REQUEST_EXPIRED",
    "REQUEST_FINISHED",
    "REQUEST_REJECTED",
    "REQUEST_RETRIED",
    "REQUEST_STARTED",
    "REQUEST_SUBMITTED",
    "CapacityAlert",
    "DailyReport",
    "Event",
    "InstanceBuildStarted",
    "InstanceBuilt",
    "InstanceCancelled",
    "InstanceCreated",
    "InstanceDeleted",
    "InstanceEvent",
    "InstanceExpired",
    "InstanceExpiryChanged",
    "InstanceExpiryWarning",
    "InstanceFailed",
    "InstanceFailedOver",
    "InstanceWaiting",
    "OperationDecided",
    "OperationFinished",
    "OperationRequested",
    "OperationStarted",
    "RequestApproved",
    "RequestCancelRequested",
    "RequestExpired",
    "RequestFinished",
    "RequestRejected",
    "RequestRetried",
    "RequestStarted",
    "RequestSubmitted",
    "TrafficAlert",
    "describe",
    "parse_event",
]


class Event(BaseModel):
    """Base of every payload; ``KIND`` is the stored event kind."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    KIND: ClassVar[str]

    def to_json(self) -> JsonDict:
        """The payload as stored in the outbox."""
        return self.model_dump(mode="json")


class RequestSubmitted(Event):
    KIND: ClassVar[str] = "request.submitted"
    requester: str = ""
    servers: int = 0
    approval_required: bool = False


class RequestStarted(Event):
    KIND: ClassVar[str] = "request.started"


class RequestApproved(Event):
    KIND: ClassVar[str] = "request.approved"
    by: str = ""
    reason: str = ""


class RequestRejected(Event):
    KIND: ClassVar[str] = "request.rejected"
    by: str = ""
    reason: str = ""


class RequestExpired(Event):
    KIND: ClassVar[str] = "request.expired"


class RequestCancelRequested(Event):
    KIND: ClassVar[str] = "request.cancel_requested"
    by: str = ""
    delete_servers: bool = False


class RequestRetried(Event):
    KIND: ClassVar[str] = "request.retried"
    by: str = ""
    servers: list[str] = []


class RequestFinished(Event):
    """The request ended; the counts are its servers by final state (0 ones are left out)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    KIND: ClassVar[str] = "request.finished"
    state: str = ""

    def to_json(self) -> JsonDict:
        return {k: v for k, v in self.model_dump(mode="json").items() if v}


class InstanceEvent(Event):
    """A milestone of one server; ``name`` is the server's name in the request."""

    name: str = ""
    server_id: int | None = None


class InstanceCreated(InstanceEvent):
    KIND: ClassVar[str] = "instance.created"
    group: str | None = None
    hypervisor_id: int | None = None
    hypervisor: str = ""
    ipv4: list[str] = []
    reconciled: bool = False


class InstanceBuildStarted(InstanceEvent):
    KIND: ClassVar[str] = "instance.build_started"
    os: str | None = None


class InstanceBuilt(InstanceEvent):
    KIND: ClassVar[str] = "instance.built"
    ipv4: list[str] = []
    os: str | None = None
    seconds: int | None = None


class InstanceFailed(InstanceEvent):
    KIND: ClassVar[str] = "instance.failed"
    error: str = ""
    stage: str = ""
    deleted: bool = False


class InstanceFailedOver(InstanceEvent):
    """The panel refused to create the server in `from_group` (a 422: nothing was created), so
    it is created in `to_group`, the next group of its list; `reason` is the panel's words."""

    KIND: ClassVar[str] = "instance.failed_over"
    from_group: str = ""
    to_group: str = ""
    reason: str = ""


class InstanceWaiting(InstanceEvent):
    """vfbot is waiting on the panel for this server (not a milestone); `reason` says for
    what and until when, e.g. "create answer lost; looking for the server until 14:05 UTC"."""

    KIND: ClassVar[str] = "instance.waiting"
    reason: str = ""


class InstanceCancelled(InstanceEvent):
    KIND: ClassVar[str] = "instance.cancelled"
    kept: bool = False


class InstanceDeleted(InstanceEvent):
    KIND: ClassVar[str] = "instance.deleted"
    by: str = ""
    delay_min: int = 0
    already_gone: bool = False


class InstanceExpiryWarning(InstanceEvent):
    """The server's lifetime ends at `expires_at`; `action` is what happens then (delete,
    suspend or notify). Written once per server per expiry."""

    KIND: ClassVar[str] = "instance.expiry_warning"
    expires_at: datetime | None = None
    requester: str = ""
    action: str = ""


class InstanceExpiryChanged(InstanceEvent):
    """Someone extended the lifetime (`expires_at` is the new end) or kept the server
    (`expires_at` None: it no longer expires)."""

    KIND: ClassVar[str] = "instance.expiry_changed"
    expires_at: datetime | None = None
    by: str = ""


class InstanceExpired(InstanceEvent):
    """The lifetime ended. `outcome`: `done` (the action was carried out), `failed`, `gone`
    (already deleted on the panel) or `untouched` (given to another owner: vfbot never touches
    it); `result` says it in words."""

    KIND: ClassVar[str] = "instance.expired"
    action: str = ""
    outcome: str = ""
    result: str = ""
    requester: str = ""


class OperationRequested(Event):
    """A day-2 operation was asked for (waiting for approval, or approved at once)."""

    KIND: ClassVar[str] = "operation.requested"
    by: str = ""
    approval_required: bool = False


class OperationDecided(Event):
    """Approved, rejected, or expired without a decision."""

    KIND: ClassVar[str] = "operation.decided"
    state: str = ""
    by: str = ""


class OperationStarted(Event):
    """The panel accepted the work and carries it out (a rebuild's OS install was queued);
    ``detail`` says what, e.g. the template."""

    KIND: ClassVar[str] = "operation.started"
    detail: str = ""


class OperationFinished(Event):
    """Carried out (``done``) or not (``failed``); ``result`` is the outcome in words."""

    KIND: ClassVar[str] = "operation.finished"
    state: str = ""
    result: str = ""


class CapacityAlert(Event):
    """A hypervisor group crossed one or more capacity thresholds, or came back above them."""

    KIND: ClassVar[str] = "fleet.capacity"
    group: GroupUsage = GroupUsage()
    changes: list[CapacityChange] = []


class TrafficAlert(Event):
    """A vfbot server used `threshold_percent` or more of its traffic limit this period."""

    KIND: ClassVar[str] = "fleet.traffic"
    server_id: int | None = None
    name: str = ""
    request_human_id: str = ""
    requester: str = ""
    total_bytes: int = 0
    limit_gb: float = 0
    used_percent: float = 0
    threshold_percent: float = 0
    period_start: datetime | None = None
    period_end: datetime | None = None


class DailyReport(Event):
    """The daily report: servers by state, what expires within a day, builds that failed since
    the last report (the newest `failed`, of `failed_total`) and each group's capacity.

    `expiring` is None when this vfbot cannot tell (no server lifetimes); `capacity_error`
    says why `capacity` is empty when the panel could not be read.
    """

    KIND: ClassVar[str] = "fleet.report"
    slot: datetime | None = None  # the report's time, in `timezone`
    timezone: str = "UTC"
    since: datetime | None = None
    servers: dict[str, int] = {}
    expiring: list[ExpiringServer] | None = None
    failed: list[FailedBuild] = []
    failed_total: int = 0
    capacity: list[GroupUsage] = []
    capacity_error: str = ""


_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        RequestSubmitted,
        RequestStarted,
        RequestApproved,
        RequestRejected,
        RequestExpired,
        RequestCancelRequested,
        RequestRetried,
        RequestFinished,
        InstanceCreated,
        InstanceBuildStarted,
        InstanceBuilt,
        InstanceFailed,
        InstanceFailedOver,
        InstanceWaiting,
        InstanceCancelled,
        InstanceDeleted,
        InstanceExpiryWarning,
        InstanceExpiryChanged,
        InstanceExpired,
        OperationRequested,
        OperationDecided,
        OperationStarted,
        OperationFinished,
        CapacityAlert,
        TrafficAlert,
        DailyReport,
    )
}

REQUEST_SUBMITTED = RequestSubmitted.KIND
REQUEST_APPROVED = RequestApproved.KIND
REQUEST_REJECTED = RequestRejected.KIND
REQUEST_EXPIRED = RequestExpired.KIND
REQUEST_STARTED = RequestStarted.KIND
REQUEST_CANCEL_REQUESTED = RequestCancelRequested.KIND
REQUEST_FINISHED = RequestFinished.KIND
REQUEST_RETRIED = RequestRetried.KIND

INSTANCE_CREATED = InstanceCreated.KIND
INSTANCE_BUILD_STARTED = InstanceBuildStarted.KIND
INSTANCE_BUILT = InstanceBuilt.KIND
INSTANCE_FAILED = InstanceFailed.KIND
INSTANCE_FAILED_OVER = InstanceFailedOver.KIND
INSTANCE_CANCELLED = InstanceCancelled.KIND
INSTANCE_DELETED = InstanceDeleted.KIND
INSTANCE_WAITING = InstanceWaiting.KIND
INSTANCE_EXPIRY_WARNING = InstanceExpiryWarning.KIND
INSTANCE_EXPIRY_CHANGED = InstanceExpiryChanged.KIND
INSTANCE_EXPIRED = InstanceExpired.KIND

OPERATION_REQUESTED = OperationRequested.KIND
OPERATION_DECIDED = OperationDecided.KIND
OPERATION_STARTED = OperationStarted.KIND
OPERATION_FINISHED = OperationFinished.KIND

FLEET_EVENTS = frozenset({CapacityAlert.KIND, TrafficAlert.KIND, DailyReport.KIND})
"""Kinds of the fleet's stream (no request, no operation): the alert channel's messages."""

MILESTONES = frozenset(
    {
        INSTANCE_CREATED,
        INSTANCE_BUILD_STARTED,
        INSTANCE_BUILT,
        INSTANCE_FAILED,
        INSTANCE_FAILED_OVER,
        INSTANCE_CANCELLED,
        INSTANCE_DELETED,
    }
)


def parse_event(record: EventRecord) -> Event | None:
    """The typed payload of a stored event; None for a kind this version does not know.

    A field that does not fit its type (a row written by hand, or by a broken version) is read
    as missing, so one bad value never stops the delivery of a stream.
    """
    kind = _TYPES.get(record.kind)
    if kind is None:
        return None
    payload = dict(record.payload)
    try:
        return kind.model_validate(payload)
    except ValidationError as error:
        bad = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
        return kind.model_validate({k: v for k, v in payload.items() if k not in bad})


def describe(record: EventRecord) -> str:
    """One readable line per event: the CLI prints it, the log writes it at INFO."""
    if record.request_id is not None:
        prefix = f"VF-{record.request_id}"
    elif record.operation_id is not None:
        prefix = f"OP-{record.operation_id}"
    else:
        prefix = "fleet"
    match parse_event(record):
        case RequestSubmitted() as e:
            waits = "waiting for approval" if e.approval_required else "no approval needed"
            return f"{prefix}: submitted by {e.requester}, {e.servers} server(s), {waits}"
        case RequestApproved() as e:
            return f"{prefix}: approved by {e.by}"
        case RequestRejected() as e:
            return f"{prefix}: rejected by {e.by}" + (f": {e.reason}" if e.reason else "")
        case InstanceCreated() as e:
            where = f"group {e.group}, hypervisor {e.hypervisor or e.hypervisor_id}"
            how = " (found on the panel after an unclear answer)" if e.reconciled else ""
            return f"{prefix} {e.name}: created server {e.server_id} in {where}{how}"
        case InstanceBuildStarted() as e:
            return f"{prefix} {e.name}: installing {e.os} on server {e.server_id}"
        case InstanceBuilt() as e:
            ips = ", ".join(e.ipv4) if e.ipv4 else "no IPv4"
            return f"{prefix} {e.name}: built ({ips}, {e.os})"
        case InstanceFailed() as e:
            return f"{prefix} {e.name}: FAILED: {e.error}"
        case InstanceFailedOver() as e:
            return (
                f"{prefix} {e.name}: group {e.from_group} refused it ({e.reason}); "
                f"creating it in group {e.to_group}"
            )
        case InstanceWaiting() as e:
            return f"{prefix} {e.name}: waiting: {e.reason}"
        case InstanceDeleted() as e:
            return f"{prefix} {e.name}: server {e.server_id} deleted"
        case InstanceCancelled() as e:
            return f"{prefix} {e.name}: cancelled"
        case InstanceExpiryWarning() as e:
            return f"{prefix} {e.name}: expires at {_when(e.expires_at)} ({e.action} then)"
        case InstanceExpiryChanged() as e:
            if e.expires_at is None:
                return f"{prefix} {e.name}: kept by {e.by}, no longer expires"
            return f"{prefix} {e.name}: extended by {e.by} to {_when(e.expires_at)}"
        case InstanceExpired() as e:
            return f"{prefix} {e.name}: expired ({e.action}, {e.outcome}): {e.result}"
        case RequestFinished() as e:
            return f"{prefix}: finished: {e.state}"
        case OperationDecided() as e:
            return f"{prefix}: {e.state}" + (f" by {e.by}" if e.by else "")
        case OperationStarted() as e:
            return f"{prefix}: started: {e.detail}"
        case OperationFinished() as e:
            return f"{prefix}: {e.state}: {e.result}"
        case CapacityAlert() as e:
            said = ", ".join(f"{c.resource} {'low' if c.low else 'recovered'}" for c in e.changes)
            return f"{prefix}: capacity of group {e.group.name or e.group.group_id}: {said}"
        case TrafficAlert() as e:
            return f"{prefix}: {e.name} used {e.used_percent:.0f} % of its traffic"
        case DailyReport() as e:
            return f"{prefix}: daily report of {e.slot:%Y-%m-%d %H:%M}" if e.slot else prefix
    return f"{prefix}: {record.kind.replace('.', ' ')}"


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "an unknown time"
