"""The ``Store`` facade: one object over the store's parts, each in its own module.

* ``series``: metric points as chunks -- writes, range reads, latest values, bucket counts,
  compaction (``repository.series``);
* ``alerts``: alerts by id, handled from any process, read back as ``StoredAlert``;
* ``components``: the latest snapshot per component, read back as ``ComponentSnapshot``;
* ``notifications``: webhook payloads a stop could not deliver;
* ``retention``: what the store forgets (``delete_older_than``).

Every method of the parts is also a method of the store (``store.write_batches(...)`` is
``store.series.write_batches(...)``), which is how callers use it.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from allele.observability.store.faults import safe_url
from allele.observability.store.repository.alerts import AlertRepository
from allele.observability.store.repository.components import ComponentRepository
from allele.observability.store.repository.notifications import NotificationRepository
from allele.observability.store.repository.retention import RetentionRepository
from allele.observability.store.repository.series import SeriesRepository


class Store:
    """Series, alerts and components in one SQL database (see ``open_store``)."""

    def __init__(self, engine: Engine, uri: str) -> None:
        self._engine = engine
        self._uri = uri
        self.series = series = SeriesRepository(engine, uri)
        self.alerts = alerts = AlertRepository(engine, uri)
        self.components = components = ComponentRepository(engine, uri)
        self.notifications = notifications = NotificationRepository(engine, uri)
        self.retention = RetentionRepository(engine, uri)
        # points
        self.write_batches = series.write_batches
        self.list_series = series.list_series
        self.query_series = series.query_series
        self.series_points = series.series_points
        self.iter_series = series.iter_series
        self.aggregate = series.aggregate
        self.latest = series.latest
        self.series_stats = series.series_stats
        self.bucket_counts = series.bucket_counts
        self.compact = series.compact
        self.chunk_count = series.chunk_count
        self.delete_older_than = self.retention.delete_older_than
        # alerts, components, notifications
        self.save_alerts = alerts.save_alerts
        self.load_alerts = alerts.load_alerts
        self.get_alert = alerts.get_alert
        self.acknowledge_alert = alerts.acknowledge_alert
        self.resolve_alert = alerts.resolve_alert
        self.upsert_components = components.upsert_components
        self.load_components = components.load_components
        self.save_notifications = notifications.save_notifications
        self.take_notifications = notifications.take_notifications

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine the store runs on."""
        return self._engine

    @property
    def uri(self) -> str:
        """The URI the store was opened with."""
        return self._uri

    def __repr__(self) -> str:
        return f"Store({safe_url(self._uri)!r})"

    def close(self) -> None:
        """Release the engine's connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
