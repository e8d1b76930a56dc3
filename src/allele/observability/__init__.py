"""Observability: metrics, the engine, alerts, persistence and exports for Allele workloads.

The main entry points load lazily (``import allele.observability`` stays cheap):

* ``get_observability_engine()`` -- the process-wide ``ObservabilityEngine``; ``start()`` it,
  ``register_component(component_id, ComponentType.X)`` to get a ``ComponentMetricsCollector``.
* ``MetricsCollector`` -- handles for recording (``counter``, ``gauge``, ``histogram``,
  ``timer``), ``fold`` (once per engine tick), ``summary``/``query`` for reading what the last
  fold left, ``drain`` for the store.
* ``AlertManager``, ``AlertRule``, ``Alert`` -- rules over windows and the alert lifecycle.
* ``get_settings()`` / ``ObservabilitySettings`` -- the ALLELE_* settings.
"""

from __future__ import annotations

from allele._lazy import lazy_namespace

_LAZY = {
    "ObservabilityEngine": "allele.observability.engine",
    "get_observability_engine": "allele.observability.engine",
    "reset_observability_engine": "allele.observability.engine",
    "MetricsCollector": "allele.observability.collector",
    "ComponentMetricsCollector": "allele.observability.collector",
    "Summary": "allele.observability.collector",
    "AlertManager": "allele.observability.alerts",
    "ObservabilitySettings": "allele.observability.config",
    "get_settings": "allele.observability.config",
    "default_alert_rules": "allele.observability.config",
    "Clock": "allele.observability.clock",
    "SystemClock": "allele.observability.clock",
    "ManualClock": "allele.observability.clock",
    "LogNotifier": "allele.observability.notify",
    "ConsoleNotifier": "allele.observability.notify",
    "WebhookNotifier": "allele.observability.notify",
    "Alert": "allele.observability.types",
    "BenchmarkResult": "allele.observability.types",
    "DashboardConfig": "allele.observability.types",
    "MatrixBenchmarkConfig": "allele.observability.types",
    "MetricValue": "allele.observability.types",
    "MLflowConfig": "allele.observability.types",
    "MonitoringConfig": "allele.observability.types",
    "AlertRule": "allele.observability.types",
    "AlertSeverity": "allele.observability.types",
    "AlertState": "allele.observability.types",
    "Aggregation": "allele.observability.types",
    "ComponentMetrics": "allele.observability.types",
    "ComponentType": "allele.observability.types",
    "HealthStatus": "allele.observability.types",
    "MetricType": "allele.observability.types",
    "Operator": "allele.observability.types",
    "PerformanceMetrics": "allele.observability.types",
    "SeriesBatch": "allele.observability.types",
    "SeriesKey": "allele.observability.types",
    "SystemMetrics": "allele.observability.types",
    # CMR model (needs the torch extra)
    "ObservableCMRModel": "allele.observability.integration.cmr",
    "observe_cmr": "allele.observability.integration.cmr",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, globals(), _LAZY)
