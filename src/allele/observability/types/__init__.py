"""The vocabulary of observability, one module per concept; everything is importable from here.

* ``series``      metric kinds, series keys, drained batches, name / label / value checks
* ``components``  component kinds, health, performance and the component snapshot
* ``alerts``      alert rules, alerts, severities, states, operators and aggregations
* ``system``      a sample of the machine, the process and the GPUs
* ``values``      a single validated metric value, a benchmark's raw timings
* ``settings``    the plain settings views (monitoring, dashboard, matrix benchmark, MLflow)
* ``persisted``   the JSON-ready ``to_dict`` / ``from_dict`` every persisted type shares
"""

from __future__ import annotations

from allele.observability.types.alerts import (
    Aggregation,
    Alert,
    AlertRule,
    AlertSeverity,
    AlertState,
    Operator,
)
from allele.observability.types.components import (
    ComponentMetrics,
    ComponentType,
    HealthStatus,
    PerformanceMetrics,
)
from allele.observability.types.persisted import Persisted
from allele.observability.types.series import (
    RESERVED_LABELS,
    BatchStats,
    MetricType,
    SeriesBatch,
    SeriesKey,
    ValueStatistics,
    check_user_labels,
    normalize_labels,
    validate_metric_name,
    value_problem,
    value_statistics,
)
from allele.observability.types.settings import (
    DashboardConfig,
    MatrixBenchmarkConfig,
    MLflowConfig,
    MonitoringConfig,
)
from allele.observability.types.system import GPUDevice, GPUStatus, SystemMetrics
from allele.observability.types.values import BenchmarkResult, MetricValue

__all__ = [
    "RESERVED_LABELS",
    "Aggregation",
    "Alert",
    "AlertRule",
    "AlertSeverity",
    "AlertState",
    "BatchStats",
    "BenchmarkResult",
    "ComponentMetrics",
    "ComponentType",
    "DashboardConfig",
    "GPUDevice",
    "GPUStatus",
    "HealthStatus",
    "MLflowConfig",
    "MatrixBenchmarkConfig",
    "MetricType",
    "MetricValue",
    "MonitoringConfig",
    "Operator",
    "PerformanceMetrics",
    "Persisted",
    "SeriesBatch",
    "SeriesKey",
    "SystemMetrics",
    "ValueStatistics",
    "check_user_labels",
    "normalize_labels",
    "validate_metric_name",
    "value_problem",
    "value_statistics",
]
