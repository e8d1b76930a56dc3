"""Seasonality: finding a series' period and removing its seasonal profile.

``detect_season`` picks the period from the autocorrelation function: the highest local peak
that is significant against Bartlett's bound. ``SeasonalProfile`` is a classical additive
decomposition (a centred moving average for the trend, a per-phase mean of what is left) whose
recent cycles weigh more, because the daily profile of a live system drifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# One-sided 90% normal quantile: the Theta method's seasonality test uses this level.
_Z90 = 1.645


def autocorrelation(y: NDArray[np.float64], max_lag: int) -> NDArray[np.float64]:
    """The sample autocorrelation of ``y`` at lags 0..max_lag (computed with one FFT)."""
    x = y - y.mean()
    n = len(x)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    if acov[0] <= 0.0:
        return np.zeros(max_lag + 1)
    return np.asarray(acov / acov[0], dtype=np.float64)


def _bartlett_bounds(acf: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    # Bartlett: var(r_k) = (1 + 2 * sum_{j<k} r_j^2) / n under "no correlation beyond k-1".
    cumulative = np.concatenate(([0.0], np.cumsum(acf[1:-1] ** 2)))
    return np.asarray(_Z90 * np.sqrt((1.0 + 2.0 * cumulative) / n), dtype=np.float64)


def is_seasonal(y: NDArray[np.float64], period: int) -> bool:
    """True when ``y`` has two full cycles and a significant autocorrelation at ``period``."""
    n = len(y)
    if period < 2 or n < 2 * period:
        return False
    acf = autocorrelation(y, period)
    bound = _bartlett_bounds(acf, n)[period - 1]
    return bool(acf[period] > bound)


def detect_season(y: NDArray[np.float64], max_period: int | None = None) -> int:
    """The most likely seasonal period of ``y``, or 1 when it shows no seasonality.

    Candidates are the local maxima of the autocorrelation (of the linearly detrended series)
    between lag 2 and ``max_period`` (default: a third of the series, so that three cycles are
    seen); the highest one above Bartlett's 90% bound and above 0.2 wins.
    """
    n = len(y)
    top = n // 3 if max_period is None else min(max_period, n // 2)
    if top < 3:
        return 1
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, y, 1)
    acf = autocorrelation(y - (slope * t + intercept), top + 1)
    bounds = _bartlett_bounds(acf, n)
    lags = np.arange(2, top + 1)
    peaks = (acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1])
    ok = peaks & (acf[lags] > bounds[lags - 1]) & (acf[lags] > 0.2)
    if not ok.any():
        return 1
    candidates = lags[ok]
    best = candidates[np.argmax(acf[candidates])]
    # A multiple of the true period peaks almost as high; prefer the shortest near-best period.
    near = candidates[acf[candidates] >= 0.9 * acf[best]]
    period = next((lag for lag in near if best % lag == 0), best)
    # A level shift bends the autocorrelation of the levels and can move its peak by a lag or
    # two; the differences have no level, so their autocorrelation places the peak exactly.
    window = np.arange(max(2, period - 2), min(top, period + 2) + 1)
    diff_acf = autocorrelation(np.diff(y), int(window[-1]))
    return int(window[np.argmax(diff_acf[window])])


def _centred_moving_average(y: NDArray[np.float64], period: int) -> NDArray[np.float64]:
    """The trend: a centred moving average over one period (2 x m when m is even, so that every
    window is centred on a sample); NaN where the window does not fit."""
    n = len(y)
    total = np.concatenate(([0.0], np.cumsum(y)))
    half = period // 2
    trend = np.full(n, np.nan)
    if n <= 2 * half:
        return trend
    centre = np.arange(half, n - half)
    if period % 2:
        trend[centre] = (total[centre + half + 1] - total[centre - half]) / period
    else:
        # Full weight on the m - 1 inner samples, half weight on the two ends.
        inner = total[centre + half] - total[centre - half + 1]
        trend[centre] = (inner + 0.5 * (y[centre - half] + y[centre + half])) / period
    return trend


@dataclass(frozen=True)
class SeasonalProfile:
    """An additive seasonal profile: ``indices[k]`` is added at phase ``k`` of the period.

    ``phase0`` is the phase of the first sample of the series it was fitted on.
    """

    period: int
    indices: NDArray[np.float64]
    phase0: int = 0

    @classmethod
    def none(cls) -> SeasonalProfile:
        """The profile of a series without seasonality (adds nothing)."""
        return cls(1, np.zeros(1))

    @classmethod
    def fit(cls, y: NDArray[np.float64], period: int, decay: float = 0.7) -> SeasonalProfile:
        """The profile of ``y``; the cycle ``k`` cycles before the last weighs ``decay**k``."""
        n = len(y)
        detrended = y - _centred_moving_average(y, period)
        # Align cycles so that the last complete phase block ends at the end of the series.
        cycles = int(np.ceil(n / period))
        start = n - cycles * period
        padded = np.full(cycles * period, np.nan)
        padded[max(0, -start) :] = detrended[max(0, start) :]
        table = padded.reshape(cycles, period)
        weights = decay ** np.arange(cycles - 1, -1, -1, dtype=np.float64)[:, None]
        present = ~np.isnan(table)
        w = np.where(present, weights, 0.0)
        total = w.sum(axis=0)
        indices = np.where(total > 0, np.nansum(np.where(present, table, 0.0) * w, axis=0), 0.0)
        indices = np.divide(indices, total, out=np.zeros(period), where=total > 0)
        indices -= indices.mean()
        # Phase of sample 0: the padded table starts at index ``start`` (possibly negative).
        return cls(period, indices, phase0=(-start) % period)

    def at(self, positions: NDArray[np.int64]) -> NDArray[np.float64]:
        """The seasonal component at sample ``positions`` (0 is the first fitted sample)."""
        if self.period == 1:
            return np.zeros(len(positions))
        return np.asarray(self.indices[(positions + self.phase0) % self.period], dtype=np.float64)
