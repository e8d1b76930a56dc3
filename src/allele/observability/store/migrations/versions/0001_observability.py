"""Observability tables: series, chunks of points, alerts, components.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "obs_series",
        sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("total_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_sum", sa.Double, nullable=False, server_default="0"),
        sa.UniqueConstraint("name", "labels", "kind", name="uq_obs_series_identity"),
    )
    # Points as chunks: little-endian float64 blobs, one row per series per write (schema.py).
    op.create_table(
        "obs_chunks",
        sa.Column("chunk_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "series_id",
            sa.Integer,
            sa.ForeignKey("obs_series.series_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("t_min", sa.Double, nullable=False),
        sa.Column("t_max", sa.Double, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("v_sum", sa.Double, nullable=False),
        sa.Column("v_min", sa.Double, nullable=False),
        sa.Column("v_max", sa.Double, nullable=False),
        sa.Column("v_last", sa.Double, nullable=False),
        sa.Column("ts_blob", sa.LargeBinary, nullable=False),
        sa.Column("value_blob", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_obs_chunks_series_tmax", "obs_chunks", ["series_id", "t_max"])
    op.create_index("ix_obs_chunks_tmin", "obs_chunks", ["t_min"])
    op.create_table(
        "obs_alerts",
        sa.Column("alert_id", sa.String(128), primary_key=True),
        sa.Column("rule_name", sa.String(255), nullable=True),
        sa.Column("metric", sa.String(255), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(32), nullable=True),
        sa.Column("component", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("acknowledged_by", sa.String(255), nullable=True),
        sa.Column("acknowledged_at", sa.Double, nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.Column("resolved_at", sa.Double, nullable=True),
        sa.Column("resolution_comment", sa.Text, nullable=True),
        sa.Column("acknowledgement_comment", sa.Text, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_obs_alerts_state", "obs_alerts", ["state"])
    op.create_table(
        "obs_components",
        sa.Column("component_id", sa.String(255), primary_key=True),
        sa.Column("component_type", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("obs_components")
    op.drop_index("ix_obs_alerts_state", table_name="obs_alerts")
    op.drop_table("obs_alerts")
    op.drop_index("ix_obs_chunks_tmin", table_name="obs_chunks")
    op.drop_index("ix_obs_chunks_series_tmax", table_name="obs_chunks")
    op.drop_table("obs_chunks")
    op.drop_table("obs_series")
