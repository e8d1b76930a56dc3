"""What the terminal dashboard reads: one ``Snapshot`` of a source per refresh (components,
system, alerts, alert clusters, sparklines of the watched series, anomaly detections)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from allele.observability.dashboard.source import SeriesRef, StoreSource, parse_series_id

VIEWS = ("overview", "components", "alerts", "series", "detections")
SCORE_METRIC = "allele_anomaly_score"  # as published by ml_analytics.anomaly.live
LEVEL_METRIC = "allele_anomaly_level"
CLUSTER_TABLE = "obs_alert_clusters"  # written by the alert-intelligence router
_DEFAULT_WATCH = ("allele_system_cpu_percent", "allele_system_memory_percent")
_HEALTH = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "dim"}
_SEVERITY = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "cyan"}
_LEVEL = {0: ("normal", "green"), 1: ("warning", "yellow"), 2: ("error", "red")}
_KEYS = "1-5/tab view  j/k select  a ack  r refresh  q quit"


def load_clusters(source: Any) -> list[dict[str, Any]]:
    """The store's alert clusters, most recently active first; ``[]`` when this install or
    this store has no cluster table (the alert-intelligence router writes it)."""
    import importlib

    store = getattr(source, "store", None)
    if store is None:
        return []
    try:  # imported by name: the module arrives with the alert-intelligence work
        alerting = importlib.import_module("allele.observability.store.repository.alerting")
    except ImportError:
        return []
    from sqlalchemy import inspect

    if not inspect(store.engine).has_table(CLUSTER_TABLE):
        return []
    clusters: list[dict[str, Any]] = alerting.AlertingRecords(store).load_clusters()
    return clusters


@dataclass
class Sparkline:
    """One watched series over the window: its id, values and newest value."""

    ref: SeriesRef
    values: list[float]

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass
class Snapshot:
    """What one frame shows; a part that could not be read holds its error in ``errors``."""

    now: float
    title: str
    window_s: float = 900.0
    components: list[dict[str, Any]] = field(default_factory=list)
    system: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    sparklines: list[Sparkline] = field(default_factory=list)
    detections: list[tuple[SeriesRef, list[float], float | None]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def active_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a.get("state") != "resolved"]


def watched(refs: Sequence[SeriesRef], patterns: Sequence[str], limit: int = 8) -> list[SeriesRef]:
    """The series to draw: those matching each ``name`` or ``name{label="v"}`` pattern (a
    pattern's labels must all be present); without patterns, the system CPU and memory."""
    chosen: list[SeriesRef] = []
    for pattern in patterns or _DEFAULT_WATCH:
        name, labels = parse_series_id(pattern)
        for ref in refs:
            if ref.name == name and set(labels.items()) <= set(ref.labels) and ref not in chosen:
                chosen.append(ref)
    return chosen[:limit]


def take_snapshot(
    source: StoreSource,
    *,
    watch: Sequence[str] = (),
    window_s: float = 900.0,
    title: str = "",
    now: float | None = None,
) -> Snapshot:
    """Read everything a frame shows from ``source``. Each part is read on its own: one
    failing read (a locked table, say) shows as that panel's error, not a blank dashboard."""
    now = time.time() if now is None else now
    snap = Snapshot(now=now, title=title, window_s=window_s)
    start = now - window_s

    def series() -> None:
        refs = source.series()
        for ref in watched(refs, watch):
            _, values = source.points(ref.name, dict(ref.labels), start, None)
            snap.sparklines.append(Sparkline(ref, [float(v) for v in values]))
        for ref in refs:
            if ref.name == SCORE_METRIC:
                _, scores = source.points(ref.name, dict(ref.labels), start, None)
                _, levels = source.points(LEVEL_METRIC, dict(ref.labels), start, None)
                level = float(levels[-1]) if len(levels) else None
                snap.detections.append((ref, [float(v) for v in scores], level))

    parts: dict[str, Callable[[], None]] = {
        "components": lambda: snap.components.extend(source.components()),
        "system": lambda: snap.system.update(source.system()),
        "alerts": lambda: snap.alerts.extend(source.alerts()),
        "clusters": lambda: snap.clusters.extend(load_clusters(source)),
        "series": series,
    }
    for name, read in parts.items():
        try:
            read()
        except Exception as exc:  # shown in its panel; the next refresh tries again
            snap.errors[name] = str(exc)
    return snap
