"""The design documents' predictors: ``ARIMAPredictor`` (one horizon) and
``PerformancePredictor`` (several horizons at once, with the package's best model).

Both ``await train(time_series_data)`` on ``MLMetric`` observations (a list, or a mapping of
lists) and fit one model per metric; ``await predict(component_type=..., metric_name=...)``
returns ``PredictionResult``. The async methods are thin wrappers: fitting runs in a worker
thread (``asyncio.to_thread``), so a large training set does not stall the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from allele.errors import ValidationError
from allele.observability.ml_analytics.prediction.arima import ARIMA
from allele.observability.ml_analytics.prediction.config import PredictiveAnalyticsConfig
from allele.observability.ml_analytics.prediction.forecast import Forecast, StatisticalForecaster
from allele.observability.ml_analytics.prediction.series import (
    MetricSeries,
    SeriesKey,
    find_series,
    group_metrics,
)
from allele.observability.ml_analytics.types import MLMetric, PredictionResult, PredictionType
from allele.observability.types import ComponentType

# Words that make a metric a resource (its forecast a RESOURCE_USAGE prediction).
_RESOURCE_WORDS = ("cpu", "memory", "mem_", "rss", "disk", "gpu", "bytes", "usage", "utilization")

TimeSeriesData = Iterable[MLMetric] | Mapping[Any, Iterable[MLMetric]]


class Estimator(Protocol):
    def fit(self, y: Any) -> Any: ...
    def predict(self, horizon: int, level: float | None = None) -> Forecast: ...


def prediction_type_for(metric_name: str) -> PredictionType:
    """RESOURCE_USAGE for a resource metric (CPU, memory, disk...), else PERFORMANCE_FORECAST."""
    name = metric_name.lower()
    if any(word in name for word in _RESOURCE_WORDS):
        return PredictionType.RESOURCE_USAGE
    return PredictionType.PERFORMANCE_FORECAST


def to_result(
    series: MetricSeries,
    forecast: Forecast,
    steps: int,
    minutes: float,
    prediction_type: PredictionType,
    model_name: str,
) -> PredictionResult:
    """The forecast's step ``steps`` as a PredictionResult stamped with its target time."""
    j = steps - 1
    return PredictionResult(
        timestamp=series.time_after(steps),
        component_type=series.component_type,
        component_id=series.component_id,
        metric_name=series.metric_name,
        prediction_type=prediction_type,
        predicted_value=float(forecast.mean[j]),
        confidence_interval=(float(forecast.lower[j]), float(forecast.upper[j])),
        confidence_level=forecast.level,
        horizon_minutes=minutes,
        model_name=model_name,
        metadata={"steps": steps, "season_length": forecast.season_length, "model": forecast.model},
    )


class SeriesPredictor:
    """Fits one model per metric series; the subclasses choose the model."""

    model_name = ""

    def __init__(self, config: PredictiveAnalyticsConfig | None = None) -> None:
        self.config = config or PredictiveAnalyticsConfig()
        self.series_: dict[SeriesKey, MetricSeries] = {}
        self.models_: dict[SeriesKey, Estimator] = {}

    def _model(self) -> Estimator:
        raise NotImplementedError

    def fit(self, time_series_data: TimeSeriesData) -> SeriesPredictor:
        """Fit a model to every series with at least ``min_training_samples`` samples."""
        series = group_metrics(time_series_data, self.config.max_history)
        enough = {
            k: s for k, s in series.items() if len(s.values) >= self.config.min_training_samples
        }
        if not enough:
            longest = max((len(s.values) for s in series.values()), default=0)
            raise ValidationError(
                f"training needs a series with at least {self.config.min_training_samples} "
                f"samples (min_training_samples); the longest has {longest}"
            )
        models = {key: self._model().fit(s.values) for key, s in enough.items()}
        self.series_, self.models_ = enough, models
        return self

    async def train(self, time_series_data: TimeSeriesData) -> SeriesPredictor:
        """``fit`` in a worker thread."""
        return await asyncio.to_thread(self.fit, time_series_data)

    def _forecast(
        self,
        component_type: ComponentType | str,
        metric_name: str,
        component_id: str | None,
        minutes: Iterable[float],
    ) -> list[PredictionResult]:
        series = find_series(self.series_, component_type, metric_name, component_id)
        key = (series.component_type, series.component_id, series.metric_name)
        wanted = [(series.steps(m), float(m)) for m in minutes]
        forecast = self.models_[key].predict(
            max(s for s, _ in wanted), self.config.confidence_level
        )
        kind = prediction_type_for(metric_name)
        return [to_result(series, forecast, s, m, kind, self.model_name) for s, m in wanted]


class ARIMAPredictor(SeriesPredictor):
    """One ARIMA model per metric (orders chosen automatically, season removed beforehand).

    ``await predict(component_type=..., metric_name=...)`` forecasts
    ``prediction_horizon_minutes`` ahead (or ``horizon_minutes``).
    """

    model_name = "arima"

    def _model(self) -> Estimator:
        return ARIMA(season_length=self.config.season_length, level=self.config.confidence_level)

    def predict_now(
        self,
        component_type: ComponentType | str,
        metric_name: str,
        component_id: str | None = None,
        horizon_minutes: float | None = None,
    ) -> PredictionResult:
        """The prediction at one horizon (synchronous)."""
        minutes = (
            self.config.prediction_horizon_minutes if horizon_minutes is None else horizon_minutes
        )
        return self._forecast(component_type, metric_name, component_id, [minutes])[0]

    async def predict(
        self,
        component_type: ComponentType | str,
        metric_name: str,
        component_id: str | None = None,
        horizon_minutes: float | None = None,
    ) -> PredictionResult:
        """``predict_now`` in a worker thread."""
        return await asyncio.to_thread(
            self.predict_now, component_type, metric_name, component_id, horizon_minutes
        )


class PerformancePredictor(SeriesPredictor):
    """Predictions at several horizons at once (``config.horizons_minutes``), from the
    package's forecast combination (``forecast``), which the NAB benchmark ranks best."""

    model_name = "combination"

    def __init__(
        self,
        config: PredictiveAnalyticsConfig | None = None,
        model: Callable[[PredictiveAnalyticsConfig], Estimator] | None = None,
    ) -> None:
        super().__init__(config)
        self.model = model

    def _model(self) -> Estimator:
        if self.model is not None:
            return self.model(self.config)
        return StatisticalForecaster(self.config.season_length, self.config.confidence_level)

    def predict_now(
        self,
        component_type: ComponentType | str,
        metric_name: str,
        component_id: str | None = None,
        horizons_minutes: Iterable[float] | None = None,
    ) -> list[PredictionResult]:
        """One prediction per horizon, nearest first (synchronous)."""
        minutes = sorted(horizons_minutes or self.config.horizons_minutes)
        return self._forecast(component_type, metric_name, component_id, minutes)

    async def predict(
        self,
        component_type: ComponentType | str,
        metric_name: str,
        component_id: str | None = None,
        horizons_minutes: Iterable[float] | None = None,
    ) -> list[PredictionResult]:
        """``predict_now`` in a worker thread."""
        return await asyncio.to_thread(
            self.predict_now, component_type, metric_name, component_id, horizons_minutes
        )
