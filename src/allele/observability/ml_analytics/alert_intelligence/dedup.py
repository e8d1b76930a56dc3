"""Anomalies to alerts, with duplicates merged.

Each ``AnomalyResult`` becomes an alert dict carrying every field of the anomaly plus
``alert_id``, ``context`` and the bookkeeping of deduplication. A new anomaly is a *duplicate*
of an open alert of the same component when their similarity reaches ``similarity_threshold``
and it arrives within ``deduplication_window_minutes`` of that alert's latest anomaly. The
similarity (in [0, 1]) adds 0.5 for the same metric, 0.3 for the same anomaly type, 0.1 for the
same severity and 0.1 times how close the values are; so with the default threshold of 0.8 a
repeat of the same metric and type is a duplicate. The merged alert keeps the context of every
anomaly it stands for in ``merged_contexts`` and counts them in ``count``; its score, severity
and value follow the worst / latest anomaly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from allele.errors import ValidationError
from allele.observability.types import AlertSeverity

_SEVERITY_RANK = {s.value: i for i, s in enumerate(AlertSeverity)}

ANOMALY_FIELDS = (
    "timestamp",
    "component_type",
    "component_id",
    "metric_name",
    "anomaly_type",
    "anomaly_score",
    "confidence",
    "severity",
    "actual_value",
    "expected_value",
    "deviation",
    "threshold",
    "context",
    "recommendations",
)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def as_alert(item: Any) -> dict[str, Any]:
    """An alert dict from an ``AnomalyResult``, an alert dict, or any object with the
    anomaly's fields; raises ``ValidationError`` naming what is missing."""
    if isinstance(item, Mapping):
        data = dict(item)
    elif is_dataclass(item) and not isinstance(item, type):
        data = {f.name: getattr(item, f.name) for f in fields(item)}
    else:
        data = {name: getattr(item, name) for name in ANOMALY_FIELDS if hasattr(item, name)}
        for extra in ("alert_id", "labels", "merged_contexts", "count"):
            if hasattr(item, extra):
                data[extra] = getattr(item, extra)
    missing = [n for n in ("timestamp", "component_id", "metric_name") if data.get(n) is None]
    if missing:
        raise ValidationError(
            f"an alert needs {', '.join(missing)} (an AnomalyResult's fields); got {sorted(data)}"
        )
    stamp = data["timestamp"]
    if not isinstance(stamp, datetime) or stamp.tzinfo is None:
        raise ValidationError(f"alert timestamp must be a timezone-aware datetime, got {stamp!r}")
    for name in ("component_type", "anomaly_type", "severity"):
        if name in data:
            data[name] = _plain(data[name])
    data.setdefault("severity", AlertSeverity.WARNING.value)
    data.setdefault("anomaly_type", "unusual_pattern")
    data.setdefault("context", {})
    if "alert_id" not in data:
        data["alert_id"] = uuid.uuid4().hex
    data["_t"] = stamp.timestamp()
    last = data.get("last_seen")
    data["_last_t"] = last.timestamp() if isinstance(last, datetime) else data["_t"]
    return data


