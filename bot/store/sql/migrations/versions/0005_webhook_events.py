"""VirtFusion webhook deliveries already handled, shared by the replicas.

Revision ID: 0005
Revises: 0004

- ``webhook_events`` (``hook_event_id``, ``seen_at``): one row per webhook delivery vfbot
  handled, so a delivery the panel repeats, or that reaches two replicas, is handled once.
  `vfbot serve` forgets rows older than a day.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("hook_event_id", sa.String(200), primary_key=True),
        sa.Column("seen_at", _Time, nullable=False),
    )
    op.create_index("ix_webhook_events_seen_at", "webhook_events", ["seen_at"])


def downgrade() -> None:
    """Back to 0002: the record of handled deliveries is dropped (a repeat is only a hint)."""
    op.drop_index("ix_webhook_events_seen_at", table_name="webhook_events")
    op.drop_table("webhook_events")
