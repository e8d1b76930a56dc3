"""Descriptive statistics of benchmark samples, one cell or a whole grid at once.

Every figure is reported with its uncertainty: the median comes with a distribution-free
confidence interval (order statistics whose ranks come from the Binomial(n, 1/2) law, valid for
any continuous distribution), and outliers are *flagged* by Tukey's fences, never dropped.

The grid path (``describe_many``) pads the cells into one NaN-filled 2-D array and computes every
figure with a handful of vectorised numpy calls, so a 1000-cell grid takes milliseconds.

Definitions (``n`` valid samples of a cell, ``x(1) <= ... <= x(n)`` sorted):

- percentiles ``p5 p25 p50 p75 p95 p99``: linear interpolation between order statistics at
  position ``q * (n - 1)`` (numpy's default "linear" method); ``median`` is ``p50``;
- ``median_ci``: ``[x(l), x(n - l + 1)]`` with ``l`` the largest rank such that
  ``P(B <= l - 1) <= (1 - confidence) / 2`` for ``B ~ Binomial(n, 1/2)``; its exact coverage
  ``1 - 2 P(B <= l - 1)`` is returned as ``ci_level`` (below ``confidence`` when ``n < 6``);
- ``stddev`` with ``ddof=1`` (NaN for one sample); ``cv = stddev / mean``;
- ``mad``: the raw median absolute deviation ``median(|x - median|)`` (multiply by 1.4826 for a
  normal-consistent sigma); ``iqr = p75 - p25``;
- outliers: samples outside ``[p25 - 1.5 iqr, p75 + 1.5 iqr]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.benchmarking.model import PRIMARY_METRIC, SuiteRun

PERCENTILES: dict[str, float] = {
    "p5": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
TUKEY_K = 1.5


@dataclass(frozen=True)
class SampleStats:
    """The summary of one cell's samples; NaN where a figure is undefined (too few samples)."""

    n: int
    mean: float
    stddev: float
    median: float
    median_ci: tuple[float, float]
    ci_level: float
    mad: float
    iqr: float
    percentiles: dict[str, float]
    cv: float
    outliers: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None; ``outliers`` are sample indices)."""
        return {
            "n": self.n,
            "mean": _json_float(self.mean),
            "stddev": _json_float(self.stddev),
            "median": _json_float(self.median),
            "median_ci": [_json_float(self.median_ci[0]), _json_float(self.median_ci[1])],
            "ci_level": _json_float(self.ci_level),
            "mad": _json_float(self.mad),
            "iqr": _json_float(self.iqr),
            "percentiles": {k: _json_float(v) for k, v in self.percentiles.items()},
            "cv": _json_float(self.cv),
            "outliers": list(self.outliers),
        }


@dataclass(frozen=True)
class GridStats:
    """Statistics of many cells as arrays, row ``i`` describing ``keys[i]``.

    ``outlier_mask[i, j]`` flags sample ``j`` of cell ``i`` (in the order the samples were
    given); padding positions are False.
    """

    keys: list[str]
    n: np.ndarray
    mean: np.ndarray
    stddev: np.ndarray
    median: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    ci_level: np.ndarray
    mad: np.ndarray
    iqr: np.ndarray
    percentiles: dict[str, np.ndarray]
    cv: np.ndarray
    outlier_mask: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def index(self, key: str) -> int:
        """The row of ``key``; raises ValidationError when the grid has no such cell."""
        try:
            return self.keys.index(key)
        except ValueError:
            raise ValidationError(f"no cell {key!r} in these statistics") from None

    def cell(self, i: int | str) -> SampleStats:
        """The SampleStats of row ``i`` (or of the cell whose key is ``i``)."""
        row = self.index(i) if isinstance(i, str) else i
        return SampleStats(
            n=int(self.n[row]),
            mean=float(self.mean[row]),
            stddev=float(self.stddev[row]),
            median=float(self.median[row]),
            median_ci=(float(self.ci_low[row]), float(self.ci_high[row])),
            ci_level=float(self.ci_level[row]),
            mad=float(self.mad[row]),
            iqr=float(self.iqr[row]),
            percentiles={k: float(v[row]) for k, v in self.percentiles.items()},
            cv=float(self.cv[row]),
            outliers=tuple(int(j) for j in np.flatnonzero(self.outlier_mask[row])),
        )


def pad(samples: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """A NaN-padded ``cells x max_n`` float array of ``samples`` and the count of each row.

    Raises ValidationError when a sample is NaN or infinite (padding is the only NaN allowed).
    """
    counts = np.fromiter((len(s) for s in samples), dtype=np.int64, count=len(samples))
    width = int(counts.max()) if len(counts) else 0
    out = np.full((len(samples), width), np.nan)
    for i, row in enumerate(samples):
        if len(row):
            out[i, : len(row)] = row
    valid = np.arange(width)[None, :] < counts[:, None]
    if not np.isfinite(out[valid]).all():
        bad = next(i for i, row in enumerate(samples) if not np.isfinite(row).all())
        raise ValidationError(
            f"cell {bad} has a NaN or infinite sample; samples must be finite numbers"
        )
    return out, counts


@lru_cache(maxsize=512)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int, float]:
    """Zero-based ranks ``(lo, hi)`` of the median's CI over ``n`` sorted samples, and its level.

    The interval ``[x(lo), x(hi)]`` covers the true median with probability ``level`` for any
    continuous distribution; ``level`` is the largest achievable at or above ``confidence``,
    or the widest interval's (below ``confidence``) when ``n`` is too small.
    """
    _check_confidence(confidence)
    if n < 1:
        raise ValidationError(f"the median CI needs at least one sample, got n={n}")
    from scipy.stats import binom

    tail = (1.0 - confidence) / 2.0
    cdf = binom.cdf(np.arange(n + 1), n, 0.5)
    # l = the 1-based rank of the lower bound: the largest with P(B <= l - 1) <= tail.
    rank = int(np.count_nonzero(cdf <= tail * (1.0 + 1e-12)))
    if rank == 0:  # too few samples for the requested level: the whole range, at its own level
        return 0, n - 1, float(1.0 - 2.0 * 0.5**n)
    return rank - 1, n - rank, float(1.0 - 2.0 * cdf[rank - 1])


def describe(samples: Sequence[float], confidence: float = 0.95) -> SampleStats:
    """The SampleStats of one cell's samples."""
    return describe_many([samples], confidence=confidence).cell(0)


