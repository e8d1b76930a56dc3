"""Exponential smoothing on a seasonally adjusted series: simple (SES) and Theta.

Each model is a linear filter of the series, so its whole in-sample path is one convolution
(a Python loop over 1,000 samples would cost more than the whole fit budget). A fitted model
gives its forecast from the end of the series and, for ranking and intervals, its forecast from
every earlier origin (``paths``): row ``t`` holds the forecasts for samples ``t+1 .. t+h`` made
after seeing sample ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.fft import next_fast_len

# Candidate smoothing weights: dense near 0 (slow levels) and near 1 (random walks).
_ALPHAS = np.array([0.005, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.55, 0.7, 0.85, 1.0])


def ses_levels(a: NDArray[np.float64], alphas: NDArray[np.float64]) -> NDArray[np.float64]:
    """SES levels for each weight: ``l[k, t] = alphas[k] * a[t] + (1 - alphas[k]) * l[k, t-1]``,
    started at ``l[k, -1] = a[0]``.

    The recursion is a convolution with the kernel ``alpha (1 - alpha)^j``, so every weight's
    whole path comes from one batched FFT, cheaper than one filter call per weight.
    """
    n = len(a)
    alphas = np.asarray(alphas, dtype=np.float64)[:, None]
    decay = (1.0 - alphas) ** np.arange(n, dtype=np.float64)[None, :]
    size = next_fast_len(2 * n - 1, real=True)
    spectrum = np.fft.rfft(alphas * decay, size, axis=1) * np.fft.rfft(a, size)[None, :]
    levels = np.fft.irfft(spectrum, size, axis=1)[:, :n]
    return np.asarray(levels + (1.0 - alphas) * decay * a[0], dtype=np.float64)


def fit_alpha(a: NDArray[np.float64]) -> float:
    """The smoothing weight minimising the one-step squared error (a grid, then a finer one)."""
    grid = _ALPHAS
    for _ in range(2):
        levels = ses_levels(a, grid)
        sse = np.sum((a[None, 1:] - levels[:, :-1]) ** 2, axis=1)
        k = int(np.argmin(sse))
        best = float(grid[k])
        grid = np.linspace(grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)], 7)
    return best


@dataclass(frozen=True)
class SmoothingFit:
    """A fitted smoothing model: its forecast from the end and from every origin."""

    name: str
    mean: NDArray[np.float64]
    paths: NDArray[np.float64]  # rows: origins ``first .. n-1`` (``first`` given to the model)


def _origin_paths(levels: NDArray[np.float64], steps: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(levels[:, None] + steps[None, :], dtype=np.float64)


def ses(
    a: NDArray[np.float64], horizon: int, alpha: float | None = None, first: int = 0
) -> SmoothingFit:
    """Simple exponential smoothing: a flat forecast at the last level; paths from ``first``."""
    alpha = fit_alpha(a) if alpha is None else alpha
    levels = ses_levels(a, np.array([alpha]))[0]
    flat = np.zeros(horizon)
    return SmoothingFit("ses", np.full(horizon, levels[-1]), _origin_paths(levels[first:], flat))


def theta(
    a: NDArray[np.float64], horizon: int, alpha: float | None = None, first: int = 0
) -> SmoothingFit:
    """The Theta method (theta = 2): SES plus half the series' linear trend, as a drift.

    Hyndman and Billah (2003) show it is SES with drift ``b/2``, ``b`` the least-squares slope;
    the drift term below is their closed form, with ``n`` the samples seen at each origin.
    """
    alpha = fit_alpha(a) if alpha is None else alpha
    n = len(a)
    t = np.arange(n, dtype=np.float64)
    centred = t - t.mean()
    slope = float(centred @ a / (centred @ centred)) if n > 2 else 0.0
    levels = ses_levels(a, np.array([alpha]))[0]
    h = np.arange(1, horizon + 1, dtype=np.float64)
    seen = t[first:] + 1.0
    tail = (1.0 - (1.0 - alpha) ** seen) / alpha
    drift = 0.5 * slope * (h[None, :] - 1.0 + tail[:, None])
    paths = levels[first:, None] + drift
    return SmoothingFit("theta", paths[-1].copy(), paths)
