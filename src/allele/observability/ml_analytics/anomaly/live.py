"""Live anomaly detection: the default streaming detector over chosen series of a running engine.

The observability core knows nothing of it. ``attach_live_detection(engine)`` registers a tick
listener (the engine's own extension point) and three alert rules; every ``interval_s`` seconds
the listener takes one value per watched series (the series' ``aggregation`` over the interval),
feeds it to that series' detector (one per series and label set, constant memory each), and
publishes two gauges per series, labelled with the source metric and its labels:

- ``allele_anomaly_score``: the detector's score of the newest value, in [0, 1];
- ``allele_anomaly_level``: 0 normally; 1, 2 or 3 (warning, error, critical, from the score)
  for ``hold_s`` seconds after a detection.

The rules ``anomaly_warning`` / ``anomaly_error`` / ``anomaly_critical`` fire on the level, so a
detection becomes an alert through the alert manager with its severity, is stored with the other
alerts and appears in ``allele monitor``; the gauges are stored like any series. Each detection
is also kept as an ``AnomalyResult`` (the newest ``keep`` of them) with its type.

Settings (environment, prefix ``ALLELE_ANOMALY_``): ``SERIES`` (comma-separated metric names;
empty: off), ``INTERVAL_S``, ``AGGREGATION``, ``HOLD_S``, ``THRESHOLD``.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from allele.observability.collector import INSTANCE_LABEL
from allele.observability.ml_analytics.anomaly.classify import (
    classify_anomaly,
    recommendations_for,
)
from allele.observability.ml_analytics.anomaly.streaming import ResidualNoveltyDetector
from allele.observability.ml_analytics.types import AnomalyResult
from allele.observability.types import (
    Aggregation,
    AlertRule,
    AlertSeverity,
    ComponentType,
    Operator,
)

if TYPE_CHECKING:
    from allele.observability.engine import ObservabilityEngine

logger = logging.getLogger(__name__)

SCORE_METRIC = "allele_anomaly_score"
LEVEL_METRIC = "allele_anomaly_level"
_LEVELS = {1: AlertSeverity.WARNING, 2: AlertSeverity.ERROR, 3: AlertSeverity.CRITICAL}
_HISTORY = 64  # recent values per series, for the anomaly's shape and type


class LiveAnomalySettings(BaseSettings):
    """Which live series to watch and how (environment prefix ``ALLELE_ANOMALY_``)."""

    model_config = SettingsConfigDict(env_prefix="ALLELE_ANOMALY_", extra="ignore")

    series: str = Field(
        default="", description="Comma-separated metric names to watch; empty: off."
    )
    interval_s: float = Field(default=10.0, gt=0, le=86400, description="Seconds between values.")
    aggregation: Aggregation = Field(default=Aggregation.MEAN, description="Value of an interval.")
    hold_s: float = Field(default=60.0, ge=0, le=86400, description="How long a detection is held.")
    # A little below NAB's optimum for the default detector (0.929, benchmarks/bench_nab.py),
    # which sits at the score of a record residual with a forgetting rank of ~1000 rows
    # (0.93 x 0.999): live, a record deviation of an ordinary shape should still alert.
    threshold: float = Field(
        default=0.9, gt=0, le=1, description="Score at which a value is anomalous."
    )

    @field_validator("series")
    @classmethod
    def _names(cls, value: str) -> str:
        return ",".join(n.strip() for n in value.split(",") if n.strip())

    @property
    def names(self) -> list[str]:
        return [n for n in self.series.split(",") if n]


def severity_level(score: float, threshold: float) -> int:
    """1, 2 or 3 (warning, error, critical): where ``score`` falls in ``[threshold, 1]``."""
    if score < threshold:
        return 0
    span = 1.0 - threshold
    if span <= 0 or score >= threshold + 0.8 * span:
        return 3
    return 2 if score >= threshold + 0.4 * span else 1


class LiveAnomalyDetection:
    """The tick listener that runs the detectors; see the module docstring."""

    def __init__(
        self,
        engine: ObservabilityEngine,
        settings: LiveAnomalySettings | None = None,
        *,
        keep: int = 1000,
    ) -> None:
        self.engine = engine
        self.settings = settings or LiveAnomalySettings()
        self.detections: deque[AnomalyResult] = deque(maxlen=keep)
        self._detectors: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
        self._recent: dict[tuple[str, tuple[tuple[str, str], ...]], deque[float]] = {}
        self._gauges: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Any, Any]] = {}
        self._held: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, float]] = {}
        self._last = -math.inf
        self._lock = threading.Lock()
        self.errors = 0

    def rules(self) -> list[AlertRule]:
        # The level is republished every interval; the max over one interval is the current one
        # (the window is a touch shorter so that the previous value has left it).
        window = 0.99 * self.settings.interval_s
        return [
            AlertRule(
                name=f"anomaly_{severity.value}",
                metric=LEVEL_METRIC,
                operator=Operator.EQ,
                threshold=float(level),
                aggregation=Aggregation.MAX,
                window_s=window,
                cooldown_s=0.0,
                severity=severity,
                description="anomaly detected by the live detector",
            )
            for level, severity in _LEVELS.items()
        ]

    def attach(self) -> LiveAnomalyDetection:
        for rule in self.rules():
            self.engine.alerts.add_rule(rule, replace=True)
        self.engine.add_tick_listener(self.on_tick)
        return self

    def detach(self) -> None:
        _ATTACHED.pop(self.engine, None)
        self.engine.remove_tick_listener(self.on_tick)
        for rule in self.rules():
            self.engine.alerts.remove_rule(rule.name)

    def on_tick(self) -> None:
        """Called by the engine after each fold: cheap unless an interval has passed."""
        clock = self.engine.collector.clock
        now = clock.time()
        if now - self._last < self.settings.interval_s or not self._lock.acquire(False):
            return
        try:
            self._last = now
            self._step(now)
        finally:
            self._lock.release()

    def _step(self, now: float) -> None:
        s = self.settings
        collector = self.engine.collector
        for name in s.names:
            for key, summary in collector.query(name, None, window_s=s.interval_s):
                value = summary.get(s.aggregation)
                if value is None or not math.isfinite(value):
                    continue
                series = (name, key.labels)
                detector = self._detectors.get(series)
                if detector is None:
                    # The collector stamps its own ``instance`` on the gauges it makes.
                    labels = {"metric": name, **dict(series[1])}
                    labels.pop(INSTANCE_LABEL, None)
                    self._gauges[series] = (
                        collector.gauge(SCORE_METRIC, labels),
                        collector.gauge(LEVEL_METRIC, labels),
                    )
                    detector = self._detectors[series] = ResidualNoveltyDetector()
                    self._recent[series] = deque(maxlen=_HISTORY)
                score = detector.score_learn_one({"value": value, "timestamp": now})
                recent = self._recent[series]
                recent.append(value)
                level = severity_level(score, s.threshold)
                if level:
                    self._held[series] = (level, now + s.hold_s)
                    self._record(name, dict(series[1]), value, score, level, detector, recent)
                held = self._held.get(series)
                if held is not None and now >= held[1]:
                    del self._held[series]
                    held = None
                score_gauge, level_gauge = self._gauges[series]
                score_gauge.set(score)
                level_gauge.set(float(held[0]) if held else 0.0)

    def _record(
        self,
        name: str,
        labels: dict[str, str],
        value: float,
        score: float,
        level: int,
        detector: ResidualNoveltyDetector,
        recent: deque[float],
    ) -> None:
        expected = detector.expected
        anomaly_type = classify_anomaly(name, list(recent))
        component_type = ComponentType.SYSTEM
        raw_type = labels.get("component_type", "")
        if raw_type in ComponentType._value2member_map_:
            component_type = ComponentType(raw_type)
        z = detector.residual.z
        self.detections.append(
            AnomalyResult(
                timestamp=datetime.now(UTC),
                component_type=component_type,
                component_id=labels.get("component_id", "system"),
                metric_name=name,
                anomaly_type=anomaly_type,
                anomaly_score=score,
                confidence=float(min(1.0, 1.0 - math.exp(-z / 4.0))),
                severity=_LEVELS[level],
                actual_value=value,
                expected_value=expected,
                deviation=value - expected,
                threshold=self.settings.threshold,
                context={
                    "detector": "residual_novelty",
                    "labels": labels,
                    "z": z,
                    "baseline": detector.residual.baseline,
                },
                recommendations=recommendations_for(anomaly_type),
            )
        )


def attach_live_detection(
    engine: ObservabilityEngine | None = None, settings: LiveAnomalySettings | None = None
) -> LiveAnomalyDetection | None:
    """Watch the settings' series on ``engine`` (default: the process-wide one).

    Returns the attached detection, or None when the settings name no series. An engine gets
    one live detection: attaching again returns the one already attached.
    """
    settings = settings or LiveAnomalySettings()
    if not settings.names:
        return None
    if engine is None:
        from allele.observability.engine import get_observability_engine

        engine = get_observability_engine()
    existing = _ATTACHED.get(engine)
    if existing is not None:
        return existing
    live = _ATTACHED[engine] = LiveAnomalyDetection(engine, settings).attach()
    return live


_ATTACHED: weakref.WeakKeyDictionary[ObservabilityEngine, LiveAnomalyDetection] = (
    weakref.WeakKeyDictionary()
)
