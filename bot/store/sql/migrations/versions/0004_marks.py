"""Marks of the fleet jobs (capacity and traffic alerts, the daily report); fleet events.

Revision ID: 0004
Revises: 0003

- ``marks`` (key, value, updated_at): what vfbot last told the alert channel about one thing,
  changed by compare-and-set (``bot.provisioning.marks``).
- ``events`` rows with neither ``request_id`` nor ``operation_id`` are the fleet's stream
  (alerts and reports); the columns were nullable already, so only the code changed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "marks",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Back to 0002: the marks are dropped (alerts that were out may be said again), and so
    are the fleet's events, which 0002 has no stream for."""
    op.execute("DELETE FROM events WHERE request_id IS NULL AND operation_id IS NULL")
    op.drop_table("marks")
