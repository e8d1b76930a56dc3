"""Capacity advice: when a resource series will reach its limit, from its forecast.

The crossing times come from the forecasting package's capacity planning
(``prediction.capacity.time_to_threshold``): the mean forecast's crossing is the expected time,
the crossings of its interval's bounds the earliest and the latest. How likely the limit is
reached within the horizon follows from where the horizon falls among them: past the latest
crossing, the interval's upper quantile (97.5 % at a 95 % level); past the expected one, half;
past only the earliest, the lower quantile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from allele.observability.ml_analytics.optimization.history import MetricSeries

# Longest forecast the advice asks for: past this many steps a forecast says little anyway.
MAX_STEPS = 2000


@dataclass
class CapacityAdvice:
    """When ``series`` reaches ``limit``: hours from its last point (None = not in horizon)."""

    series: MetricSeries
    limit: float
    horizon_hours: float
    earliest_hours: float | None
    expected_hours: float | None
    latest_hours: float | None
    probability: float  # that the series reaches the limit within the horizon
    at_risk_share: float  # share of the horizon after the earliest crossing
    peak_upper: float  # the forecast's upper bound at its highest: a limit never reached


def advise_capacity(
    series: MetricSeries, limit: float, horizon_hours: float, level: float = 0.95
) -> CapacityAdvice | None:
    """The capacity advice for one series, or None when it has too little history."""
    from allele.observability.ml_analytics import time_to_threshold
    from allele.observability.ml_analytics.prediction.arima import ARIMA

    spacing = series.spacing
    if len(series.values) < 20 or not math.isfinite(spacing) or spacing <= 0:
        return None
    steps = int(min(MAX_STEPS, max(1, math.ceil(horizon_hours * 3600.0 / spacing))))
    step_hours = spacing / 3600.0
    crossing = time_to_threshold(series.values, limit, max_steps=steps, level=level)

    def hours(value: float) -> float | None:
        return None if not math.isfinite(value) else float(value) * step_hours

    horizon = steps * step_hours
    if crossing.already or crossing.latest <= steps:
        probability = (1.0 + crossing.level) / 2.0
    elif crossing.steps <= steps:
        probability = 0.5
    elif crossing.earliest <= steps:
        probability = (1.0 - crossing.level) / 2.0
    else:
        probability = 0.0
    earliest = 0.0 if crossing.already else crossing.earliest
    at_risk = max(0.0, 1.0 - earliest / steps) if math.isfinite(earliest) else 0.0
    # The same model time_to_threshold forecasts with: its upper bound is the limit to ask for.
    upper = ARIMA(level=level).fit(series.values).predict(steps).upper
    return CapacityAdvice(
        series=series,
        limit=float(limit),
        horizon_hours=horizon,
        earliest_hours=hours(earliest),
        expected_hours=hours(crossing.steps),
        latest_hours=hours(crossing.latest),
        probability=probability,
        at_risk_share=at_risk,
        peak_upper=float(max(upper)),
    )
