"""Change points in the history of a suite: where a cell's level stepped up or down.

``detect_change_points`` fits a piecewise-constant mean with PELT (Killick, Fearnhead & Eckley,
2012): it minimises ``sum(segment cost) + penalty * (number of change points)`` exactly, in
near-linear time, by pruning the candidate segment starts that can never again be optimal.

The segment cost is the Gaussian one, ``sum((x - segment mean)^2) / sigma^2`` (twice the negative
log-likelihood up to a constant), with ``sigma`` estimated robustly from the first differences
(``MAD(diff(x)) * 1.4826 / sqrt(2)``: a step moves only one difference, so the estimate ignores
the steps it is looking for). The default penalty is BIC-like, ``3 * log(n)`` per change point:
plain BIC's ``2 * log(n)`` (one new mean, one location) flags about one pure-noise series in ten,
because the location is chosen as the best of ``n``; the extra ``log(n)`` (as in the modified BIC
of Zhang & Siegmund) brings that near 1 %. ``suite_change_points`` applies this to the per-run
medians of each cell, on a log scale so that a +10 % step weighs the same for a fast and a slow
cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.benchmarking.model import PRIMARY_METRIC, SuiteRun

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class ChangePoint:
    """A step in a cell's history: the run at ``index`` is the first of the new level."""

    key: str
    index: int
    suite_id: str
    before: float
    after: float

    @property
    def relative_change(self) -> float:
        """``after / before - 1`` (NaN when ``before`` is 0)."""
        return self.after / self.before - 1.0 if self.before else math.nan

    def to_dict(self) -> dict[str, Any]:
        change = self.relative_change
        return {
            "key": self.key,
            "index": self.index,
            "suite_id": self.suite_id,
            "before": self.before,
            "after": self.after,
            "relative_change": None if math.isnan(change) else change,
        }


def robust_sigma(values: Sequence[float] | np.ndarray) -> float:
    """The noise level of a series with steps, from the MAD of its first differences."""
    x = np.asarray(values, dtype=float)
    if len(x) < 3:
        return math.nan
    diffs = np.diff(x)
    return float(np.median(np.abs(diffs - np.median(diffs))) * _MAD_TO_SIGMA / math.sqrt(2.0))


def detect_change_points(
    values: Sequence[float] | np.ndarray,
    *,
    penalty: float | None = None,
    min_size: int = 2,
    sigma: float | None = None,
) -> list[int]:
    """Sorted indices where a new segment starts (never 0), found by PELT.

    ``penalty`` defaults to ``3 * log(n)``; ``min_size`` is the shortest segment allowed;
    ``sigma`` defaults to ``robust_sigma(values)``, refined once by the pooled spread around the
    first fit's segment means (a constant series has no change point).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValidationError(f"values must be a 1-D series, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValidationError("values must be finite numbers (found NaN or infinity)")
    if min_size < 1:
        raise ValidationError(f"min_size must be >= 1, got {min_size}")
    n = len(x)
    if n < 2 * min_size:
        return []
    if penalty is None:
        penalty = 3.0 * math.log(n)
    if penalty < 0:
        raise ValidationError(f"penalty must be >= 0, got {penalty}")
    if sigma is not None:
        return _pelt(x, penalty, min_size, sigma)
    sigma = robust_sigma(x)
    if not sigma > 0:  # MAD of 0: fall back to the plain spread, or nothing varies at all
        sigma = float(np.std(np.diff(x))) / math.sqrt(2.0)
    points = _pelt(x, penalty, min_size, sigma)
    # The MAD of differences is robust but inefficient; the pooled spread around the segment
    # means of a first fit uses every sample, so a second fit with it is steadier.
    residual = _pooled_sigma(x, points)
    return _pelt(x, penalty, min_size, residual) if residual > 0 else points


def _pooled_sigma(x: np.ndarray, points: list[int]) -> float:
    bounds = [0, *points, len(x)]
    squares = sum(float(((x[a:b] - x[a:b].mean()) ** 2).sum()) for a, b in pairwise(bounds))
    dof = len(x) - (len(bounds) - 1)
    return math.sqrt(squares / dof) if dof > 0 else math.nan


def _pelt(x: np.ndarray, penalty: float, min_size: int, sigma: float) -> list[int]:
    """PELT's exact minimiser of the penalised Gaussian cost (change points, sorted)."""
    if not sigma > 0:
        return []
    z = (x - np.median(x)) / sigma  # centring keeps the cumulative sums well conditioned
    s1 = np.concatenate(([0.0], np.cumsum(z)))
    s2 = np.concatenate(([0.0], np.cumsum(z * z)))

    def cost(starts: np.ndarray, end: int) -> np.ndarray:
        length = end - starts
        total = s1[end] - s1[starts]
        return (s2[end] - s2[starts]) - total * total / length

    n = len(x)
    best = np.full(n + 1, np.inf)  # best[t]: optimal penalised cost of x[:t]
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=np.int64)  # last[t]: start of the final segment of x[:t]
    candidates = np.array([0], dtype=np.int64)
    for end in range(min_size, n + 1):
        # A start becomes admissible once the segment it opens can reach min_size.
        if end >= 2 * min_size:
            candidates = np.append(candidates, end - min_size)
        seg = cost(candidates, end)
        totals = best[candidates] + seg + penalty
        i = int(np.argmin(totals))
        best[end] = totals[i]
        last[end] = candidates[i]
        # PELT pruning: a start that is already worse than the optimum (without the penalty
        # a future change point would pay) can never become optimal later.
        candidates = candidates[best[candidates] + seg <= best[end]]
    points: list[int] = []
    end = n
    while end > 0:
        start = int(last[end])
        if start > 0:
            points.append(start)
        end = start
    return sorted(points)


def suite_change_points(
    history: Sequence[SuiteRun],
    *,
    metric: str = PRIMARY_METRIC,
    penalty: float | None = None,
    min_size: int = 2,
) -> dict[str, list[ChangePoint]]:
    """``{cell_key: change points}`` over runs of one suite given oldest first.

    Each run contributes the median of a cell's samples; only cells measured ("ok", positive
    medians) in every run are analysed. Cells without a change point are left out.
    """
    if not history:
        return {}
    series: dict[str, list[float]] = {}
    for position, run in enumerate(history):
        for cell in run.cells:
            samples = cell.samples.get(metric)
            if cell.status != "ok" or not samples:
                continue
            values = series.setdefault(cell.key, [])
            if len(values) == position:
                values.append(float(np.median(samples)))
    found: dict[str, list[ChangePoint]] = {}
    for key, medians in series.items():
        if len(medians) != len(history) or min(medians) <= 0:
            continue
        points = detect_change_points(np.log(medians), penalty=penalty, min_size=min_size)
        if not points:
            continue
        bounds = [0, *points, len(medians)]
        levels = [float(np.median(medians[a:b])) for a, b in pairwise(bounds)]
        found[key] = [
            ChangePoint(
                key=key,
                index=p,
                suite_id=history[p].suite_id,
                before=levels[j],
                after=levels[j + 1],
            )
            for j, p in enumerate(points)
        ]
    return found
