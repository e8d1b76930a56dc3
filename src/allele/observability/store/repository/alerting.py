"""Persistence of the alert routing and intelligence: silences, sent notifications, clusters.

These sit beside ``Store`` on its engine (``AlertingRecords(store)``), in their own tables
(``obs_silences``, ``obs_notifications``, ``obs_alert_clusters``): the router and the alert
intelligence write them, ``allele alerts silence ...`` and ``allele alerts list --grouped``
read them, from any process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from allele.errors import ValidationError
from allele.observability.clock import iso_utc, parse_utc, utc_datetime
from allele.observability.store.faults import store_error
from allele.observability.store.repository.base import _dumps, _insert_for
from allele.observability.store.repository.store import Store
from allele.observability.store.schema import alert_clusters, notifications, silences


def _epoch(value: Any, what: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    parsed = parse_utc(value) if isinstance(value, str | datetime) else None
    if parsed is None:
        raise ValidationError(f"{what}={value!r} must be an ISO-8601 time or epoch seconds")
    return parsed.timestamp()


class AlertingRecords:
    """Reads and writes silences, the notification log and alert clusters of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._engine = store.engine

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise store_error(exc, action, self.store.uri) from exc

    # -- silences ---------------------------------------------------------------------------

    def save_silence(self, silence: Mapping[str, Any]) -> None:
        """Insert or replace a silence (``Silence.to_dict()``) by its id."""
        row = {
            "silence_id": str(silence["silence_id"]),
            "matchers": json.dumps(list(silence["matchers"])),
            "starts_at": _epoch(silence["starts_at"], "starts_at"),
            "ends_at": _epoch(silence["ends_at"], "ends_at"),
            "created_by": str(silence["created_by"]),
            "comment": str(silence["comment"]),
            "updated_at": _epoch(silence.get("updated_at") or time.time(), "updated_at"),
        }
        with self._guard("saving a silence"), self._engine.begin() as conn:
            insert = _insert_for(conn, silences)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[silences.c.silence_id],
                    set_={k: insert.excluded[k] for k in row if k != "silence_id"},
                ),
                row,
            )

    def load_silences(self) -> list[dict[str, Any]]:
        """Every stored silence as a dict (``Silence.from_dict`` reads it), newest first."""
        stmt = select(silences).order_by(silences.c.starts_at.desc())
        with self._guard("loading silences"), self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            {
                "silence_id": row["silence_id"],
                "matchers": json.loads(row["matchers"]),
                "starts_at": iso_utc(utc_datetime(row["starts_at"])),
                "ends_at": iso_utc(utc_datetime(row["ends_at"])),
                "created_by": row["created_by"],
                "comment": row["comment"],
                "updated_at": iso_utc(utc_datetime(row["updated_at"])),
            }
            for row in rows
        ]

    # -- notifications ----------------------------------------------------------------------

    def save_notifications(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Append sent notifications (``Notification.to_dict()``: the Alertmanager payload with
        ``notification_id`` and ``sent_at``)."""
        rows = [
            {
                "notification_id": str(item["notification_id"]),
                "group_key": str(item.get("groupKey", item.get("group_key"))),
                "receiver": str(item["receiver"]),
                "status": str(item["status"]),
                "alert_count": len(item.get("alerts") or ()),
                "sent_at": _epoch(item["sent_at"], "sent_at"),
                "payload": _dumps(item),
            }
            for item in items
        ]
        if rows:
            with self._guard("saving notifications"), self._engine.begin() as conn:
                conn.execute(notifications.insert(), rows)
        return len(rows)

    def load_notifications(
        self, *, group_key: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Sent notifications, newest first (only ``group_key``'s when given)."""
        stmt = select(notifications.c.payload).order_by(notifications.c.sent_at.desc())
        if group_key is not None:
            stmt = stmt.where(notifications.c.group_key == group_key)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._guard("loading notifications"), self._engine.connect() as conn:
            return [dict(json.loads(text)) for (text,) in conn.execute(stmt)]

    # -- clusters ---------------------------------------------------------------------------

    def save_clusters(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Insert or update alert clusters (dicts of ``AlertCluster`` fields) by cluster id.

        An acknowledgement recorded in the store (e.g. from another process) is kept when the
        incoming cluster carries none.
        """
        rows = []
        for item in items:
            attrs = item.get("common_attributes") or {}
            candidates = item.get("root_cause_candidates") or []
            rows.append(
                {
                    "cluster_id": str(item["cluster_id"]),
                    "cluster_type": str(item["cluster_type"]),
                    "root_cause": str(candidates[0]) if candidates else None,
                    "alert_count": len(item.get("alerts") or ()),
                    "priority_score": float(item.get("priority_score") or 0.0),
                    "first_alert_time": _epoch(item["first_alert_time"], "first_alert_time"),
                    "last_alert_time": _epoch(item["last_alert_time"], "last_alert_time"),
                    "acknowledged_by": attrs.get("acknowledged_by"),
                    "updated_at": time.time(),
                    "payload": _dumps(item),
                }
            )
        if not rows:
            return 0
        with self._guard(f"saving {len(rows)} alert clusters"), self._engine.begin() as conn:
            insert = _insert_for(conn, alert_clusters)
            changes: dict[str, Any] = {
                k: insert.excluded[k] for k in rows[0] if k not in ("cluster_id", "acknowledged_by")
            }
            from sqlalchemy import func

            changes["acknowledged_by"] = func.coalesce(
                insert.excluded["acknowledged_by"], alert_clusters.c.acknowledged_by
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[alert_clusters.c.cluster_id], set_=changes
                ),
                rows,
            )
        return len(rows)

    def load_clusters(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored clusters as dicts, the most recently active first; ``acknowledged_by``
        recorded in the store is filled into ``common_attributes``."""
        stmt = select(alert_clusters.c.payload, alert_clusters.c.acknowledged_by).order_by(
            alert_clusters.c.last_alert_time.desc()
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._guard("loading alert clusters"), self._engine.connect() as conn:
            out = []
            for text, acknowledged_by in conn.execute(stmt):
                cluster = dict(json.loads(text))
                if acknowledged_by:
                    cluster.setdefault("common_attributes", {})["acknowledged_by"] = acknowledged_by
                out.append(cluster)
            return out

    def acknowledge_cluster(self, cluster_id: str, by: str) -> None:
        """Record that ``by`` has taken the cluster ``cluster_id`` (stops its escalation)."""
        if not isinstance(by, str) or not by.strip():
            raise ValidationError(f"by={by!r} must name who acknowledges the cluster")
        with self._guard("acknowledging a cluster"), self._engine.begin() as conn:
            done = conn.execute(
                update(alert_clusters)
                .where(alert_clusters.c.cluster_id == cluster_id)
                .values(acknowledged_by=by)
            )
            if not done.rowcount:
                raise ValidationError(f"no stored alert cluster has cluster_id={cluster_id!r}")
