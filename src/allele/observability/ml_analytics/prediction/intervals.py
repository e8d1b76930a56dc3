"""Prediction intervals calibrated on the model's own past errors.

A fitted model's forecast from every in-sample origin (its ``paths``) is compared with what
happened next; the quantiles of those ``h``-step errors, per horizon ``h``, become the interval.
This needs no distributional assumption, so spiky or skewed series get honest (and asymmetric)
intervals. Where too few origins exist for a horizon, a normal interval whose spread grows as a
random walk's (``sqrt(h)``) takes over.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

# Fewer errors than this per horizon make a tail quantile too noisy to trust.
MIN_ERRORS = 40


def future_values(y: NDArray[np.float64], horizon: int) -> NDArray[np.float64]:
    """``out[t, j] = y[t + 1 + j]``: what each origin's forecast is scored against (NaN past
    the end)."""
    n = len(y)
    padded = np.concatenate((y, np.full(horizon + 1, np.nan)))
    index = np.arange(1, n + 1)[:, None] + np.arange(horizon)[None, :]
    return np.asarray(padded[index], dtype=np.float64)


def normal_quantile(p: float) -> float:
    """The standard normal quantile at ``p``."""
    return NormalDist().inv_cdf(p)


def empirical_bounds(
    errors: NDArray[np.float64], level: float, one_step_scale: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Offsets (lower, upper) to add to the mean forecast, one per horizon.

    ``errors[t, j]`` is the ``j + 1``-step error from origin ``t``; NaN where the outcome is not
    known yet.
    """
    horizon = errors.shape[1]
    tail = (1.0 - level) / 2.0
    ordered = np.sort(errors, axis=0)  # NaN sorts last, so the first ``count`` rows are valid
    count = np.sum(~np.isnan(errors), axis=0)
    columns = np.arange(horizon)

    def quantile(p: float) -> NDArray[np.float64]:
        # Linear interpolation between order statistics (numpy's default method).
        position = p * np.maximum(count - 1, 0)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, np.maximum(count - 1, 0))
        weight = position - below
        return np.asarray(
            ordered[below, columns] * (1 - weight) + ordered[above, columns] * weight,
            dtype=np.float64,
        )

    spread = normal_quantile(1.0 - tail) * one_step_scale * np.sqrt(columns + 1.0)
    enough = count >= MIN_ERRORS
    lower = np.where(enough, quantile(tail) if enough.any() else 0.0, -spread)
    upper = np.where(enough, quantile(1.0 - tail) if enough.any() else 0.0, spread)
    # A longer horizon is never more certain: keep the bounds monotone in h.
    return np.minimum.accumulate(lower), np.maximum.accumulate(upper)
