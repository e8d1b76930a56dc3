"""Live detection: a watched series' anomaly becomes an alert with a severity, and a result."""

from __future__ import annotations

import numpy as np

from allele.observability.clock import ManualClock
from allele.observability.config import ObservabilitySettings
from allele.observability.engine import ObservabilityEngine
from allele.observability.ml_analytics.anomaly.live import (
    LEVEL_METRIC,
    SCORE_METRIC,
    LiveAnomalySettings,
    attach_live_detection,
    severity_level,
)
from allele.observability.ml_analytics.types import AnomalyType
from allele.observability.types import AlertSeverity, AlertState


def _engine(clock: ManualClock) -> ObservabilityEngine:
    return ObservabilityEngine(
        ObservabilitySettings(store_uri="none", collection_interval=0.05),
        clock=clock,
        notifiers=[],
    )


def test_a_latency_spike_becomes_a_firing_alert_and_a_typed_result() -> None:
    clock = ManualClock()
    engine = _engine(clock)
    try:
        live = attach_live_detection(
            engine, LiveAnomalySettings(series="latency_ms", interval_s=10, hold_s=30)
        )
        assert live is not None
        rng = np.random.default_rng(0)
        gauge = engine.collector.gauge("latency_ms", {"component_id": "agent"})
        for i in range(400):
            gauge.set(100.0 + rng.normal(0, 2) + (80.0 if i == 350 else 0.0))
            clock.advance(10)
            engine.tick()
            # The detector's gauges are set by a tick listener, after that tick's fold; the
            # engine's next tick (a second later, well inside the rules' window) folds them.
            engine.collector.fold()
            engine.alerts.evaluate()
            if i == 350:
                firing = [a for a in engine.get_active_alerts() if a.state is AlertState.FIRING]
                assert [a.rule_name for a in firing][:1] and firing[0].rule_name.startswith(
                    "anomaly_"
                )
                assert firing[0].labels["metric"] == "latency_ms"
                assert firing[0].severity in (
                    AlertSeverity.WARNING,
                    AlertSeverity.ERROR,
                    AlertSeverity.CRITICAL,
                )
        spikes = [d for d in live.detections if d.actual_value > 150]
        assert spikes and spikes[0].anomaly_type is AnomalyType.LATENCY_SPIKE
        assert spikes[0].expected_value < 110
        # Held for hold_s, then cleared: the alert resolved, the gauges still published.
        assert not [a for a in engine.get_active_alerts() if a.rule_name.startswith("anomaly_")]
        names = engine.collector.metric_names()
        assert SCORE_METRIC in names and LEVEL_METRIC in names
        live.detach()
        assert not [r for r in engine.alerts.rules() if r.name.startswith("anomaly_")]
    finally:
        engine.close()


def test_no_series_no_listener() -> None:
    clock = ManualClock()
    engine = _engine(clock)
    try:
        assert attach_live_detection(engine, LiveAnomalySettings(series=" , ")) is None
    finally:
        engine.close()


def test_severity_from_score() -> None:
    assert severity_level(0.5, 0.9) == 0
    assert severity_level(0.91, 0.9) == 1
    assert severity_level(0.95, 0.9) == 2
    assert severity_level(0.99, 0.9) == 3


def test_setup_observability_monitoring_attaches_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from allele.observability.integration import (
        setup_observability_monitoring,
        teardown_observability_monitoring,
    )
    from allele.observability.ml_analytics.anomaly import live as live_module

    monkeypatch.setenv("ALLELE_ANOMALY_SERIES", "allele_system_cpu_percent")
    engine = ObservabilityEngine(
        ObservabilitySettings(store_uri="none", collection_interval=0.05), notifiers=[]
    )
    try:
        asyncio.run(setup_observability_monitoring(engine))
        attached = live_module._ATTACHED.get(engine)
        assert attached is not None
        assert attached.settings.names == ["allele_system_cpu_percent"]
        assert {r.name for r in engine.alerts.rules()} >= {"anomaly_warning", "anomaly_critical"}
        asyncio.run(teardown_observability_monitoring(engine))
    finally:
        engine.close()
