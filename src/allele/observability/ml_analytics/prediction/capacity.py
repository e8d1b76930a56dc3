"""Capacity planning: when a series will cross a threshold, with an interval.

The trend model is the ARIMA of ``arima`` (with one difference it carries a drift, a linear
trend, which a leak or a growing load needs; the forecast combination is built for short
horizons and flattens trends). The crossing step is where the mean forecast first reaches the
threshold; the interval is where the two bounds of the forecast's interval at ``level`` first
reach it: for a rising series the upper bound crosses first (the earliest plausible time) and
the lower bound last (the latest). ``inf`` means "not within ``max_steps``".
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

from allele.errors import ValidationError, check_int, check_real
from allele.observability.ml_analytics.prediction.arima import ARIMA
from allele.observability.ml_analytics.prediction.config import PredictiveAnalyticsConfig
from allele.observability.ml_analytics.prediction.forecast import as_series
from allele.observability.ml_analytics.prediction.series import (
    MetricSeries,
    SeriesKey,
    find_series,
    group_metrics,
)
from allele.observability.ml_analytics.types import PredictionResult, PredictionType
from allele.observability.types import ComponentType


@dataclass(frozen=True)
class ThresholdCrossing:
    """When a series reaches ``threshold`` going ``direction`` ("up" or "down"), in steps after
    its last sample: ``steps`` by the mean forecast, ``[earliest, latest]`` by the interval at
    ``level``. ``math.inf`` means not within the ``max_steps`` looked at; ``already`` that the
    last sample is past the threshold (then every step is 0)."""

    threshold: float
    direction: str
    steps: float
    earliest: float
    latest: float
    level: float
    already: bool = False

    @property
    def will_cross(self) -> bool:
        """True when the mean forecast reaches the threshold within the steps looked at."""
        return math.isfinite(self.steps)


def _first_step(reached: NDArray[np.bool_]) -> float:
    hits = np.flatnonzero(reached)
    return float(hits[0] + 1) if len(hits) else math.inf


def time_to_threshold(
    y: ArrayLike,
    threshold: float,
    *,
    direction: str | None = None,
    max_steps: int = 2000,
    level: float = 0.95,
    season_length: int | None = None,
) -> ThresholdCrossing:
    """When ``y`` will reach ``threshold``, in steps after its last sample, with an interval.

    ``direction`` is "up" (the default when the last value is below the threshold) or "down".

    >>> import numpy as np
    >>> y = np.linspace(0, 50, 200) + np.random.default_rng(0).normal(0, 1, 200)
    >>> crossing = time_to_threshold(y, 60.0)
    >>> crossing.earliest <= crossing.steps <= crossing.latest
    True
    """
    values = as_series(y, min_length=8)
    threshold = check_real("threshold", threshold, -math.inf, math.inf)
    max_steps = check_int("max_steps", max_steps, 1, 100_000)
    if direction is None:
        direction = "up" if values[-1] < threshold else "down"
    if direction not in ("up", "down"):
        raise ValidationError(f"direction must be 'up' or 'down', got {direction!r}")
    sign = 1.0 if direction == "up" else -1.0
    if sign * (values[-1] - threshold) >= 0:
        return ThresholdCrossing(threshold, direction, 0.0, 0.0, 0.0, level, already=True)
    forecast = ARIMA(season_length=season_length, level=level).fit(values).predict(max_steps)
    far, near = (forecast.upper, forecast.lower) if sign > 0 else (forecast.lower, forecast.upper)
    return ThresholdCrossing(
        threshold=threshold,
        direction=direction,
        steps=_first_step(sign * (forecast.mean - threshold) >= 0),
        earliest=_first_step(sign * (far - threshold) >= 0),
        latest=_first_step(sign * (near - threshold) >= 0),
        level=forecast.level,
    )


class CapacityPlanner:
    """Capacity planning for metric series: ``await plan(component_type=..., metric_name=...,
    threshold=...)`` gives a CAPACITY_PLANNING ``PredictionResult`` whose ``predicted_value`` is
    the minutes until the threshold is reached (``inf``: not within ``max_steps`` samples),
    ``confidence_interval`` the (earliest, latest) minutes and ``timestamp`` the expected time.
    """

    def __init__(self, config: PredictiveAnalyticsConfig | None = None, max_steps: int = 2000):
        self.config = config or PredictiveAnalyticsConfig()
        self.max_steps = check_int("max_steps", max_steps, 1, 100_000)
        self.series_: dict[SeriesKey, MetricSeries] = {}

    def fit(self, time_series_data: object) -> CapacityPlanner:
        """Keep the latest ``max_history`` samples of every series (the model is fitted per
        plan, because the threshold and direction belong to the question)."""
        self.series_ = group_metrics(time_series_data, self.config.max_history)  # type: ignore[arg-type]
        return self

    async def train(self, time_series_data: object) -> CapacityPlanner:
        """``fit`` in a worker thread."""
        return await asyncio.to_thread(self.fit, time_series_data)

    def plan_now(
        self,
        component_type: ComponentType | str,
        metric_name: str,
        threshold: float,
        component_id: str | None = None,
        direction: str | None = None,
    ) -> PredictionResult:
        """The capacity prediction for one series (synchronous)."""
        series = find_series(self.series_, component_type, metric_name, component_id)
        crossing = time_to_threshold(
            series.values,
            threshold,
            direction=direction,
            max_steps=self.max_steps,
            level=self.config.confidence_level,
            season_length=self.config.season_length,
        )
        minutes_per_step = series.spacing_seconds / 60.0
        expected = crossing.steps * minutes_per_step
        when: datetime = series.time_after(crossing.steps if crossing.will_cross else 0.0)
        return PredictionResult(
            timestamp=when,
            component_type=series.component_type,
            component_id=series.component_id,
            metric_name=series.metric_name,
            prediction_type=PredictionType.CAPACITY_PLANNING,
            predicted_value=expected,
            confidence_interval=(
                crossing.earliest * minutes_per_step,
                crossing.latest * minutes_per_step,
            ),
            confidence_level=crossing.level,
            horizon_minutes=self.max_steps * minutes_per_step,
            model_name="arima",
            metadata={
                "threshold": crossing.threshold,
                "direction": crossing.direction,
                "already_crossed": crossing.already,
                "will_cross": crossing.will_cross,
            },
        )

    async def plan(
        self,
        component_type: ComponentType | str,
        metric_name: str,
        threshold: float,
        component_id: str | None = None,
        direction: str | None = None,
    ) -> PredictionResult:
        """``plan_now`` in a worker thread."""
        return await asyncio.to_thread(
            self.plan_now, component_type, metric_name, threshold, component_id, direction
        )
