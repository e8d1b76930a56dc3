"""ML analytics: anomaly detection, forecasting, alert intelligence and optimization.

Everything loads lazily, so ``import allele.observability.ml_analytics`` costs nothing until a
name is used; the estimators need the ``analytics`` extra (scikit-learn), the LSTM the ``torch``
extra. Each section below is owned by one module.
"""

from __future__ import annotations

from allele._lazy import lazy_namespace

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
    "AnomalyDetectionConfig": "allele.observability.ml_analytics.anomaly.detectors",
    "IsolationForestDetector": "allele.observability.ml_analytics.anomaly.detectors",
    "OneClassSVMDetector": "allele.observability.ml_analytics.anomaly.detectors",
    "EnsembleDetector": "allele.observability.ml_analytics.anomaly.detectors",
    "ResidualNoveltyDetector": "allele.observability.ml_analytics.anomaly.streaming",
    "ResidualDetector": "allele.observability.ml_analytics.anomaly.streaming",
    "PatternNoveltyDetector": "allele.observability.ml_analytics.anomaly.streaming",
    "classify_anomaly": "allele.observability.ml_analytics.anomaly.classify",
    "sparkline": "allele.observability.ml_analytics.charts",
    "series_chart_html": "allele.observability.ml_analytics.charts",
    # forecasting and prediction (prediction/)
    "forecast": "allele.observability.ml_analytics.prediction.forecast",
    "Forecast": "allele.observability.ml_analytics.prediction.forecast",
    "StatisticalForecaster": "allele.observability.ml_analytics.prediction.forecast",
    "PredictiveAnalyticsConfig": "allele.observability.ml_analytics.prediction.config",
    "ARIMAPredictor": "allele.observability.ml_analytics.prediction.predictors",
    "PerformancePredictor": "allele.observability.ml_analytics.prediction.predictors",
    "ARIMA": "allele.observability.ml_analytics.prediction.arima",
    "PredictiveAnalyzer": "allele.observability.ml_analytics.prediction.analyzer",
    "SeriesAnalysis": "allele.observability.ml_analytics.prediction.analyzer",
    "TimeSeriesForecaster": "allele.observability.ml_analytics.prediction.forecaster",
    "LSTMForecaster": "allele.observability.ml_analytics.prediction.lstm",
    "CapacityPlanner": "allele.observability.ml_analytics.prediction.capacity",
    "ThresholdCrossing": "allele.observability.ml_analytics.prediction.capacity",
    "time_to_threshold": "allele.observability.ml_analytics.prediction.capacity",
    # alert intelligence (alert_intelligence/)
    "AlertIntelligenceConfig": "allele.observability.ml_analytics.alert_intelligence.config",
    "IntelligentAlertManager": "allele.observability.ml_analytics.alert_intelligence.manager",
    "AlertCorrelator": "allele.observability.ml_analytics.alert_intelligence.correlator",
    # optimization (optimization/)
    "OptimizationEngineConfig": "allele.observability.ml_analytics.optimization.config",
    "OptimizationEngine": "allele.observability.ml_analytics.optimization.engine",
    "ConfigurationRecommender": "allele.observability.ml_analytics.optimization.recommender",
    "PerformanceOptimizer": "allele.observability.ml_analytics.optimization.performance",
    "SuiteOptimizer": "allele.observability.ml_analytics.optimization.search",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, globals(), _LAZY)
