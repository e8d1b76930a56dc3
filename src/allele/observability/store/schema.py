"""The observability tables as SQLAlchemy Core metadata: series, chunks, alerts, components.

The migrations in ``migrations/versions`` create exactly these tables; the repository queries
them through the ``Table`` objects below. Timestamps are epoch seconds (UTC) stored as double
precision: they index and compare fast, and convert to aware datetimes at the edges.

Metric points are stored the way time-series databases store them: as **chunks**, one row per
series per write (at most ``CHUNK_MAX_POINTS`` points each), not one row per point. A chunk row
holds the time span it covers (``t_min``, ``t_max``), its point count ``n``, the sum, minimum and
maximum of its values, the value at ``t_max`` (``v_last``), and the points themselves in two
blobs:

* ``ts_blob``: the timestamps, epoch seconds, as little-endian IEEE 754 float64
  (``numpy.dtype("<f8")``), sorted ascending (ties keep the order they were recorded in);
* ``value_blob``: the values, little-endian float64, in the same order.

So ``len(ts_blob) == len(value_blob) == 8 * n``, and ``numpy.frombuffer(blob, "<f8")`` reads
either back on any platform. A time-range query selects the chunks overlapping the range through
the ``(series_id, t_max)`` index and cuts them with numpy; retention deletes whole chunks and
rewrites the ones that straddle the cutoff.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: The most points one chunk row holds; a longer batch is split (bounded row size, and a
#: range read or a retention cut decodes at most this many points beyond the range).
CHUNK_MAX_POINTS = 65_536

# One row per series identity; ``labels`` is the canonical JSON object of the sorted label pairs
# so that the same label set always has the same text (see ``labels_to_text``).
# ``total_count`` / ``total_sum`` count every point ever written to the series (every writer
# adds to them in its write transaction; retention never lowers them): what an exposition
# reports as a summary's ``_count`` / ``_sum``, which must never go down.
series = Table(
    "obs_series",
    metadata,
    Column("series_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("labels", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("total_count", BigInteger, nullable=False, server_default="0"),
    Column("total_sum", Double, nullable=False, server_default="0"),
    # Histograms: cumulative counts per bucket (migration 0003_core; see ``buckets``).
    Column("bucket_counts", LargeBinary, nullable=True),
    UniqueConstraint("name", "labels", "kind", name="uq_obs_series_identity"),
)

# Chunks of points (see the module docstring for the blob encoding). ``chunk_id`` grows with
# every write, so among chunks ending at the same instant the highest id was written last.
chunks = Table(
    "obs_chunks",
    metadata,
    Column("chunk_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "series_id",
        Integer,
        ForeignKey("obs_series.series_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("t_min", Double, nullable=False),
    Column("t_max", Double, nullable=False),
    Column("n", Integer, nullable=False),
    Column("v_sum", Double, nullable=False),
    Column("v_min", Double, nullable=False),
    Column("v_max", Double, nullable=False),
    Column("v_last", Double, nullable=False),
    Column("ts_blob", LargeBinary, nullable=False),
    Column("value_blob", LargeBinary, nullable=False),
    # Range reads (t_max >= start, per series) and the newest chunk of a series.
    Index("ix_obs_chunks_series_tmax", "series_id", "t_max"),
    # Retention: the chunks that begin before a cutoff.
    Index("ix_obs_chunks_tmin", "t_min"),
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

# --- routing and alert intelligence (silences, notifications sent, alert clusters) -------------

# Silences: matchers (JSON list of 'name<op>"value"' strings) muting alerts from starts_at to
# ends_at; expiring one sets ends_at to the moment it was expired.
silences = Table(
    "obs_silences",
    metadata,
    Column("silence_id", String(64), primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("starts_at", Double, nullable=False),
    Column("ends_at", Double, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("comment", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_obs_silences_ends_at", "ends_at"),
)

# Every notification a router sent: which group, to which receiver, and its whole payload.
notifications = Table(
    "obs_notifications",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("group_key", Text, nullable=False),
    Column("receiver", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("alert_count", Integer, nullable=False),
    Column("sent_at", Double, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_obs_notifications_sent_at", "sent_at"),
)

# Alert clusters (``AlertCluster`` with its alerts) as JSON, with the columns a listing sorts on.
alert_clusters = Table(
    "obs_alert_clusters",
    metadata,
    Column("cluster_id", String(64), primary_key=True),
    Column("cluster_type", String(64), nullable=False),
    Column("root_cause", String(512), nullable=True),
    Column("alert_count", Integer, nullable=False),
    Column("priority_score", Double, nullable=False),
    Column("first_alert_time", Double, nullable=False),
    Column("last_alert_time", Double, nullable=False),
    Column("acknowledged_by", String(255), nullable=True),
    Column("updated_at", Double, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_obs_alert_clusters_last", "last_alert_time"),
)

# The outbox: webhook payloads a stop could not deliver (migration 0003_core), delivered at the
# next start; ``target`` is a digest of the webhook URL, never the URL (it carries tokens).
outbox = Table(
    "obs_outbox",
    metadata,
    Column("notification_id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(64), nullable=False),
    Column("queued_at", Double, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_obs_outbox_target", "target"),
)
