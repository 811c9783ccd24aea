"""SQLAlchemy table definitions; rows defined here never leave ``bot.store.sql``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.store._values import utc

__all__ = [
    "AuditRow",
    "Base",
    "EventDeliveryRow",
    "EventRow",
    "InstanceRow",
    "MarkRow",
    "OperationRow",
    "RequestRow",
    "SlackEventRow",
    "SlackMessageRow",
    "UtcDateTime",
    "WebhookEventRow",
]


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite returns naive ones).

    Binding a naive datetime raises ``ValueError``: the store never guesses a timezone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        # SQLite has no timezone type: store naive UTC text so string comparisons stay ordered.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL, JSON text elsewhere.
_Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base owning the store's metadata."""


class RequestRow(Base):
    """Table ``requests``: one provisioning request, keyed by an idempotency key."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_state", "state"),)

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    requester: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20))
    project_name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, object]] = mapped_column(_Json)
    plan: Mapped[dict[str, object] | None] = mapped_column(_Json, nullable=True)
    state: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The conversation the request came from (column named before the domain stopped knowing
    # Slack; renaming it would cost every install a table rebuild on SQLite).
    channel: Mapped[str | None] = mapped_column("slack_channel", String(50))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    delete_on_cancel: Mapped[bool] = mapped_column(Boolean, default=False)


class InstanceRow(Base):
    """Table ``instances``: one server of a request; ``server_id`` is unique when set."""

    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("request_id", "position", name="uq_instances_request_position"),
        Index("ix_instances_state", "state"),
    )

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        _Id, ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, object]] = mapped_column(_Json)
    # UNIQUE allows many NULLs on both engines; one panel server belongs to at most one instance.
    server_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    hypervisor_id: Mapped[int | None] = mapped_column(BigInteger)
    group_id: Mapped[int | None] = mapped_column(BigInteger)
    ipv4: Mapped[list[str]] = mapped_column(_Json)
    os_name: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    intent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    build_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    expiry_warned_for: Mapped[datetime | None] = mapped_column(UtcDateTime())
    expiry_done_for: Mapped[datetime | None] = mapped_column(UtcDateTime())


class EventRow(Base):
    """Table ``events``: the outbox; the id gives the delivery order within a stream.

    A stream is one request (``request_id``), one operation (``operation_id``), or the fleet
    (neither: alerts and reports).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_request_id_id", "request_id", "id"),
        Index("ix_events_operation_id_id", "operation_id", "id"),
    )

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(
        _Id, ForeignKey("requests.id", ondelete="CASCADE"), nullable=True
    )
    operation_id: Mapped[int | None] = mapped_column(
        _Id, ForeignKey("operations.id", ondelete="CASCADE"), nullable=True
    )
    instance_id: Mapped[int | None] = mapped_column(
        _Id, ForeignKey("instances.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, object]] = mapped_column(_Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EventDeliveryRow(Base):
    """Table ``event_deliveries``: per-subscriber lease and delivery mark of one event."""

    __tablename__ = "event_deliveries"

    event_id: Mapped[int] = mapped_column(
        _Id, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    subscriber: Mapped[str] = mapped_column(String(100), primary_key=True)
    worker: Mapped[str] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditRow(Base):
    """Table ``audit_log``: who did what to which target, and how it went."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor", "actor"),)

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(200))
    result: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, object]] = mapped_column(_Json)


class SlackEventRow(Base):
    """Table ``slack_events``: ids of Slack events already handled (Slack redelivers)."""

    __tablename__ = "slack_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class WebhookEventRow(Base):
    """Table ``webhook_events``: VirtFusion webhook deliveries already handled (`hookEventId`;
    the panel may deliver one twice, and every replica receives what the load balancer sends)."""

    __tablename__ = "webhook_events"

    hook_event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class OperationRow(Base):
    """Table ``operations``: a day-2 action (e.g. delete) with its approval and outcome.

    ``request_id`` names the create request the server came from; no foreign key, so an
    operation outlives any clean-up of requests.
    """

    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_state", "state"),
        Index("ix_operations_server_id", "server_id"),
    )

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    server_id: Mapped[int] = mapped_column(BigInteger)
    server_name: Mapped[str] = mapped_column(String(200))
    requester: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, object]] = mapped_column(_Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str | None] = mapped_column("slack_channel", String(50))


class SlackMessageRow(Base):
    """Table ``slack_messages``: where a request's or operation's Slack messages live.

    Owned by the Slack adapter (``bot.slack.threads``); the domain never reads it.
    """

    __tablename__ = "slack_messages"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # "request" | "operation"
    ref_id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(String(50))
    ts: Mapped[str] = mapped_column(String(50))
    notice_ts: Mapped[str | None] = mapped_column(String(50))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class MarkRow(Base):
    """Table ``marks``: what the fleet jobs last said about one thing (`bot.provisioning.marks`)."""

    __tablename__ = "marks"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
