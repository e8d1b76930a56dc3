"""Detections over a whole recorded series (what ``allele analytics detect`` shows).

The series is replayed row by row through a fresh streaming detector, exactly as live detection
would have seen it (causal: each row is scored before it is learnt), and every row scoring at
least ``threshold`` becomes an ``AnomalyResult`` with its type from the rows up to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from allele.errors import ValidationError
from allele.observability.ml_analytics.anomaly.classify import (
    classify_anomaly,
    recommendations_for,
)
from allele.observability.ml_analytics.anomaly.live import severity_level
from allele.observability.ml_analytics.anomaly.nab import DETECTORS
from allele.observability.ml_analytics.types import AnomalyResult
from allele.observability.types import AlertSeverity, ComponentType

_SHAPE_ROWS = 64  # rows before a detection that its type is judged on


def detect_history(
    name: str,
    timestamps: Sequence[float],
    values: Sequence[float],
    *,
    labels: Mapping[str, str] | None = None,
    detector: str = "residual_novelty",
    threshold: float = 0.9,
) -> tuple[list[float], list[AnomalyResult]]:
    """``(scores, detections)`` of one series: a score per row and the rows at ``threshold``+."""
    factory = DETECTORS.get(detector)
    if factory is None:
        raise ValidationError(f"unknown detector {detector!r}; choose one of {sorted(DETECTORS)}")
    if len(timestamps) != len(values):
        raise ValidationError(
            f"timestamps ({len(timestamps)}) and values ({len(values)}) differ in length"
        )
    labels = dict(labels or {})
    raw_type = labels.get("component_type", "")
    component_type = (
        ComponentType(raw_type)
        if raw_type in ComponentType._value2member_map_
        else ComponentType.SYSTEM
    )
    det = factory()
    scores: list[float] = []
    detections: list[AnomalyResult] = []
    for i, (t, v) in enumerate(zip(timestamps, values, strict=True)):
        score = det.score_one({"value": float(v), "timestamp": float(t)})
        expected = float(getattr(det, "expected", math.nan))
        det.learn_one({"value": float(v), "timestamp": float(t)})
        scores.append(score)
        if score < threshold:
            continue
        recent = [float(x) for x in values[max(0, i + 1 - _SHAPE_ROWS) : i + 1]]
        anomaly_type = classify_anomaly(name, recent)
        detections.append(
            AnomalyResult(
                timestamp=datetime.fromtimestamp(float(t), UTC),
                component_type=component_type,
                component_id=labels.get("component_id", "system"),
                metric_name=name,
                anomaly_type=anomaly_type,
                anomaly_score=score,
                confidence=(score - threshold) / (1 - threshold) if threshold < 1 else 1.0,
                severity=_severity(score, threshold),
                actual_value=float(v),
                expected_value=expected,
                deviation=float(v) - expected,
                threshold=threshold,
                context={"detector": detector, "labels": labels, "row": i},
                recommendations=recommendations_for(anomaly_type),
            )
        )
    return scores, detections


def _severity(score: float, threshold: float) -> AlertSeverity:
    return {1: AlertSeverity.WARNING, 2: AlertSeverity.ERROR, 3: AlertSeverity.CRITICAL}[
        max(1, severity_level(score, threshold))
    ]
