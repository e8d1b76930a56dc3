"""``PredictiveAnalyzer``: a series' trend (with its significance), seasonality and change points.

- Trend: the Theil-Sen slope (the median of pairwise slopes, robust to spikes) and the
  Mann-Kendall test, its variance corrected for lag-1 autocorrelation (monitoring series are
  autocorrelated, which otherwise makes almost any drift "significant").
- Seasonality: the period from the autocorrelation (``season.detect_season``) and its strength,
  ``1 - var(remainder) / var(season + remainder)`` (Wang, Smith and Hyndman 2006).
- Change points: binary segmentation on the mean of the seasonally adjusted series; a split is
  kept when it lowers the squared error by more than a BIC-like penalty ``3 sigma^2 log n``,
  with sigma estimated from the differences so that the shifts themselves do not inflate it.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from allele.observability.ml_analytics.prediction.config import PredictiveAnalyticsConfig
from allele.observability.ml_analytics.prediction.forecast import as_series
from allele.observability.ml_analytics.prediction.season import (
    SeasonalProfile,
    detect_season,
    is_seasonal,
)
from allele.observability.ml_analytics.prediction.series import find_series, group_metrics
from allele.observability.types import ComponentType

_MAX_PAIRS_SERIES = 2000  # Theil-Sen and Mann-Kendall are O(n^2): thin longer series first


@dataclass(frozen=True)
class Trend:
    """Slope per sample, the Mann-Kendall p-value, and the verdict at ``alpha``."""

    slope: float
    p_value: float
    direction: str  # "increasing", "decreasing" or "none" (not significant)
    significant: bool


@dataclass(frozen=True)
class Seasonality:
    """The detected period in samples (1: none) and its strength in [0, 1]."""

    period: int
    strength: float


@dataclass(frozen=True)
class SeriesAnalysis:
    """What ``PredictiveAnalyzer`` finds in one series; ``change_points`` are the indices where
    a new mean level starts (and ``change_times`` their times, when the series had times)."""

    trend: Trend
    seasonality: Seasonality
    change_points: list[int]
    change_times: list[datetime] = field(default_factory=list)


def trend(y: NDArray[np.float64], alpha: float = 0.05) -> Trend:
    """Theil-Sen slope and the autocorrelation-corrected Mann-Kendall test."""
    step = max(1, math.ceil(len(y) / _MAX_PAIRS_SERIES))
    x = y[::step]
    n = len(x)
    i, j = np.triu_indices(n, k=1)
    diffs = x[j] - x[i]
    slope = float(np.median(diffs / (j - i))) / step
    s = float(np.sign(diffs).sum())
    variance = n * (n - 1) * (2 * n + 5) / 18.0
    detrended = x - slope * step * np.arange(n)
    centred = detrended - detrended.mean()
    denom = float(centred @ centred)
    rho = float(centred[1:] @ centred[:-1]) / denom if denom > 0 else 0.0
    rho = min(max(rho, 0.0), 0.99)
    variance *= (1 + rho) / (1 - rho)  # fewer independent samples than n
    z = 0.0 if s == 0 else (s - math.copysign(1.0, s)) / math.sqrt(variance)
    p = float(2 * norm.sf(abs(z)))
    significant = p < alpha and slope != 0
    direction = "none" if not significant else ("increasing" if slope > 0 else "decreasing")
    return Trend(slope=slope, p_value=p, direction=direction, significant=significant)


def seasonality(y: NDArray[np.float64], period: int | None = None) -> Seasonality:
    """The period (detected when None) and the seasonal strength."""
    period = detect_season(y) if period is None else period
    if not is_seasonal(y, period):
        return Seasonality(1, 0.0)
    profile = SeasonalProfile.fit(y, period, decay=1.0)
    seasonal = profile.at(np.arange(len(y)))
    # The remainder after the trend (a moving average over a period) and the season.
    kernel = np.ones(period) / period
    smooth = np.convolve(y - seasonal, kernel, mode="same")
    remainder = (y - seasonal - smooth)[period : len(y) - period]
    both = (y - smooth)[period : len(y) - period]
    if len(remainder) < 2 or np.var(both) == 0:
        return Seasonality(period, 0.0)
    strength = 1.0 - float(np.var(remainder)) / float(np.var(both))
    return Seasonality(period, max(0.0, strength))


def change_points(
    y: NDArray[np.float64], min_size: int = 5, penalty: float | None = None
) -> list[int]:
    """Indices where the mean of ``y`` shifts (binary segmentation with a BIC-like penalty)."""
    n = len(y)
    steps = np.diff(y)
    sigma = float(np.median(np.abs(steps - np.median(steps)))) * 1.4826 / math.sqrt(2)
    # A floor at 5% of the spread: on a (nearly) noiseless series the estimate is ~0 and any
    # wiggle would count as a shift.
    sigma = max(sigma, 0.05 * float(np.std(y)), 1e-12)
    cost = 3.0 * sigma**2 * math.log(n) if penalty is None else penalty
    found: list[int] = []
    stack = [(0, n)]
    while stack:
        start, end = stack.pop()
        segment = y[start:end]
        m = len(segment)
        if m < 2 * min_size:
            continue
        total = np.cumsum(segment)
        k = np.arange(min_size, m - min_size + 1)
        left = total[k - 1]
        gain = left**2 / k + (total[-1] - left) ** 2 / (m - k) - total[-1] ** 2 / m
        best = int(np.argmax(gain))
        if gain[best] > cost:
            split = start + int(k[best])
            found.append(split)
            stack += [(start, split), (split, end)]
    return sorted(found)


class PredictiveAnalyzer:
    """Trend, seasonality and change points of a series, or of trained metric series.

    ``analyze(y)`` works on an array; ``await analyze_metric(data, component_type=...,
    metric_name=...)`` on ``MLMetric`` observations, with the change points' times.
    """

    def __init__(self, config: PredictiveAnalyticsConfig | None = None, alpha: float = 0.05):
        self.config = config or PredictiveAnalyticsConfig()
        self.alpha = alpha

    def analyze(self, y: ArrayLike, times: ArrayLike | None = None) -> SeriesAnalysis:
        """The analysis of ``y``; ``times`` (POSIX seconds) dates the change points."""
        values = as_series(y, min_length=10)
        season = seasonality(values, self.config.season_length)
        adjusted = values
        if season.period > 1:  # a daily cycle is not a change of level
            profile = SeasonalProfile.fit(values, season.period, decay=1.0)
            adjusted = values - profile.at(np.arange(len(values)))
        # On a seasonal series a new level must hold for a whole period, or it is the cycle.
        points = change_points(adjusted, min_size=max(5, season.period))
        stamps = []
        if times is not None:
            t = np.asarray(times, dtype=np.float64)
            stamps = [datetime.fromtimestamp(float(t[i]), tz=UTC) for i in points]
        return SeriesAnalysis(
            trend=trend(values, self.alpha),
            seasonality=season,
            change_points=points,
            change_times=stamps,
        )

    def analyze_metric_now(
        self,
        time_series_data: object,
        component_type: ComponentType | str,
        metric_name: str,
        component_id: str | None = None,
    ) -> SeriesAnalysis:
        """The analysis of one metric among ``MLMetric`` observations (synchronous)."""
        series = group_metrics(time_series_data, self.config.max_history)  # type: ignore[arg-type]
        found = find_series(series, component_type, metric_name, component_id)
        return self.analyze(found.values, found.times)

    async def analyze_metric(
        self,
        time_series_data: object,
        component_type: ComponentType | str,
        metric_name: str,
        component_id: str | None = None,
    ) -> SeriesAnalysis:
        """``analyze_metric_now`` in a worker thread."""
        return await asyncio.to_thread(
            self.analyze_metric_now, time_series_data, component_type, metric_name, component_id
        )
