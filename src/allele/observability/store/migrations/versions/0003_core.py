"""The outbox (``obs_outbox``): webhook payloads a stop could not deliver, for the next start.

Revision ID: 0003_core
Revises: 0002
Create Date: 2026-12-06

``target`` is a digest of the webhook URL (the URL itself carries tokens and is not stored);
``payload`` the JSON body to post; ``queued_at`` epoch seconds (UTC).

Also ``obs_series.bucket_counts``: a histogram's cumulative count per bucket of
``allele.observability.buckets.BOUNDS`` (little-endian int64, one more than the bounds for
+Inf), grown by every write and never lowered by retention, like ``total_count``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_core"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("obs_series") as batch:
        batch.add_column(sa.Column("bucket_counts", sa.LargeBinary, nullable=True))
    op.create_table(
        "obs_outbox",
        sa.Column("notification_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("queued_at", sa.Double, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_obs_outbox_target", "obs_outbox", ["target"])


def downgrade() -> None:
    with op.batch_alter_table("obs_series") as batch:
        batch.drop_column("bucket_counts")
    op.drop_index("ix_obs_outbox_target", table_name="obs_outbox")
    op.drop_table("obs_outbox")
