"""Per-cell noise from an A/A calibration: two runs of the same suite on the same code.

The noise of a cell is the largest relative shift that the A/A pair is compatible with: the
larger end, in absolute value, of the Hodges-Lehmann shift's confidence interval,
``max(|ci_low|, |ci_high|)``. It holds both kinds of noise a later comparison will see --
the sampling spread within a run (which widens the interval) and any run-to-run offset of the
machine (which moves the estimate away from 0). ``compare_runs(..., noise=...)`` then demands
that a regression exceed ``max(threshold, noise[cell])``.

With more than two calibration runs, every pair is compared and the largest value kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from allele.errors import ValidationError
from allele.observability.benchmarking.compare import MIN_SAMPLES, shift_estimates
from allele.observability.benchmarking.model import PRIMARY_METRIC, SuiteRun


def noise_from_runs(
    runs: Sequence[SuiteRun], *, metric: str = PRIMARY_METRIC, confidence: float = 0.95
) -> dict[str, float]:
    """``{cell_key: relative noise}`` from two or more runs of the same suite.

    Only cells that finished ("ok") with at least two samples in every run get a value.
    """
    if len(runs) < 2:
        raise ValidationError(f"an A/A calibration needs at least 2 runs, got {len(runs)}")
    noise: dict[str, float] = {}
    for first, second in itertools.combinations(runs, 2):
        for key, value in _pair_noise(first, second, metric, confidence).items():
            noise[key] = max(value, noise.get(key, 0.0))
    return noise


def summarize_noise(noise: Mapping[str, float]) -> dict[str, float]:
    """The median, 90th percentile and maximum of a noise map (NaN entries ignored)."""
    values = np.asarray([v for v in noise.values() if not math.isnan(v)], dtype=float)
    if len(values) == 0:
        return {"cells": 0, "median": math.nan, "p90": math.nan, "max": math.nan}
    return {
        "cells": float(len(values)),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": float(values.max()),
    }


def _pair_noise(a: SuiteRun, b: SuiteRun, metric: str, confidence: float) -> dict[str, float]:
    cells_b = {c.key: c for c in b.cells}
    keys: list[str] = []
    first: list[list[float]] = []
    second: list[list[float]] = []
    for cell in a.cells:
        other = cells_b.get(cell.key)
        if other is None or cell.status != "ok" or other.status != "ok":
            continue
        xs, ys = cell.samples.get(metric, []), other.samples.get(metric, [])
        if len(xs) >= MIN_SAMPLES and len(ys) >= MIN_SAMPLES:
            keys.append(cell.key)
            first.append(xs)
            second.append(ys)
    if not keys:
        return {}
    shifts = shift_estimates(first, second, confidence=confidence)
    widest = np.maximum(np.abs(shifts.ci_low), np.abs(shifts.ci_high))
    return {k: float(v) for k, v in zip(keys, widest, strict=True) if not math.isnan(v)}
