"""The design documents' batch detectors: train, detect, every field of AnomalyResult."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

pytest.importorskip("sklearn")

from allele.errors import ValidationError
from allele.observability.ml_analytics import (
    AnomalyDetectionConfig,
    AnomalyResult,
    AnomalyType,
    EnsembleDetector,
    IsolationForestDetector,
    MLMetric,
    OneClassSVMDetector,
)
from allele.observability.types import AlertSeverity, ComponentType

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _metrics(n: int, name: str = "fitness_score", seed: int = 0) -> list[MLMetric]:
    rng = np.random.default_rng(seed)
    return [
        MLMetric(
            timestamp=T0 + timedelta(minutes=i),
            component_type=ComponentType.EVOLUTION_ENGINE,
            component_id="engine",
            metric_name=name,
            value=float(0.8 + 0.01 * rng.normal()),
        )
        for i in range(n)
    ]


def _next(metrics: list[MLMetric], value: float, k: int = 0) -> MLMetric:
    last = metrics[-1]
    return MLMetric(
        last.timestamp + timedelta(minutes=1 + k),
        last.component_type,
        last.component_id,
        last.metric_name,
        value,
    )


@pytest.mark.parametrize("cls", [IsolationForestDetector, OneClassSVMDetector, EnsembleDetector])
def test_a_drop_is_detected_with_every_field_filled(cls: type) -> None:
    history = _metrics(300)
    detector = cls(AnomalyDetectionConfig(contamination=0.05, min_training_samples=100))
    stats = asyncio.run(detector.train(history))
    assert stats == {"series": 1, "samples": 300, "skipped": 0}
    result = asyncio.run(detector.detect_anomaly(_next(history, 0.3)))
    assert isinstance(result, AnomalyResult)
    assert result.anomaly_type is AnomalyType.PERFORMANCE_DEGRADATION
    assert result.anomaly_score >= result.threshold == pytest.approx(0.95)
    assert 0 < result.confidence <= 1
    assert result.severity in (AlertSeverity.ERROR, AlertSeverity.CRITICAL)
    assert result.expected_value == pytest.approx(0.8, abs=0.01)
    assert result.deviation == pytest.approx(0.3 - result.expected_value)
    assert result.context["features"]["robust_z"] < -10
    assert result.recommendations


def test_normal_rows_mostly_pass_at_the_contamination_rate() -> None:
    history = _metrics(400)
    detector = IsolationForestDetector(AnomalyDetectionConfig(contamination=0.05))
    asyncio.run(detector.train(history[:300]))
    flagged = [asyncio.run(detector.detect_anomaly(m)) for m in history[300:]]
    rate = sum(r is not None for r in flagged) / len(flagged)
    assert rate < 0.2


def test_untrained_series_gives_none_and_short_history_is_an_error() -> None:
    detector = IsolationForestDetector(AnomalyDetectionConfig(min_training_samples=100))  # explicit
    with pytest.raises(ValidationError, match="min_training_samples=100"):
        asyncio.run(detector.train(_metrics(50)))
    asyncio.run(detector.train(_metrics(200)))
    other = _metrics(1, name="latency_ms")[0]
    assert asyncio.run(detector.detect_anomaly(other)) is None


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="contamination"):
        AnomalyDetectionConfig(contamination=0.7)
    with pytest.raises(ValidationError, match="window"):
        AnomalyDetectionConfig(window=200, min_training_samples=100)


def test_design_document_example_runs() -> None:
    # Steps 1-4 of the design documents' end-to-end workflow.
    async def workflow() -> list[AnomalyResult]:
        detector = IsolationForestDetector(AnomalyDetectionConfig(contamination=0.1))
        rng = np.random.default_rng(0)
        metrics = []
        for i in range(100):
            is_anomaly = i > 80 and i % 10 == 0
            value = 0.8 + (0.1 * rng.normal()) if not is_anomaly else 2.0
            metrics.append(
                MLMetric(
                    timestamp=T0 + timedelta(minutes=i),
                    component_type=ComponentType.EVOLUTION_ENGINE,
                    component_id="test_engine",
                    metric_name="fitness_score",
                    value=value,
                )
            )
        await detector.train(metrics[:80])
        anomalies = []
        for metric in metrics[80:]:
            result = await detector.detect_anomaly(metric)
            if result:
                anomalies.append(result)
        return anomalies

    anomalies = asyncio.run(workflow())
    flagged = {a.timestamp for a in anomalies}
    assert {T0 + timedelta(minutes=i) for i in (90,)} <= flagged


def test_fit_score_series_matches_fit_then_score() -> None:
    values = np.random.default_rng(3).normal(size=400).cumsum()
    detector = IsolationForestDetector(AnomalyDetectionConfig(random_state=0))
    model, scores = detector.fit_score_series(values)
    np.testing.assert_allclose(scores, detector.score_series(model, values))
    assert scores.shape == (400 - detector.config.window,)
    assert scores.min() > 0.0 and scores.max() == 1.0
