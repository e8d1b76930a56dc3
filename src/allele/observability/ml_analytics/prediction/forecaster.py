"""``TimeSeriesForecaster``: one series, several models (ARIMA, the LSTM, the combination), and
an honest comparison of them on rolling origins of the series itself.

``evaluate`` refits every model at each origin on the data before it only and scores the next
``horizon`` values by MASE, so the models are compared on forecasts none of them has seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from allele.errors import ValidationError, check_int
from allele.observability.ml_analytics.prediction.arima import ARIMA
from allele.observability.ml_analytics.prediction.config import PredictiveAnalyticsConfig
from allele.observability.ml_analytics.prediction.forecast import (
    Forecast,
    StatisticalForecaster,
    as_series,
)
from allele.observability.ml_analytics.prediction.predictors import Estimator


def _builders(
    config: PredictiveAnalyticsConfig, horizon: int
) -> dict[str, Callable[[], Estimator]]:
    level, season = config.confidence_level, config.season_length

    def lstm() -> Estimator:
        from allele.observability.ml_analytics.prediction.lstm import LSTMForecaster

        return LSTMForecaster(
            horizon=horizon,
            season_length=season,
            level=level,
            window=config.lstm_window,
            hidden_size=config.lstm_hidden_size,
            epochs=config.lstm_epochs,
            seed=config.seed,
        )

    return {
        "arima": lambda: ARIMA(season_length=season, level=level),
        "lstm": lstm,
        "combination": lambda: StatisticalForecaster(season, level),
    }


def mase(actual: np.ndarray, mean: np.ndarray, history: np.ndarray, period: int) -> float:
    """Mean absolute error over the in-sample (seasonal) naive error of ``history``."""
    lag = period if len(history) > period else 1
    scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    return float(np.mean(np.abs(actual - mean))) / scale if scale > 0 else float("nan")


class TimeSeriesForecaster:
    """Forecasts one series with each of ``models`` ("arima", "lstm", "combination").

    The LSTM needs the ``torch`` extra; its head is ``horizon`` steps wide.
    """

    def __init__(
        self,
        config: PredictiveAnalyticsConfig | None = None,
        models: Sequence[str] = ("arima", "lstm"),
        horizon: int = 24,
    ) -> None:
        self.config = config or PredictiveAnalyticsConfig()
        self.horizon = check_int("horizon", horizon, 1, 100_000)
        known = _builders(self.config, self.horizon)
        unknown = [m for m in models if m not in known]
        if unknown or not models:
            raise ValidationError(f"models must be among {sorted(known)}, got {list(models)}")
        self.models = tuple(models)

    def fit(self, y: ArrayLike) -> TimeSeriesForecaster:
        """Fit every model on ``y``."""
        values = as_series(y)
        builders = _builders(self.config, self.horizon)
        self.fitted_ = {name: builders[name]().fit(values) for name in self.models}
        return self

    def predict(self, horizon: int | None = None) -> dict[str, Forecast]:
        """Each model's forecast (``horizon`` defaults to the forecaster's)."""
        if not hasattr(self, "fitted_"):
            raise ValidationError("this forecaster is not fitted yet: call fit(y) first")
        steps = self.horizon if horizon is None else check_int("horizon", horizon, 1, self.horizon)
        return {
            name: model.predict(steps, self.config.confidence_level)
            for name, model in self.fitted_.items()
        }

    def evaluate(self, y: ArrayLike, origins: int = 3) -> dict[str, float]:
        """Each model's mean MASE over ``origins`` rolling origins at the end of ``y``."""
        values = as_series(y, min_length=self.horizon * (origins + 1) + 10)
        period = self.config.season_length or 1
        builders = _builders(self.config, self.horizon)
        scores: dict[str, list[float]] = {name: [] for name in self.models}
        ends = [len(values) - self.horizon * k for k in range(origins, 0, -1)]
        for end in ends:
            history = values[max(0, end - self.config.max_history) : end]
            actual = values[end : end + self.horizon]
            for name in self.models:
                f = builders[name]().fit(history).predict(self.horizon)
                scores[name].append(mase(actual, f.mean, history, period))
        return {name: float(np.nanmean(s)) for name, s in scores.items()}

    async def train(self, y: ArrayLike) -> TimeSeriesForecaster:
        """``fit`` in a worker thread."""
        return await asyncio.to_thread(self.fit, y)

    async def forecast(self, horizon: int | None = None) -> dict[str, Forecast]:
        """``predict`` in a worker thread."""
        return await asyncio.to_thread(self.predict, horizon)
