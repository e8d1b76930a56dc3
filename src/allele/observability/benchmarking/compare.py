"""Comparison of two suite runs cell by cell, and the regression verdict of each cell.

For every cell measured in both runs:

- the **change** is the ratio of the medians, ``current_median / baseline_median - 1``, with a
  confidence interval from each median's distribution-free interval (the order statistics of
  ``stats``) taken as a standard error of the log median and combined (Price & Bonett, 2002);
  it is the headline figure because it can never contradict the two medians shown beside it;
- the **shift** (a detail) is the Hodges-Lehmann estimate, the median of all ``n_base * n_cur``
  pairwise differences ``current_j - baseline_i``, divided by the baseline median (so +0.10
  means 10 % slower for a timing); its confidence interval is the Moses/Lehmann one, the order
  statistics of those differences at ranks given by the Mann-Whitney U null distribution (exact
  for ``n_base * n_cur <= 2500``, normal approximation above);
- the **p-value** comes from the two-sided Mann-Whitney U test, and the p-values of the whole grid
  are adjusted with Benjamini-Hochberg into **q-values** (false discovery rate control);
- a cell **regressed** when ``q < alpha`` *and* both its change and its shift (in the worsening
  direction) exceed its **floor**, the larger of the user ``threshold`` and the cell's own noise
  measured by an A/A calibration (``noise.py``); an **improvement** is the mirror image. Asking
  both means a verdict never points the other way from the medians.

Both statistics are rank based, so multiplicative outliers (a sample hit by a GC pause or a
context switch) move them very little. Everything is vectorised over cells that share sample
sizes, so a 1000-cell grid is compared in a few milliseconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.benchmarking.model import PRIMARY_METRIC, CellResult, SuiteRun

VERDICTS = ("regression", "improvement", "unchanged", "added", "removed", "failed", "insufficient")
MIN_SAMPLES = 2
_EXACT_U_LIMIT = 2500  # n_base * n_cur up to which the U distribution is computed exactly
_PAIRS_PER_CHUNK = 4_000_000  # pairwise differences held in memory at once


@dataclass(frozen=True)
class Shifts:
    """Two-sample estimates for many cells (row ``i`` compares baseline ``i`` with current ``i``).

    ``shift``/``ci_low``/``ci_high`` are relative to the baseline median; ``absolute_*`` are in
    the metric's unit. NaN where a row has fewer than ``MIN_SAMPLES`` samples on either side.
    """

    baseline_median: np.ndarray
    current_median: np.ndarray
    absolute_shift: np.ndarray
    absolute_ci_low: np.ndarray
    absolute_ci_high: np.ndarray
    shift: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray


@dataclass(frozen=True)
class CellComparison:
    """The verdict of one cell; float fields are NaN when they do not apply to the verdict."""

    key: str
    params: dict[str, Any]
    verdict: str
    baseline_median: float = math.nan
    current_median: float = math.nan
    shift: float = math.nan
    shift_ci: tuple[float, float] = (math.nan, math.nan)
    #: ``current_median / baseline_median - 1`` and its interval: the headline figure.
    change: float = math.nan
    change_ci: tuple[float, float] = (math.nan, math.nan)
    p_value: float = math.nan
    q_value: float = math.nan
    floor: float = math.nan
    n_baseline: int = 0
    n_current: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {
            "key": self.key,
            "params": self.params,
            "verdict": self.verdict,
            "baseline_median": _json(self.baseline_median),
            "current_median": _json(self.current_median),
            "change": _json(self.change),
            "change_ci": [_json(self.change_ci[0]), _json(self.change_ci[1])],
            "shift": _json(self.shift),
            "shift_ci": [_json(self.shift_ci[0]), _json(self.shift_ci[1])],
            "p_value": _json(self.p_value),
            "q_value": _json(self.q_value),
            "floor": _json(self.floor),
            "n_baseline": self.n_baseline,
            "n_current": self.n_current,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellComparison:
        ci = data.get("shift_ci") or [None, None]
        change_ci = data.get("change_ci") or [None, None]
        return cls(
            key=data["key"],
            params=dict(data.get("params", {})),
            verdict=data["verdict"],
            baseline_median=_unjson(data.get("baseline_median")),
            current_median=_unjson(data.get("current_median")),
            shift=_unjson(data.get("shift")),
            shift_ci=(_unjson(ci[0]), _unjson(ci[1])),
            change=_unjson(data.get("change")),
            change_ci=(_unjson(change_ci[0]), _unjson(change_ci[1])),
            p_value=_unjson(data.get("p_value")),
            q_value=_unjson(data.get("q_value")),
            floor=_unjson(data.get("floor")),
            n_baseline=int(data.get("n_baseline", 0)),
            n_current=int(data.get("n_current", 0)),
            note=data.get("note", ""),
        )


@dataclass
class Comparison:
    """A baseline run against a current run: the settings used and one verdict per cell."""

    baseline_name: str
    baseline_id: str
    current_name: str
    current_id: str
    metric: str
    alpha: float
    threshold: float
    confidence: float
    higher_is_better: bool
    cells: list[CellComparison] = field(default_factory=list)

    @property
    def regressions(self) -> list[CellComparison]:
        return [c for c in self.cells if c.verdict == "regression"]

    @property
    def improvements(self) -> list[CellComparison]:
        return [c for c in self.cells if c.verdict == "improvement"]

    @property
    def has_regressions(self) -> bool:
        return any(c.verdict == "regression" for c in self.cells)

    def counts(self) -> dict[str, int]:
        """How many cells got each verdict (every verdict listed, zeros included)."""
        out = dict.fromkeys(VERDICTS, 0)
        for c in self.cells:
            out[c.verdict] += 1
        return out

    def cell(self, key: str) -> CellComparison | None:
        """The comparison of the cell ``key``, or None."""
        return next((c for c in self.cells if c.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": {"name": self.baseline_name, "suite_id": self.baseline_id},
            "current": {"name": self.current_name, "suite_id": self.current_id},
            "metric": self.metric,
            "alpha": self.alpha,
            "threshold": self.threshold,
            "confidence": self.confidence,
            "higher_is_better": self.higher_is_better,
            "counts": self.counts(),
            "cells": [c.to_dict() for c in self.cells],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        return cls(
            baseline_name=data["baseline"]["name"],
            baseline_id=data["baseline"].get("suite_id", ""),
            current_name=data["current"]["name"],
            current_id=data["current"].get("suite_id", ""),
            metric=data["metric"],
            alpha=float(data["alpha"]),
            threshold=float(data["threshold"]),
            confidence=float(data["confidence"]),
            higher_is_better=bool(data["higher_is_better"]),
            cells=[CellComparison.from_dict(c) for c in data.get("cells", [])],
        )


def compare_runs(
    baseline: SuiteRun,
    current: SuiteRun,
    *,
    metric: str = PRIMARY_METRIC,
    alpha: float = 0.05,
    threshold: float = 0.05,
    noise: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    higher_is_better: bool = False,
) -> Comparison:
    """The Comparison of ``current`` against ``baseline``, one verdict per cell of either run.

    ``threshold`` is the smallest relative shift worth reporting (0.05 = 5 %); ``noise`` maps
    cell keys to their A/A noise (``noise.noise_from_runs``), which raises a cell's floor above
    ``threshold`` when the cell is noisier. ``higher_is_better`` flips the direction of a
    regression (for throughputs; timings are lower-is-better).
    """
    _check_fraction("alpha", alpha)
    _check_fraction("confidence", confidence)
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise ValidationError(f"threshold must be a finite fraction >= 0, got {threshold!r}")
    noise = noise or {}
    base_cells = {c.key: c for c in baseline.cells}
    cur_cells = {c.key: c for c in current.cells}
    keys = list(base_cells) + [k for k in cur_cells if k not in base_cells]

    results: dict[str, CellComparison] = {}
    tested: list[str] = []
    for key in keys:
        early = _verdict_without_test(key, base_cells.get(key), cur_cells.get(key), metric)
        if early is None:
            tested.append(key)
        else:
            results[key] = early

    if tested:
        shifts = shift_estimates(
            [base_cells[k].samples[metric] for k in tested],
            [cur_cells[k].samples[metric] for k in tested],
            confidence=confidence,
        )
        changes = median_changes(
            [base_cells[k].samples[metric] for k in tested],
            [cur_cells[k].samples[metric] for k in tested],
            confidence=confidence,
        )
        q = benjamini_hochberg(shifts.p_value)
        sign = -1.0 if higher_is_better else 1.0
        for i, key in enumerate(tested):
            floor = max(threshold, float(noise.get(key, 0.0)))
            worsening = sign * float(shifts.shift[i])
            median_worsening = sign * float(changes[0][i])
            significant = bool(q[i] < alpha)
            if significant and worsening > floor and median_worsening > floor:
                verdict = "regression"
            elif significant and worsening < -floor and median_worsening < -floor:
                verdict = "improvement"
            else:
                verdict = "unchanged"
            results[key] = CellComparison(
                key=key,
                params=dict(cur_cells[key].params),
                verdict=verdict,
                baseline_median=float(shifts.baseline_median[i]),
                current_median=float(shifts.current_median[i]),
                shift=float(shifts.shift[i]),
                shift_ci=(float(shifts.ci_low[i]), float(shifts.ci_high[i])),
                change=float(changes[0][i]),
                change_ci=(float(changes[1][i]), float(changes[2][i])),
                p_value=float(shifts.p_value[i]),
                q_value=float(q[i]),
                floor=floor,
                n_baseline=len(base_cells[key].samples[metric]),
                n_current=len(cur_cells[key].samples[metric]),
            )
    return Comparison(
        baseline_name=baseline.name,
        baseline_id=baseline.suite_id,
        current_name=current.name,
        current_id=current.suite_id,
        metric=metric,
        alpha=alpha,
        threshold=threshold,
        confidence=confidence,
        higher_is_better=higher_is_better,
        cells=[results[k] for k in keys],
    )


def shift_estimates(
    baseline: Sequence[Sequence[float]],
    current: Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
) -> Shifts:
    """Hodges-Lehmann shifts with Moses CIs and Mann-Whitney p-values, row by row.

    Rows with the same pair of sample sizes are computed together as one 3-D array of pairwise
    differences (chunked to bound memory).
    """
    if len(baseline) != len(current):
        raise ValidationError(
            f"got {len(baseline)} baseline rows and {len(current)} current rows; they must match"
        )
    _check_fraction("confidence", confidence)
    from scipy.stats import mannwhitneyu

    m = len(baseline)
    cols = {name: np.full(m, np.nan) for name in ("bmed", "cmed", "hl", "lo", "hi", "p")}
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in range(m):
        groups[(len(baseline[i]), len(current[i]))].append(i)
    for (nb, nc), rows in groups.items():
        if nb < MIN_SAMPLES or nc < MIN_SAMPLES:
            continue
        rank = moses_rank(nb, nc, confidence)
        chunk = max(1, _PAIRS_PER_CHUNK // (nb * nc))
        for start in range(0, len(rows), chunk):
            idx = np.asarray(rows[start : start + chunk])
            x = np.asarray([baseline[i] for i in idx], dtype=float)
            y = np.asarray([current[i] for i in idx], dtype=float)
            if not (np.isfinite(x).all() and np.isfinite(y).all()):
                raise ValidationError("samples must be finite numbers (found NaN or infinity)")
            diffs = np.sort((y[:, None, :] - x[:, :, None]).reshape(len(idx), nb * nc), axis=1)
            cols["hl"][idx] = np.median(diffs, axis=1)
            cols["lo"][idx] = diffs[:, rank - 1]
            cols["hi"][idx] = diffs[:, nb * nc - rank]
            cols["bmed"][idx] = np.median(x, axis=1)
            cols["cmed"][idx] = np.median(y, axis=1)
            cols["p"][idx] = mannwhitneyu(y, x, axis=1, alternative="two-sided").pvalue
    scale = np.abs(cols["bmed"])
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = {k: np.where(scale > 0, cols[k] / scale, np.nan) for k in ("hl", "lo", "hi")}
    return Shifts(
        baseline_median=cols["bmed"],
        current_median=cols["cmed"],
        absolute_shift=cols["hl"],
        absolute_ci_low=cols["lo"],
        absolute_ci_high=cols["hi"],
        shift=rel["hl"],
        ci_low=rel["lo"],
        ci_high=rel["hi"],
        p_value=cols["p"],
    )


def median_changes(
    baseline: Sequence[Sequence[float]],
    current: Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``current_median / baseline_median - 1`` per row, with its ``confidence`` interval.

    Each median's distribution-free interval ``[x(l), x(u)]`` (exact level ``L``) gives the
    standard error of the log median, ``(log x(u) - log x(l)) / (2 z_{(1+L)/2})``; the two add in
    quadrature on the log of the ratio (Price & Bonett's interval for a ratio of medians).
    Where a sample is not positive the same is done on the linear scale (the delta method).
    """
    from scipy.stats import norm

    from allele.observability.benchmarking.stats import describe_many

    b = describe_many(baseline, confidence=confidence)
    c = describe_many(current, confidence=confidence)
    z = float(norm.ppf(0.5 + confidence / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        zb = norm.ppf(0.5 + b.ci_level / 2.0)
        zc = norm.ppf(0.5 + c.ci_level / 2.0)
        ratio = c.median / b.median
        positive = (b.ci_low > 0) & (c.ci_low > 0) & (b.median > 0) & (c.median > 0)
        se_log = np.sqrt(
            ((np.log(b.ci_high) - np.log(b.ci_low)) / (2 * zb)) ** 2
            + ((np.log(c.ci_high) - np.log(c.ci_low)) / (2 * zc)) ** 2
        )
        rel_se = np.sqrt(
            ((b.ci_high - b.ci_low) / (2 * zb * b.median)) ** 2
            + ((c.ci_high - c.ci_low) / (2 * zc * c.median)) ** 2
        )
        low = np.where(positive, ratio * np.exp(-z * se_log), ratio * (1 - z * rel_se))
        high = np.where(positive, ratio * np.exp(z * se_log), ratio * (1 + z * rel_se))
    # Too few samples for a test: no interval either (as for the shift).
    small = (b.n < MIN_SAMPLES) | (c.n < MIN_SAMPLES)
    low[small] = np.nan
    high[small] = np.nan
    return ratio - 1.0, low - 1.0, high - 1.0


def hodges_lehmann(
    baseline: Sequence[float], current: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """The HL shift ``current - baseline`` (metric units) and its Moses CI ``(low, high)``."""
    s = shift_estimates([baseline], [current], confidence=confidence)
    return float(s.absolute_shift[0]), float(s.absolute_ci_low[0]), float(s.absolute_ci_high[0])


@lru_cache(maxsize=256)
def moses_rank(n_baseline: int, n_current: int, confidence: float = 0.95) -> int:
    """The 1-based rank ``k`` of the Moses CI: ``[d(k), d(N - k + 1)]`` over sorted differences.

    ``k`` is the largest rank with ``P(U <= k - 1) <= (1 - confidence) / 2`` under the null
    distribution of the Mann-Whitney U statistic; clamped to 1 (the full range) when the
    samples are too small for the requested level.
    """
    _check_fraction("confidence", confidence)
    total = n_baseline * n_current
    tail = (1.0 - confidence) / 2.0
    if total <= _EXACT_U_LIMIT:
        cdf = np.cumsum(u_null_distribution(n_baseline, n_current))
        rank = int(np.count_nonzero(cdf <= tail * (1.0 + 1e-12)))
    else:
        from scipy.stats import norm

        sd = math.sqrt(total * (n_baseline + n_current + 1) / 12.0)
        # P(U <= c) ~ Phi((c + 0.5 - N/2) / sd) with a continuity correction.
        rank = math.floor(total / 2.0 - 0.5 + norm.ppf(tail) * sd) + 1
    return min(max(rank, 1), (total + 1) // 2)


@lru_cache(maxsize=64)
def u_null_distribution(m: int, n: int) -> np.ndarray:
    """``P(U = u)`` for ``u = 0..m*n`` under H0 (no ties), exact.

    The counts are the coefficients of the Gaussian binomial ``[m + n choose m]_q``, built as
    ``prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)`` in exact integer arithmetic.
    """
    if m < 0 or n < 0:
        raise ValidationError(f"sample sizes must be >= 0, got m={m}, n={n}")
    coeffs = [1] + [0] * (m * n)
    for i in range(1, m + 1):
        step = n + i
        for k in range(len(coeffs) - 1, step - 1, -1):  # multiply by (1 - q^(n+i))
            coeffs[k] -= coeffs[k - step]
        for k in range(i, len(coeffs)):  # divide by (1 - q^i)
            coeffs[k] += coeffs[k - i]
    total = math.comb(m + n, m)
    return np.array([c / total for c in coeffs])


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN entries stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if len(valid) == 0:
        return q
    if ((p[valid] < 0) | (p[valid] > 1)).any():
        raise ValidationError("p-values must lie in [0, 1]")
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def _verdict_without_test(
    key: str, base: CellResult | None, cur: CellResult | None, metric: str
) -> CellComparison | None:
    """The verdict of a cell that cannot be tested (missing, failed, too few samples), or None."""
    if base is None or cur is None:
        present = cur if cur is not None else base
        assert present is not None
        verdict = "added" if base is None else "removed"
        return CellComparison(key=key, params=dict(present.params), verdict=verdict)
    nb = len(base.samples.get(metric, ()))
    nc = len(cur.samples.get(metric, ()))
    if base.status != "ok" or cur.status != "ok":
        note = f"baseline {base.status}, current {cur.status}"
        if cur.error or base.error:
            note += f": {cur.error or base.error}"
        return CellComparison(
            key=key,
            params=dict(cur.params),
            verdict="failed",
            n_baseline=nb,
            n_current=nc,
            note=note,
        )
    if nb < MIN_SAMPLES or nc < MIN_SAMPLES:
        return CellComparison(
            key=key,
            params=dict(cur.params),
            verdict="insufficient",
            n_baseline=nb,
            n_current=nc,
            note=f"needs >= {MIN_SAMPLES} {metric!r} samples on each side, got {nb} and {nc}",
        )
    return None


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValidationError(f"{name} must be strictly between 0 and 1, got {value!r}")


def _json(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _unjson(value: Any) -> float:
    return math.nan if value is None else float(value)
