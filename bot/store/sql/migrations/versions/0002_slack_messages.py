"""Slack message coordinates in their own table; operation event streams.

Revision ID: 0002
Revises: 0001

- ``events.request_id`` becomes nullable and ``events.operation_id`` (an operation's stream)
  appears, with ``ix_events_operation_id_id``.
- ``slack_messages`` (kind, ref_id) takes over ``requests.slack_ts``/``slack_notice_ts`` and
  ``operations.slack_ts``: the rows are copied, then those columns are dropped.
  ``slack_channel`` stays on both tables (the domain's ``channel``).

SQLite cannot alter columns, so its tables are rebuilt (Alembic's batch mode); the caller runs
this with foreign keys off and checks them before committing (``bot.store.sql.schema``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def _before(column: str) -> str | None:
    """Column order as ``create_all`` writes it, where the table is rebuilt anyway (SQLite);
    PostgreSQL appends (ALTER TABLE cannot place a column)."""
    return column if op.get_bind().dialect.name == "sqlite" else None


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("ref_id", _Id, primary_key=True, autoincrement=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("ts", sa.String(50), nullable=False),
        sa.Column("notice_ts", sa.String(50)),
        sa.Column("updated_at", _Time, nullable=False),
    )
    # A ts without a channel cannot be addressed (61aa0d7 always wrote the two together).
    op.execute(
        "INSERT INTO slack_messages (kind, ref_id, channel, ts, notice_ts, updated_at) "
        "SELECT 'request', id, slack_channel, slack_ts, slack_notice_ts, updated_at "
        "FROM requests WHERE slack_ts IS NOT NULL AND slack_channel IS NOT NULL"
    )
    op.execute(
        "INSERT INTO slack_messages (kind, ref_id, channel, ts, notice_ts, updated_at) "
        "SELECT 'operation', id, slack_channel, slack_ts, NULL, updated_at "
        "FROM operations WHERE slack_ts IS NOT NULL AND slack_channel IS NOT NULL"
    )
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("slack_ts")
        batch.drop_column("slack_notice_ts")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("slack_ts")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("request_id", existing_type=_Id, nullable=True)
        batch.add_column(sa.Column("operation_id", _Id), insert_before=_before("instance_id"))
        batch.create_foreign_key(
            "events_operation_id_fkey", "operations", ["operation_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_events_operation_id_id", ["operation_id", "id"])


def downgrade() -> None:
    """Back to 0001: Slack coordinates return to their columns; operation events are dropped
    (0001 has no place for them)."""
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_operation_id_id")
        batch.drop_constraint("events_operation_id_fkey", type_="foreignkey")
        batch.drop_column("operation_id")
    op.execute("DELETE FROM events WHERE request_id IS NULL")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("request_id", existing_type=_Id, nullable=False)
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("slack_ts", sa.String(50)))
    # Rebuilt on SQLite, which could append but not place the columns where 0001 has them.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("requests", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(
            sa.Column("slack_ts", sa.String(50)), insert_before=_before("cancel_requested")
        )
        batch.add_column(
            sa.Column("slack_notice_ts", sa.String(50)), insert_before=_before("cancel_requested")
        )
    op.execute(
        "UPDATE requests SET "
        "slack_ts = (SELECT m.ts FROM slack_messages m "
        "WHERE m.kind = 'request' AND m.ref_id = requests.id), "
        "slack_notice_ts = (SELECT m.notice_ts FROM slack_messages m "
        "WHERE m.kind = 'request' AND m.ref_id = requests.id)"
    )
    op.execute(
        "UPDATE operations SET slack_ts = (SELECT m.ts FROM slack_messages m "
        "WHERE m.kind = 'operation' AND m.ref_id = operations.id)"
    )
    op.drop_table("slack_messages")
