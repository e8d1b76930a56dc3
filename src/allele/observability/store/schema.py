"""The observability tables as SQLAlchemy Core metadata: series, points, alerts, components.

The migrations in ``migrations/versions`` create exactly these tables; the repository queries
them through the ``Table`` objects below. Timestamps are epoch seconds (UTC) stored as double
precision: they index and compare fast, and convert to aware datetimes at the edges.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per series identity; ``labels`` is the canonical JSON object of the sorted label pairs
# so that the same label set always has the same text (see ``labels_to_text``).
series = Table(
    "obs_series",
    metadata,
    Column("series_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("labels", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    UniqueConstraint("name", "labels", "kind", name="uq_obs_series_identity"),
)

# Raw points: no primary key of their own (SQLite's rowid serves) because a series may hold two
# points with the same timestamp; the (series_id, ts) index serves every range query.
points = Table(
    "obs_points",
    metadata,
    Column(
        "series_id",
        Integer,
        ForeignKey("obs_series.series_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("ts", Double, nullable=False),
    Column("value", Double, nullable=False),
    Index("ix_obs_points_series_ts", "series_id", "ts"),
)

# Alerts keep the whole ``Alert.to_dict()`` in ``payload`` (JSON text) plus the columns that the
# CLI filters and updates on.
alerts = Table(
    "obs_alerts",
    metadata,
    Column("alert_id", String(128), primary_key=True),
    Column("rule_name", String(255), nullable=True),
    Column("metric", String(255), nullable=True),
    Column("state", String(32), nullable=False),
    Column("severity", String(32), nullable=True),
    Column("component", String(255), nullable=True),
    Column("updated_at", Double, nullable=False),
    Column("acknowledged_by", String(255), nullable=True),
    Column("acknowledged_at", Double, nullable=True),
    Column("resolved_by", String(255), nullable=True),
    Column("resolved_at", Double, nullable=True),
    Column("resolution_comment", Text, nullable=True),
    Column("acknowledgement_comment", Text, nullable=True),
    Column("payload", Text, nullable=False),
    Index("ix_obs_alerts_state", "state"),
)

# The latest snapshot of each registered component (``ComponentMetrics.to_dict()``).
components = Table(
    "obs_components",
    metadata,
    Column("component_id", String(255), primary_key=True),
    Column("component_type", String(64), nullable=True),
    Column("updated_at", Double, nullable=False),
    Column("payload", Text, nullable=False),
)