def describe_many(
    samples: Sequence[Sequence[float]],
    keys: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> GridStats:
    """GridStats of many cells at once (vectorised over a NaN-padded 2-D array)."""
    _check_confidence(confidence)
    keys = list(keys) if keys is not None else [str(i) for i in range(len(samples))]
    if len(keys) != len(samples):
        raise ValidationError(f"got {len(keys)} keys for {len(samples)} cells; they must match")
    data, n = pad(samples)
    ordered = np.sort(data, axis=1)  # NaN padding sorts to the end of each row
    pct = {name: _quantile_sorted(ordered, n, q) for name, q in PERCENTILES.items()}
    median = pct["p50"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(data, axis=1) / n
        sq = np.nansum((data - mean[:, None]) ** 2, axis=1)
        stddev = np.where(n > 1, np.sqrt(sq / np.maximum(n - 1, 1)), np.nan)
        cv = stddev / mean
    deviation = np.sort(np.abs(data - median[:, None]), axis=1)
    mad = _quantile_sorted(deviation, n, 0.5)
    iqr = pct["p75"] - pct["p25"]
    with np.errstate(invalid="ignore"):
        outlier_mask = (data < (pct["p25"] - TUKEY_K * iqr)[:, None]) | (
            data > (pct["p75"] + TUKEY_K * iqr)[:, None]
        )
    ci_low, ci_high, ci_level = _median_cis(ordered, n, confidence)
    return GridStats(
        keys=keys,
        n=n,
        mean=mean,
        stddev=stddev,
        median=median,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=ci_level,
        mad=mad,
        iqr=iqr,
        percentiles=pct,
        cv=cv,
        outlier_mask=outlier_mask,
    )


def run_stats(run: SuiteRun, metric: str = PRIMARY_METRIC, confidence: float = 0.95) -> GridStats:
    """GridStats of ``metric`` over the cells of ``run`` that finished ("ok") with samples."""
    cells = [c for c in run.cells if c.status == "ok" and c.samples.get(metric)]
    return describe_many(
        [c.samples[metric] for c in cells], keys=[c.key for c in cells], confidence=confidence
    )


def _quantile_sorted(ordered: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Per-row linear-interpolation quantile of NaN-padded sorted rows holding ``n`` values."""
    rows = np.arange(len(n))
    out = np.full(len(n), np.nan)
    has = n > 0
    if not has.any():
        return out
    position = q * (n[has] - 1)
    lo = np.floor(position).astype(np.int64)
    hi = np.minimum(lo + 1, n[has] - 1)
    frac = position - lo
    a = ordered[rows[has], lo]
    b = ordered[rows[has], hi]
    out[has] = a + (b - a) * frac
    return out


def _median_cis(
    ordered: np.ndarray, n: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low = np.full(len(n), np.nan)
    high = np.full(len(n), np.nan)
    level = np.full(len(n), np.nan)
    for count in np.unique(n):  # few distinct sizes in a grid: one rank lookup each
        if count < 1:
            continue
        rows = np.flatnonzero(n == count)
        lo, hi, achieved = median_ci_ranks(int(count), confidence)
        low[rows] = ordered[rows, lo]
        high[rows] = ordered[rows, hi]
        level[rows] = achieved
    return low, high, level


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence must be strictly between 0 and 1, got {confidence!r}")


def _json_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
