"""ML analytics: anomaly detection, forecasting, alert intelligence and optimization.

Everything loads lazily, so ``import allele.observability.ml_analytics`` costs nothing until a
name is used; the estimators need the ``analytics`` extra (scikit-learn), the LSTM the ``torch``
extra. Each section below is owned by one module.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    # the shared vocabulary
    "MLMetric": "allele.observability.ml_analytics.types",
    "AnomalyType": "allele.observability.ml_analytics.types",
    "AnomalyResult": "allele.observability.ml_analytics.types",
    "PredictionType": "allele.observability.ml_analytics.types",
    "PredictionResult": "allele.observability.ml_analytics.types",
    "AlertCluster": "allele.observability.ml_analytics.types",
    "OptimizationCategory": "allele.observability.ml_analytics.types",
    "OptimizationRecommendation": "allele.observability.ml_analytics.types",
    "ComponentType": "allele.observability.types",
    "AlertSeverity": "allele.observability.types",
    # anomaly detection (anomaly/)
    # forecasting and prediction (prediction/)
    # alert intelligence (alert_intelligence/)
    # optimization (optimization/)
    "OptimizationEngineConfig": "allele.observability.ml_analytics.optimization.config",
    "OptimizationEngine": "allele.observability.ml_analytics.optimization.engine",
    "ConfigurationRecommender": "allele.observability.ml_analytics.optimization.recommender",
    "PerformanceOptimizer": "allele.observability.ml_analytics.optimization.performance",
    "SuiteOptimizer": "allele.observability.ml_analytics.optimization.search",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(
            f"module 'allele.observability.ml_analytics' has no attribute {name!r}"
        )
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
