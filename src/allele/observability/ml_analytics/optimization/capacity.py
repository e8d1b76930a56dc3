"""Capacity advice: when a resource series will reach its limit, from its forecast.

The series is forecast over the horizon (``ml_analytics.forecast``, with its interval); the
crossing times of the forecast's upper bound, mean and lower bound against the limit give the
earliest, the expected and the latest time the limit is reached. How sure the advice is, is the
forecast's own probability that the series exceeds the limit within the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

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
    peak_upper: float  # the forecast's upper bound at its highest over the horizon
    probability: float  # that the series exceeds the limit within the horizon
    at_risk_share: float  # share of the horizon whose upper bound is beyond the limit


def _first_crossing(values: np.ndarray, limit: float, step_hours: float) -> float | None:
    above = np.flatnonzero(values >= limit)
    return None if len(above) == 0 else float((above[0] + 1) * step_hours)


def advise_capacity(
    series: MetricSeries, limit: float, horizon_hours: float, level: float = 0.95
) -> CapacityAdvice | None:
    """The capacity advice for one series, or None when it has too little history."""
    from allele.observability.ml_analytics import forecast

    spacing = series.spacing
    if len(series.values) < 20 or not math.isfinite(spacing) or spacing <= 0:
        return None
    steps = int(min(MAX_STEPS, max(1, math.ceil(horizon_hours * 3600.0 / spacing))))
    step_hours = spacing / 3600.0
    result = forecast(series.values, steps, level=level)
    mean = np.asarray(result.mean, dtype=float)
    lower = np.asarray(result.lower, dtype=float)
    upper = np.asarray(result.upper, dtype=float)
    z = float(norm.ppf(0.5 + level / 2.0))
    sd = np.maximum((upper - lower) / (2.0 * z), 1e-12)
    peak = int(np.argmax(mean))
    probability = float(norm.sf((limit - mean[peak]) / sd[peak]))
    return CapacityAdvice(
        series=series,
        limit=float(limit),
        horizon_hours=steps * step_hours,
        earliest_hours=_first_crossing(upper, limit, step_hours),
        expected_hours=_first_crossing(mean, limit, step_hours),
        latest_hours=_first_crossing(lower, limit, step_hours),
        peak_upper=float(upper.max()),
        probability=max(probability, float(np.mean(mean >= limit))),
        at_risk_share=float(np.mean(upper >= limit)),
    )
