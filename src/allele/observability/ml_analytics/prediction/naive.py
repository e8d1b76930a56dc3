"""The naive forecasts, as combination candidates: the seasonal naive (the value one period
earlier) and the median of a recent window (robust to the spikes of resource metrics, whose
absolute errors a mean-seeking model pays for on every step).

Like the smoothing models, each gives its forecast from the end and from every origin
(``paths[t, j]`` forecasts sample ``t + 1 + j`` from what was known at ``t``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import median_filter

from allele.observability.ml_analytics.prediction.smoothing import SmoothingFit


def seasonal_naive(
    y: NDArray[np.float64], horizon: int, period: int, first: int = 0
) -> SmoothingFit:
    """Each step repeats the value one (or more) periods before it; for ``period`` 1, the last.
    Paths from origin ``first``."""
    n = len(y)
    h = np.arange(1, horizon + 1)
    back = period * np.ceil(h / period).astype(np.int64)  # periods back to a seen sample
    origins = np.arange(first, n)[:, None]
    index = origins + h[None, :] - back[None, :]
    paths = np.where(index >= 0, y[np.clip(index, 0, n - 1)], y[0])
    return SmoothingFit("seasonal_naive", paths[-1].copy(), np.asarray(paths, dtype=np.float64))


def window_median(
    y: NDArray[np.float64], horizon: int, window: int, first: int = 0
) -> SmoothingFit:
    """A flat forecast at the median of the last ``window`` values; paths from ``first``."""
    window = max(1, min(window, len(y)))
    # median_filter centres its window; shift so that origin t sees y[t-window+1 .. t]. Only
    # the samples the origins from ``first`` on can see are filtered.
    start = max(0, first - window + 1)
    centred = median_filter(y[start:], size=window, mode="nearest", origin=(window - 1) // 2)
    levels = np.asarray(centred, dtype=np.float64)[first - start :]
    paths = np.repeat(levels[:, None], horizon, axis=1)
    return SmoothingFit(f"median{window}", paths[-1].copy(), paths)
