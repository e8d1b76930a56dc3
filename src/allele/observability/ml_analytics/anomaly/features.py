"""Features of a series at each row, computed from the rows before it only (causal).

The batch estimators see these, not raw values: a value of 90 is normal for one metric and alarming
for another, while "five robust deviations above the recent median" means the same everywhere.

Per row ``t`` with the ``window`` rows before it:
- ``robust_z``: ``(x_t - median) / (1.4826 MAD)`` of the window (the residual against a robust
  baseline);
- ``ewma_z``: the residual against an exponentially weighted forecast, in the same scale;
- ``diff_z``: the rate of change ``x_t - x_{t-1}`` in units of the window's typical change;
- ``hour_sin`` / ``hour_cos``: the position in the day (the seasonal position), when timestamps
  are known (0 otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FEATURE_NAMES = ("robust_z", "ewma_z", "diff_z", "hour_sin", "hour_cos")
_EPS = 1e-9


def series_features(
    values: Sequence[float] | npt.NDArray[np.float64],
    epoch_seconds: Sequence[float] | npt.NDArray[np.float64] | None = None,
    *,
    window: int = 30,
    alpha: float = 0.3,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(features, expected, scale)`` for every row after the first ``window`` rows.

    ``features`` has one row per value from index ``window`` on and the columns of
    ``FEATURE_NAMES``; ``expected`` is the robust baseline (the window's median) and ``scale``
    its robust deviation, per row, for reporting what was expected and by how much it missed.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n <= window:
        empty = np.empty(0)
        return np.empty((0, len(FEATURE_NAMES))), empty, empty
    windows = np.lib.stride_tricks.sliding_window_view(x[:-1], window)  # rows before each t
    current = x[window:]
    # Medians by sorting each window (short rows: a sort is cheaper than numpy's selection).
    median = _row_median(windows)
    mad = _row_median(np.abs(windows - median[:, None])) * 1.4826
    spread = np.std(windows, axis=1)
    scale = np.maximum(np.maximum(mad, 0.1 * spread), _EPS + 1e-6 * np.abs(median))
    robust_z = (current - median) / scale
    # The EWMA forecast of each row from the rows before it (recursion over the whole series).
    # e[i] = (1 - alpha) e[i-1] + alpha x[i-1], e[0] = x[0]: a first-order linear filter.
    from scipy.signal import lfilter

    ewma = np.empty(n)
    ewma[0] = x[0]
    ewma[1:] = lfilter([alpha], [1.0, alpha - 1.0], x[:-1], zi=[(1.0 - alpha) * x[0]])[0]
    ewma_z = (current - ewma[window:]) / scale
    steps = np.abs(np.diff(windows, axis=1))
    typical_step = np.maximum(_row_median(steps), 0.1 * scale)
    diff_z = (current - x[window - 1 : -1]) / typical_step
    if epoch_seconds is not None:
        t = np.asarray(epoch_seconds, dtype=np.float64)[window:]
        angle = 2 * np.pi * ((t % 86400.0) / 86400.0)
        hour_sin, hour_cos = np.sin(angle), np.cos(angle)
    else:
        hour_sin = hour_cos = np.zeros(len(current))
    features = np.column_stack([robust_z, ewma_z, diff_z, hour_sin, hour_cos])
    # Clip: a zero-variance history gives huge z; the trees only need "very large".
    np.clip(features, -1e3, 1e3, out=features)
    return features, median, scale


def _row_median(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The median of each row of ``a`` (``np.median(a, axis=1)``)."""
    s = np.sort(a, axis=1)
    k = s.shape[1]
    return np.asarray(s[:, k // 2] if k % 2 else 0.5 * (s[:, k // 2 - 1] + s[:, k // 2]))
