"""Routing and alert intelligence: silences, the notification log, alert clusters.

Revision ID: 0004_alerts
Revises: 0003_core
Create Date: 2026-12-06

Timestamps are epoch seconds (UTC) as double precision, like the observability tables; the
payload columns hold the whole object as JSON text.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_alerts"
down_revision = "0003_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "obs_silences",
        sa.Column("silence_id", sa.String(64), primary_key=True),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Double, nullable=False),
        sa.Column("ends_at", sa.Double, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_index("ix_obs_silences_ends_at", "obs_silences", ["ends_at"])
    op.create_table(
        "obs_notifications",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("receiver", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("alert_count", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.Double, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_obs_notifications_sent_at", "obs_notifications", ["sent_at"])
    op.create_table(
        "obs_alert_clusters",
        sa.Column("cluster_id", sa.String(64), primary_key=True),
        sa.Column("cluster_type", sa.String(64), nullable=False),
        sa.Column("root_cause", sa.String(512), nullable=True),
        sa.Column("alert_count", sa.Integer, nullable=False),
        sa.Column("priority_score", sa.Double, nullable=False),
        sa.Column("first_alert_time", sa.Double, nullable=False),
        sa.Column("last_alert_time", sa.Double, nullable=False),
        sa.Column("acknowledged_by", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_obs_alert_clusters_last", "obs_alert_clusters", ["last_alert_time"])


def downgrade() -> None:
    op.drop_table("obs_alert_clusters")
    op.drop_table("obs_notifications")
    op.drop_table("obs_silences")
