"""The optimization engine: configuration advice learned from what Allele measured.

* ``SuiteOptimizer`` -- closed-loop search over a suite's grid (``ask`` / ``tell`` / ``best``).
* ``ConfigurationRecommender`` -- a surrogate over stored suite runs: recommended parameters
  beside the current ones, with the expected improvement and its interval.
* ``PerformanceOptimizer`` -- worker counts from measured scaling, monitoring intervals from
  measured overhead.
* ``OptimizationEngine`` -- all of it, plus alert thresholds, capacity and rule files, ranked.
"""

from __future__ import annotations

from allele._lazy import lazy_namespace

_LAZY = {
    "SuiteOptimizer": "allele.observability.ml_analytics.optimization.search",
    "Suggestion": "allele.observability.ml_analytics.optimization.search",
    "ParameterSpace": "allele.observability.ml_analytics.optimization.space",
    "GaussianProcess": "allele.observability.ml_analytics.optimization.surrogate",
    "ConfigurationRecommender": "allele.observability.ml_analytics.optimization.recommender",
    "ConfigurationAdvice": "allele.observability.ml_analytics.optimization.recommender",
    "PerformanceOptimizer": "allele.observability.ml_analytics.optimization.performance",
    "OptimizationEngine": "allele.observability.ml_analytics.optimization.engine",
    "OptimizationEngineConfig": "allele.observability.ml_analytics.optimization.config",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, globals(), _LAZY)
