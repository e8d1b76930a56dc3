"""Statistics and comparison of a 1000-cell grid (20 samples a cell): ours against a per-cell loop.

Ours: ``run_stats`` of both runs (median + binomial CI, percentiles, MAD, outliers) and
``compare_runs`` (Mann-Whitney, Hodges-Lehmann + Moses CI, Benjamini-Hochberg, verdicts).
Anchor: the obvious per-cell loop over numpy/scipy computing the same figures.

    python benchmarks/bench_stats.py [--quick]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from allele.observability.benchmarking.compare import compare_runs, moses_rank  # noqa: E402
from allele.observability.benchmarking.model import CellResult, SuiteRun  # noqa: E402
from allele.observability.benchmarking.stats import median_ci_ranks, run_stats  # noqa: E402

CELLS, SAMPLES, TARGET_S = 1000, 20, 0.5


def simulated_run(rng: np.random.Generator, shifted: set[int]) -> SuiteRun:
    cells = []
    for i in range(CELLS):
        x = 1e-3 * (1 + i % 10) * (1 + 0.03 * rng.standard_normal(SAMPLES))
        if i in shifted:
            x *= 1.10
        hit = rng.uniform(size=SAMPLES) < 0.05
        x[hit] *= rng.uniform(1.5, 3.0, hit.sum())
        cells.append(CellResult(params={"cell": i}, samples={"time_s": x.tolist()}))
    return SuiteRun(name="grid", component="bench", cells=cells)


def ours(baseline: SuiteRun, current: SuiteRun) -> set[str]:
    run_stats(baseline)
    run_stats(current)
    return {c.key for c in compare_runs(baseline, current).regressions}


def anchor(baseline: SuiteRun, current: SuiteRun) -> set[str]:
    """The same figures, one cell at a time."""
    for run in (baseline, current):
        for cell in run.cells:
            x = np.sort(cell.samples["time_s"])
            np.percentile(x, [5, 25, 50, 75, 95, 99])
            np.mean(x), np.std(x, ddof=1), scipy_stats.median_abs_deviation(x)
            lo, hi, _ = median_ci_ranks(len(x))
            x[lo], x[hi]
    keys, shifts, p_values = [], [], []
    for b, c in zip(baseline.cells, current.cells, strict=True):
        x, y = np.asarray(b.samples["time_s"]), np.asarray(c.samples["time_s"])
        diffs = np.sort(np.subtract.outer(y, x).ravel())
        k = moses_rank(len(x), len(y))
        diffs[k - 1], diffs[len(diffs) - k]
        keys.append(c.key)
        shifts.append(np.median(diffs) / np.median(x))
        p_values.append(scipy_stats.mannwhitneyu(y, x).pvalue)
    q = scipy_stats.false_discovery_control(p_values)
    return {k for k, s, qv in zip(keys, shifts, q, strict=True) if qv < 0.05 and s > 0.05}


def timed(fn, *args) -> tuple[float, set[str]]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    rng = np.random.default_rng(0)
    shifted = set(rng.choice(CELLS, 100, replace=False).tolist())
    baseline, current = simulated_run(rng, set()), simulated_run(rng, shifted)
    ours(baseline, current)  # warm the caches (imports, rank tables) for both sides
    ours_times, anchor_times = [], []
    for _ in range(repeats):
        t, ours_found = timed(ours, baseline, current)
        ours_times.append(t)
        t, anchor_found = timed(anchor, baseline, current)
        anchor_times.append(t)
    if ours_found != anchor_found:
        raise SystemExit(f"verdicts differ: ours {len(ours_found)}, anchor {len(anchor_found)}")
    found = len({f"cell={i}" for i in shifted} & ours_found)
    print(f"regressions found: {found}/100, false alarms: {len(ours_found) - found}")
    o, a = statistics.median(ours_times), statistics.median(anchor_times)
    print(
        f"RATIO stats+compare {CELLS}-cell grid: ours={o:.4f}s anchor={a:.4f}s "
        f"ratio={o / a:.3f} (target <= {TARGET_S} s; anchor = per-cell numpy/scipy loop)"
    )


if __name__ == "__main__":
    main()
