"""Server lifetimes: when each server expires, and its reminder and action once per expiry.

Revision ID: 0003
Revises: 0002

- ``instances.expires_at`` (indexed: the expiry job and ``/vf expiring`` read by it),
  ``instances.expiry_warned_for`` and ``instances.expiry_done_for`` (the expiry value whose
  reminder was claimed, and whose action was taken: compare-and-set, once per expiry).

Existing servers get no expiry. Columns are appended on both engines.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_Time = sa.DateTime(timezone=True)
_COLUMNS = ("expires_at", "expiry_warned_for", "expiry_done_for")


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, _Time))
        batch.create_index("ix_instances_expires_at", ["expires_at"])


def downgrade() -> None:
    """Back to 0002: lifetimes are forgotten (servers never expire)."""
    with op.batch_alter_table("instances") as batch:
        batch.drop_index("ix_instances_expires_at")
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