def similarity(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """How alike two alerts are, in [0, 1] (0 for different components)."""
    if a.get("component_id") != b.get("component_id"):
        return 0.0
    score = 0.5 * (a.get("metric_name") == b.get("metric_name"))
    score += 0.3 * (a.get("anomaly_type") == b.get("anomaly_type"))
    score += 0.1 * (a.get("severity") == b.get("severity"))
    va, vb = a.get("actual_value"), b.get("actual_value")
    if isinstance(va, int | float) and isinstance(vb, int | float):
        scale = max(abs(va), abs(vb), 1e-12)
        score += 0.1 * (1.0 - min(1.0, abs(va - vb) / scale))
    return float(score)


class Deduplicator:
    """Merges duplicate anomalies into open alerts (see the module docstring)."""

    def __init__(self, similarity_threshold: float, window_minutes: float) -> None:
        self.threshold = similarity_threshold
        self.window_s = window_minutes * 60.0
        self._open: dict[str, list[dict[str, Any]]] = {}  # component_id -> its open alerts

    def add(self, items: Iterable[Any]) -> tuple[list[dict[str, Any]], list[tuple[dict, dict]]]:
        """Turn anomalies into alerts. Returns the alerts created or grown (each once, in
        order) and the ``(duplicate, merged_into)`` pairs."""
        touched: dict[str, dict[str, Any]] = {}
        duplicates: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for raw in sorted((as_alert(i) for i in items), key=lambda a: a["_t"]):
            primary = self._match(raw)
            if primary is None:
                raw.setdefault("merged_contexts", [dict(raw["context"])])
                raw.setdefault("count", len(raw["merged_contexts"]))
                raw.setdefault("duplicate_ids", [])
                raw["first_seen"] = raw["timestamp"]
                raw["last_seen"] = raw["timestamp"]
                raw["_last_t"] = raw["_t"]
                self._open.setdefault(str(raw["component_id"]), []).append(raw)
                touched[raw["alert_id"]] = raw
                continue
            _merge(primary, raw)
            duplicates.append((raw, primary))
            touched[primary["alert_id"]] = primary
        return list(touched.values()), duplicates

    def _match(self, alert: dict[str, Any]) -> dict[str, Any] | None:
        candidates = self._open.get(str(alert["component_id"]))
        if not candidates:
            return None
        t = alert["_t"]
        candidates[:] = [c for c in candidates if t - c["_last_t"] <= self.window_s]
        best, best_sim = None, -1.0
        for open_alert in candidates:
            if open_alert["alert_id"] == alert["alert_id"]:
                return open_alert  # the same alert again
            sim = similarity(open_alert, alert)
            if sim >= self.threshold and sim > best_sim:
                best, best_sim = open_alert, sim
        return best

    def close(self, alert_id: str) -> None:
        """The alert ended (resolved): a later anomaly starts a new alert."""
        for component, alerts in list(self._open.items()):
            kept = [a for a in alerts if a["alert_id"] != alert_id]
            if len(kept) != len(alerts):
                if kept:
                    self._open[component] = kept
                else:
                    del self._open[component]
                return

    def open_alerts(self) -> list[dict[str, Any]]:
        return [a for alerts in self._open.values() for a in alerts]

    def forget_before(self, t: float) -> list[dict[str, Any]]:
        """Close the open alerts whose latest anomaly is older than epoch ``t``; return them."""
        closed: list[dict[str, Any]] = []
        for component in list(self._open):
            alerts = self._open[component]
            kept = [a for a in alerts if a["_last_t"] >= t]
            closed.extend(a for a in alerts if a["_last_t"] < t)
            if kept:
                self._open[component] = kept
            else:
                del self._open[component]
        return closed


def _merge(primary: dict[str, Any], dup: dict[str, Any]) -> None:
    if dup["alert_id"] == primary["alert_id"]:
        return
    primary["merged_contexts"].append(dict(dup.get("context") or {}))
    primary["count"] = len(primary["merged_contexts"])
    primary["duplicate_ids"].append(dup["alert_id"])
    if dup["_t"] >= primary["_last_t"]:
        primary["_last_t"] = dup["_t"]
        primary["last_seen"] = dup["timestamp"]
        primary["actual_value"] = dup.get("actual_value", primary.get("actual_value"))
        primary["deviation"] = dup.get("deviation", primary.get("deviation"))
    if _SEVERITY_RANK.get(str(dup.get("severity")), 0) > _SEVERITY_RANK.get(
        str(primary.get("severity")), 0
    ):
        primary["severity"] = dup["severity"]
    for name in ("anomaly_score", "confidence"):
        if isinstance(dup.get(name), int | float):
            primary[name] = max(float(primary.get(name) or 0.0), float(dup[name]))
