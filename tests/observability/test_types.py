"""The observability vocabulary: validation, UTC datetimes and dict round trips."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.types import (
    Aggregation,
    Alert,
    AlertRule,
    AlertSeverity,
    AlertState,
    BenchmarkResult,
    ComponentMetrics,
    ComponentType,
    DashboardConfig,
    GPUDevice,
    GPUStatus,
    HealthStatus,
    MatrixBenchmarkConfig,
    MetricType,
    MetricValue,
    MLflowConfig,
    MonitoringConfig,
    Operator,
    PerformanceMetrics,
    SystemMetrics,
    normalize_labels,
    validate_metric_name,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_enumerations_have_the_documented_members() -> None:
    assert [m.value for m in MetricType] == [
        "counter",
        "gauge",
        "histogram",
        "timer",
        "distribution",
    ]
    assert [s.value for s in AlertSeverity] == ["info", "warning", "error", "critical"]
    assert {c.value for c in ComponentType} == {
        "evolution_engine",
        "kraken_lnn",
        "nlp_agent",
        "llm_client",
        "genome",
        "cmr_model",
        "system",
    }
    assert {h.value for h in HealthStatus} == {"healthy", "degraded", "unhealthy", "unknown"}


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gt", 2.0, True),
        ("gt", 1.0, False),
        ("gte", 1.0, True),
        ("lt", 0.5, True),
        ("lt", 1.0, False),
        ("lte", 1.0, True),
        ("eq", 1.0, True),
        ("eq", 1.5, False),
        ("ne", 1.5, True),
        ("ne", 1.0, False),
    ],
)
def test_operators_compare_against_a_threshold_of_one(
    op: str, value: float, expected: bool
) -> None:
    assert Operator(op).compare(value, 1.0) is expected


def test_metric_value_accepts_finite_numbers_and_normalises() -> None:
    labels: dict[str, Any] = {"b": 2, "a": "x"}
    value = MetricValue("latency_seconds", 3, MetricType.TIMER, labels, NOW)
    assert value.value == 3.0 and isinstance(value.value, float)
    assert value.labels == {"a": "x", "b": "2"}
    assert MetricValue.from_dict(json.loads(json.dumps(value.to_dict()))) == value


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (-math.inf, "inf"), ("1.5", "not_a_number")],
)
def test_metric_value_rejects_non_finite_values_naming_why(bad: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=f"\\({reason}\\); only finite numbers"):
        MetricValue("x", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "é", None, "x\n", "requests_total\n"])
def test_invalid_metric_names_are_rejected(name: object) -> None:
    with pytest.raises(ValidationError, match="invalid metric name"):
        validate_metric_name(name)


def test_valid_metric_names_pass() -> None:
    for name in ("a", "_a", "a:b_c9", "allele_component_latency_seconds"):
        assert validate_metric_name(name) == name


def test_labels_are_sorted_and_validated() -> None:
    assert normalize_labels({"z": 1, "a": "b"}) == (("a", "b"), ("z", "1"))
    with pytest.raises(ValidationError, match="invalid label name"):
        normalize_labels({"bad-name": "x"})
    with pytest.raises(ValidationError, match="invalid label name"):
        normalize_labels({"__reserved": "x"})
    with pytest.raises(ValidationError, match="invalid label name"):
        normalize_labels({"route\n": "x"})  # "$" would let the newline through


def test_label_values_must_be_valid_unicode() -> None:
    with pytest.raises(ValidationError, match="not valid Unicode text"):
        normalize_labels({"op": "\ud800"})  # a lone surrogate: no store or scrape can write it
    assert normalize_labels({"op": "é✓"}) == (("op", "é✓"),)
    with pytest.raises(ValidationError, match="no value"):
        normalize_labels({"a": None})


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        MetricValue("x", 1.0, timestamp=datetime(2026, 1, 1))


def test_alert_rule_validation_names_the_problem() -> None:
    base: dict[str, Any] = {"name": "r", "metric": "m", "operator": "gt", "threshold": 1.0}
    with pytest.raises(ValidationError, match="unknown operator 'bigger'; allowed: gt"):
        AlertRule(**{**base, "operator": "bigger"})
    with pytest.raises(ValidationError, match="window_s must be > 0"):
        AlertRule(**base, window_s=0)
    with pytest.raises(ValidationError, match="min_samples"):
        AlertRule(**base, min_samples=0)
    with pytest.raises(ValidationError, match="threshold must be a finite number"):
        AlertRule(**{**base, "threshold": float("nan")})
    with pytest.raises(ValidationError, match="unknown aggregation"):
        AlertRule(**base, aggregation="median")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'last' judges a single raw sample"):
        AlertRule(**base, aggregation="last")  # type: ignore[arg-type]


def test_alert_rule_label_matching_and_component_type() -> None:
    rule = AlertRule(
        name="r",
        metric="m",
        operator=Operator.GT,
        threshold=1.0,
        labels={"operation": "chat"},
        component_type=ComponentType.NLP_AGENT,
    )
    assert rule.matches((("component_type", "nlp_agent"), ("operation", "chat")))
    assert not rule.matches((("component_type", "kraken_lnn"), ("operation", "chat")))
    assert not rule.matches((("operation", "other"),))
    assert AlertRule.from_dict(rule.to_dict()) == rule


def test_alert_round_trips_through_json_with_utc_datetimes() -> None:
    alert = Alert(
        alert_id="a1",
        rule_name="slow",
        metric="latency_seconds",
        severity=AlertSeverity.ERROR,
        state=AlertState.FIRING,
        value=2.5,
        threshold=1.0,
        operator=Operator.GT,
        aggregation=Aggregation.P95,
        labels={"component_id": "evo"},
        started_at=NOW,
        updated_at=NOW,
        fired_at=NOW,
        acknowledged_at=NOW,
        acknowledged_by="ana",
        acknowledgement_comment="looking",
    )
    data = json.loads(json.dumps(alert.to_dict()))
    assert data["fired_at"] == "2026-01-02T03:04:05+00:00"
    assert data["severity"] == "error"
    back = Alert.from_dict(data)
    assert back == alert
    assert back.fired_at is not None and back.fired_at.tzinfo is not None
    assert back.acknowledged and back.active and back.component_id == "evo"


def test_from_dict_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="unknown field"):
        PerformanceMetrics.from_dict({"window_s": 1.0, "latency": 3})


def test_component_and_system_metrics_round_trip() -> None:
    component = ComponentMetrics(
        component_id="k1",
        component_type=ComponentType.KRAKEN_LNN,
        health=HealthStatus.DEGRADED,
        performance=PerformanceMetrics(window_s=60, operation_count=10, latency_p95_s=0.2),
        timestamp=NOW,
        last_heartbeat=NOW,
        metadata={"reservoir": 100},
    )
    assert ComponentMetrics.from_dict(json.loads(json.dumps(component.to_dict()))) == component
    system = SystemMetrics(
        timestamp=NOW,
        cpu_percent=12.5,
        cpu_count=2,
        memory_percent=40.0,
        memory_used_bytes=1e9,
        memory_total_bytes=4e9,
        disk_percent=None,
        disk_read_bytes=1.0,
        disk_write_bytes=2.0,
        net_sent_bytes=3.0,
        net_recv_bytes=4.0,
        process_cpu_percent=5.0,
        process_rss_bytes=1e7,
        process_threads=3,
        gpu=GPUStatus(True, "nvml", None, [GPUDevice(0, "fake-gpu", 1e9, 8e9, 50.0)]),
    )
    back = SystemMetrics.from_dict(json.loads(json.dumps(system.to_dict())))
    assert back == system
    assert isinstance(back.gpu.devices[0], GPUDevice)


def test_benchmark_result_summary_matches_numpy() -> None:
    samples = [0.5, 0.1, 0.3, 0.2, 0.9, 0.4]
    result = BenchmarkResult("evo", ComponentType.EVOLUTION_ENGINE, samples, started_at=NOW)
    summary = result.summary()
    assert summary["p95"] == pytest.approx(np.percentile(samples, 95))
    assert summary["std"] == pytest.approx(np.std(samples, ddof=1))
    assert BenchmarkResult.from_dict(result.to_dict()) == result
    with pytest.raises(ValidationError, match="invalid samples"):
        BenchmarkResult("evo", ComponentType.GENOME, [0.1, float("nan")])


def test_config_types_round_trip() -> None:
    for config in (MonitoringConfig(), DashboardConfig(port=9000), MLflowConfig()):
        assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
    matrix = MatrixBenchmarkConfig(parameters={"mutation_rate": [0.1, 0.2]})
    assert MatrixBenchmarkConfig.from_dict(matrix.to_dict()) == matrix
    assert matrix.population_sizes == [50, 100, 250, 500, 1000]


def test_every_type_of_the_design_is_reachable_from_the_package() -> None:
    import allele.observability as obs

    for name in (
        "MetricType",
        "AlertSeverity",
        "ComponentType",
        "MetricValue",
        "PerformanceMetrics",
        "BenchmarkResult",
        "SystemMetrics",
        "ComponentMetrics",
        "AlertRule",
        "Alert",
        "MonitoringConfig",
        "DashboardConfig",
        "MatrixBenchmarkConfig",
        "MLflowConfig",
    ):
        assert name in obs.__all__
        # Defined in one of the vocabulary's concept modules, importable from the facade.
        assert getattr(obs, name).__module__.startswith("allele.observability.types.")
        assert getattr(obs.types, name) is getattr(obs, name)
