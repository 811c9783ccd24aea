"""Baseline: the schema of commit 61aa0d7.

Exactly what vfbot's ``create_all`` wrote at that commit, names of indexes and constraints too.

Revision ID: 0001
Revises: (none)

Frozen: it names no model of ``tables.py``, so later changes there never alter it. Slack's
message coordinates still live on ``requests`` and ``operations`` here (0002 moves them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

# As tables.py had them: JSONB and BIGSERIAL on PostgreSQL; JSON text and the one SQLite
# rowid alias that auto-increments (INTEGER PRIMARY KEY) on SQLite.
_Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", _Id, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "requests",
        _id(),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("requester", sa.String(100), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("project_name", sa.String(200), nullable=False),
        sa.Column("payload", _Json, nullable=False),
        sa.Column("plan", _Json, nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("decided_at", _Time),
        sa.Column("decision_note", sa.Text()),
        sa.Column("expires_at", _Time),
        sa.Column("slack_channel", sa.String(50)),
        sa.Column("slack_ts", sa.String(50)),
        sa.Column("slack_notice_ts", sa.String(50)),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("delete_on_cancel", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_requests_state", "requests", ["state"])

    op.create_table(
        "audit_log",
        _id(),
        sa.Column("at", _Time, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("result", sa.String(100), nullable=False),
        sa.Column("detail", _Json, nullable=False),
    )
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])

    op.create_table(
        "slack_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("seen_at", _Time, nullable=False),
    )
    op.create_index("ix_slack_events_seen_at", "slack_events", ["seen_at"])

    op.create_table(
        "operations",
        _id(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("server_id", sa.BigInteger(), nullable=False),
        sa.Column("server_name", sa.String(200), nullable=False),
        sa.Column("requester", sa.String(100), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("params", _Json, nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.Column("expires_at", _Time),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("decided_at", _Time),
        sa.Column("decision_note", sa.Text()),
        sa.Column("result", sa.Text()),
        sa.Column("request_id", sa.BigInteger()),
        sa.Column("slack_channel", sa.String(50)),
        sa.Column("slack_ts", sa.String(50)),
    )
    op.create_index("ix_operations_state", "operations", ["state"])
    op.create_index("ix_operations_server_id", "operations", ["server_id"])

    op.create_table(
        "instances",
        _id(),
        sa.Column(
            "request_id",
            _Id,
            sa.ForeignKey("requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("spec", _Json, nullable=False),
        sa.Column("server_id", sa.BigInteger(), unique=True),
        sa.Column("hypervisor_id", sa.BigInteger()),
        sa.Column("group_id", sa.BigInteger()),
        sa.Column("ipv4", _Json, nullable=False),
        sa.Column("os_name", sa.String(200)),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("intent_at", _Time),
        sa.Column("build_started_at", _Time),
        sa.Column("finished_at", _Time),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_until", _Time),
        sa.Column("next_check_at", _Time),
        sa.Column("updated_at", _Time, nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.UniqueConstraint("request_id", "position", name="uq_instances_request_position"),
    )
    op.create_index("ix_instances_state", "instances", ["state"])
    op.create_index("ix_instances_request_id", "instances", ["request_id"])

    op.create_table(
        "events",
        _id(),
        sa.Column(
            "request_id",
            _Id,
            sa.ForeignKey("requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("instance_id", _Id, sa.ForeignKey("instances.id", ondelete="CASCADE")),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("payload", _Json, nullable=False),
        sa.Column("created_at", _Time, nullable=False),
    )
    op.create_index("ix_events_request_id_id", "events", ["request_id", "id"])

    op.create_table(
        "event_deliveries",
        sa.Column(
            "event_id",
            _Id,
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("subscriber", sa.String(100), primary_key=True),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("lease_until", _Time),
        sa.Column("delivered_at", _Time),
    )


def downgrade() -> None:
    for table in (
        "event_deliveries",
        "events",
        "instances",
        "operations",
        "slack_events",
        "audit_log",
        "requests",
    ):
        op.drop_table(table)
