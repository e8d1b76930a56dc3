"""The vocabulary shared by the analytics modules: observations, detections, forecasts, clusters,
recommendations.

These are the data models of the design documents (``MLMetric``, ``AnomalyResult``,
``AlertCluster``, ``OptimizationRecommendation``...). Each module of ``ml_analytics`` produces or
consumes them: the anomaly detectors produce ``AnomalyResult``, alert intelligence groups them
into ``AlertCluster``, the predictors produce ``PredictionResult`` and the optimization engine
turns all of it into ``OptimizationRecommendation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from allele.observability.types import AlertSeverity, ComponentType


def _now() -> datetime:
    return datetime.now(UTC)


class AnomalyType(StrEnum):
    """What kind of anomaly a detection is, judged from the metric's meaning and its shape."""

    PERFORMANCE_DEGRADATION = "performance_degradation"
    RESOURCE_SPIKE = "resource_spike"
    MEMORY_LEAK = "memory_leak"
    CPU_OVERLOAD = "cpu_overload"
    LATENCY_SPIKE = "latency_spike"
    ERROR_RATE_SPIKE = "error_rate_spike"
    THROUGHPUT_DROP = "throughput_drop"
    UNUSUAL_PATTERN = "unusual_pattern"


class PredictionType(StrEnum):
    """What a prediction is about."""

    PERFORMANCE_FORECAST = "performance_forecast"
    RESOURCE_USAGE = "resource_usage"
    ERROR_PROBABILITY = "error_probability"
    CAPACITY_PLANNING = "capacity_planning"
    PERFORMANCE_TREND = "performance_trend"
    ANOMALY_RISK = "anomaly_risk"


class OptimizationCategory(StrEnum):
    """Which part of the system a recommendation changes."""

    CONFIGURATION_TUNING = "configuration_tuning"
    RESOURCE_ALLOCATION = "resource_allocation"
    PERFORMANCE_TUNING = "performance_tuning"
    CAPACITY_SCALING = "capacity_scaling"
    ALERT_THRESHOLDS = "alert_thresholds"
    SYSTEM_SETTINGS = "system_settings"


@dataclass
class MLMetric:
    """One observation of one metric of one component, at its own (timezone-aware) time."""

    timestamp: datetime
    component_type: ComponentType
    component_id: str
    metric_name: str
    value: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnomalyResult:
    """One detection: what was seen, what was expected, how unusual and how sure."""

    timestamp: datetime
    component_type: ComponentType
    component_id: str
    metric_name: str
    anomaly_type: AnomalyType
    anomaly_score: float
    confidence: float
    severity: AlertSeverity
    actual_value: float
    expected_value: float
    deviation: float
    threshold: float
    context: dict[str, Any] = field(default_factory=dict)
    recommendations: list[str] = field(default_factory=list)


@dataclass
class PredictionResult:
    """A forecast of one metric at one horizon, with its interval at ``confidence_level``."""

    timestamp: datetime
    component_type: ComponentType
    component_id: str
    metric_name: str
    prediction_type: PredictionType
    predicted_value: float
    confidence_interval: tuple[float, float]
    confidence_level: float
    horizon_minutes: float
    model_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class AlertCluster:
    """Alerts that belong to one incident, with its most likely root causes first."""

    cluster_id: str
    cluster_type: str
    alerts: list[dict[str, Any]]
    common_attributes: dict[str, Any] = field(default_factory=dict)
    root_cause_candidates: list[str] = field(default_factory=list)
    confidence: float = 0.0
    priority_score: float = 0.0
    impact_assessment: str = ""
    first_alert_time: datetime = field(default_factory=_now)
    last_alert_time: datetime = field(default_factory=_now)
    duration_minutes: float = 0.0


@dataclass
class OptimizationRecommendation:
    """One piece of configuration advice, with what it should deliver and how sure it is."""

    recommendation_id: str
    category: OptimizationCategory
    title: str
    description: str
    current_value: Any
    recommended_value: Any
    expected_improvement: float
    confidence: float
    implementation_steps: list[str] = field(default_factory=list)
    estimated_effort: str = "low"
    risk_level: str = "low"
    component_type: ComponentType = ComponentType.SYSTEM
    priority: int = 1
    created_at: datetime = field(default_factory=_now)
    expires_at: datetime | None = None
