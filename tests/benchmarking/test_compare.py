"""Comparison of suite runs: HL shifts, Moses CIs, Mann-Whitney, BH and the verdicts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import false_discovery_control, mannwhitneyu

from allele.errors import ValidationError
from allele.observability.benchmarking.compare import (
    Comparison,
    benjamini_hochberg,
    compare_runs,
    hodges_lehmann,
    moses_rank,
    shift_estimates,
    u_null_distribution,
)
from allele.observability.benchmarking.model import CellResult, SuiteRun


def _run(cells: dict[str, list[float]], name: str = "suite") -> SuiteRun:
    return SuiteRun(
        name=name,
        component="test",
        cells=[CellResult(params={"cell": k}, samples={"time_s": v}) for k, v in cells.items()],
    )


def _brute_u_distribution(m: int, n: int) -> np.ndarray:
    counts = np.zeros(m * n + 1)
    for chosen in itertools.combinations(range(m + n), m):
        # U counts the (x, y) pairs with x above y: sum of x's zero-based ranks minus m(m-1)/2.
        counts[sum(chosen) - m * (m - 1) // 2] += 1
    return counts / counts.sum()


@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 4), (5, 5), (6, 3)])
def test_u_null_distribution_is_exact(m: int, n: int) -> None:
    assert u_null_distribution(m, n) == pytest.approx(_brute_u_distribution(m, n), abs=1e-15)


def test_moses_rank_matches_critical_values() -> None:
    for m, n in [(5, 5), (6, 3), (8, 8)]:
        cdf = np.cumsum(_brute_u_distribution(m, n))
        k = moses_rank(m, n, 0.95)
        assert cdf[k - 1] <= 0.025 < cdf[k] or (k == 1 and cdf[0] > 0.025)
    # Tabulated two-sided 5% critical value of U for n1 = n2 = 20 is 127: rank 128.
    assert moses_rank(20, 20) == 128
    # Above the exact limit (N = 2500) the normal approximation gives the exact ranks here.
    assert moses_rank(50, 50) == 966
    for m in (51, 60):
        cdf = np.cumsum(u_null_distribution(m, m))
        assert moses_rank(m, m) == int(np.count_nonzero(cdf <= 0.025))


def test_hodges_lehmann_equals_brute_force_median_of_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 1, 9)
    y = rng.normal(11, 1, 12)
    diffs = sorted(b - a for a in x for b in y)
    k = moses_rank(9, 12)
    shift, low, high = hodges_lehmann(x, y)
    assert shift == pytest.approx(float(np.median(diffs)))
    assert low == pytest.approx(diffs[k - 1])
    assert high == pytest.approx(diffs[len(diffs) - k])


def test_shift_ci_covers_the_true_shift() -> None:
    rng = np.random.default_rng(11)
    trials = 1000
    base = rng.exponential(1.0, size=(trials, 15)) + 1.0
    cur = rng.exponential(1.0, size=(trials, 15)) + 1.5  # true location shift 0.5
    s = shift_estimates(list(base), list(cur))
    covered = np.mean((s.absolute_ci_low <= 0.5) & (s.absolute_ci_high >= 0.5))
    assert 0.93 <= covered <= 0.98


def test_p_values_are_the_mann_whitney_ones() -> None:
    rng = np.random.default_rng(5)
    base = [rng.normal(0, 1, 12) for _ in range(4)]
    cur = [rng.normal(0.8, 1, 12) for _ in range(4)]
    s = shift_estimates(base, cur)
    for i in range(4):
        assert s.p_value[i] == pytest.approx(mannwhitneyu(cur[i], base[i]).pvalue)


def test_benjamini_hochberg_known_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Sorted 0.005, 0.01, 0.03, 0.04 -> *4/rank: 0.02, 0.02, 0.04, 0.04.
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(0)
    many = rng.uniform(size=200) ** 3
    assert benjamini_hochberg(many) == pytest.approx(false_discovery_control(many))
    with_nan = benjamini_hochberg([0.01, math.nan, 0.02])
    assert math.isnan(with_nan[1])
    assert with_nan[[0, 2]] == pytest.approx([0.02, 0.02])
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        benjamini_hochberg([1.5])


def _simulated_grid(rng: np.random.Generator, shifted: set[int], factor: float) -> SuiteRun:
    cells = {}
    for i in range(1000):
        level = 1e-3 * (1 + i % 10)
        x = level * (1 + 0.03 * rng.standard_normal(20))
        if i in shifted:
            x *= factor
        hit = rng.uniform(size=20) < 0.05  # 5% of samples hit by a 1.5-3x slowdown
        x[hit] *= rng.uniform(1.5, 3.0, hit.sum())
        cells[f"c{i}"] = x.tolist()
    return _run(cells)


def test_simulated_grid_finds_the_shifts_with_few_false_alarms() -> None:
    rng = np.random.default_rng(2024)
    shifted = set(rng.choice(1000, 100, replace=False).tolist())
    baseline = _simulated_grid(rng, set(), 1.0)
    current = _simulated_grid(rng, shifted, 1.10)
    comparison = compare_runs(baseline, current, threshold=0.05, alpha=0.05)
    flagged = {int(c.key.split("=")[1].strip("'")[1:]) for c in comparison.regressions}
    found = len(flagged & shifted)
    false_alarms = len(flagged - shifted)
    print(f"1000-cell grid: found {found}/100 shifts, {false_alarms} false alarms")
    assert found >= 99
    assert false_alarms <= 5
    assert not comparison.improvements


def test_threshold_and_noise_set_the_floor() -> None:
    rng = np.random.default_rng(9)
    base = (1.0 + 0.005 * rng.standard_normal(30)).tolist()
    small = (1.03 + 0.005 * rng.standard_normal(30)).tolist()  # +3%: significant, but small
    big = (1.10 + 0.005 * rng.standard_normal(30)).tolist()
    baseline = _run({"small": base, "big": base})
    current = _run({"small": small, "big": big})
    c = compare_runs(baseline, current, threshold=0.05)
    assert c.cell("cell='small'").verdict == "unchanged"
    assert c.cell("cell='small'").q_value < 0.05
    assert c.cell("cell='big'").verdict == "regression"
    assert c.cell("cell='big'").shift == pytest.approx(0.10, abs=0.01)
    # A calibrated noise of 12% on the big cell raises its floor above the +10% shift.
    c = compare_runs(baseline, current, threshold=0.05, noise={"cell='big'": 0.12})
    assert c.cell("cell='big'").verdict == "unchanged"
    assert c.cell("cell='big'").floor == 0.12
    # A lower threshold makes the +3% a regression.
    c = compare_runs(baseline, current, threshold=0.01)
    assert c.cell("cell='small'").verdict == "regression"


def test_improvement_and_higher_is_better() -> None:
    rng = np.random.default_rng(4)
    base = (1.0 + 0.01 * rng.standard_normal(20)).tolist()
    faster = (0.8 + 0.01 * rng.standard_normal(20)).tolist()
    c = compare_runs(_run({"a": base}), _run({"a": faster}))
    assert c.cells[0].verdict == "improvement"
    assert c.cells[0].shift == pytest.approx(-0.2, abs=0.01)
    # For a throughput metric, a drop of 20% is a regression.
    c = compare_runs(_run({"a": base}), _run({"a": faster}), higher_is_better=True)
    assert c.cells[0].verdict == "regression"


def test_untestable_cells_get_their_own_verdicts() -> None:
    baseline = SuiteRun(
        name="s",
        component="c",
        cells=[
            CellResult(params={"k": "gone"}, samples={"time_s": [1.0, 1.1]}),
            CellResult(params={"k": "broken"}, samples={"time_s": [1.0, 1.1]}),
            CellResult(params={"k": "thin"}, samples={"time_s": [1.0, 1.1]}),
        ],
    )
    current = SuiteRun(
        name="s",
        component="c",
        cells=[
            CellResult(params={"k": "broken"}, status="timeout", error="took 60 s"),
            CellResult(params={"k": "thin"}, samples={"time_s": [1.0]}),
            CellResult(params={"k": "new"}, samples={"time_s": [1.0, 1.2]}),
        ],
    )
    c = compare_runs(baseline, current)
    verdicts = {cell.key: cell.verdict for cell in c.cells}
    assert verdicts == {
        "k='gone'": "removed",
        "k='broken'": "failed",
        "k='thin'": "insufficient",
        "k='new'": "added",
    }
    assert "took 60 s" in c.cell("k='broken'").note
    assert c.counts()["failed"] == 1 and not c.has_regressions


def test_comparison_round_trips_through_json_dict() -> None:
    rng = np.random.default_rng(1)
    c = compare_runs(
        _run({"a": rng.normal(1, 0.01, 10).tolist(), "b": [1.0, 1.0]}),
        _run({"a": rng.normal(1.2, 0.01, 10).tolist()}),
    )
    again = Comparison.from_dict(c.to_dict())
    assert again.to_dict() == c.to_dict()
    assert again.regressions[0].key == "cell='a'"
    assert c.to_dict()["cells"][1]["shift"] is None  # NaN becomes null


def test_bad_settings_are_rejected() -> None:
    run = _run({"a": [1.0, 2.0]})
    with pytest.raises(ValidationError, match="alpha"):
        compare_runs(run, run, alpha=0.0)
    with pytest.raises(ValidationError, match="threshold"):
        compare_runs(run, run, threshold=-0.1)
    with pytest.raises(ValidationError, match="must match"):
        shift_estimates([[1.0, 2.0]], [])


def test_the_headline_change_is_the_ratio_of_medians_and_never_contradicts_them() -> None:
    # A skewed pair where the Hodges-Lehmann shift and the medians disagree in sign: the
    # current median is higher (718 -> 753 us) while most pairwise differences are negative.
    from allele.observability.benchmarking.compare import median_changes

    base = [700e-6] * 10 + [718e-6] + [900e-6] * 10
    cur = [600e-6] * 10 + [753e-6] + [760e-6] * 10
    run_b = SuiteRun(
        name="s", component="python", cells=[CellResult({"a": 1}, samples={"time_s": base})]
    )
    run_c = SuiteRun(
        name="s", component="python", cells=[CellResult({"a": 1}, samples={"time_s": cur})]
    )
    cell = compare_runs(run_b, run_c).cells[0]
    assert cell.baseline_median == pytest.approx(718e-6) and cell.current_median == pytest.approx(
        753e-6
    )
    assert cell.change == pytest.approx(753 / 718 - 1)  # +4.9 %, as the medians say
    assert cell.shift < 0  # the HL shift, shown as a detail, points the other way
    low, high = cell.change_ci
    assert low <= cell.change <= high
    assert cell.verdict != "improvement"  # a verdict never contradicts the medians
    # The interval covers the true ratio of medians at about its level (lognormal samples).
    rng = np.random.default_rng(1)
    b = rng.lognormal(0.0, 0.2, size=(400, 30))
    c = rng.lognormal(np.log(1.1), 0.2, size=(400, 30))
    change, lo, hi = median_changes(b.tolist(), c.tolist())
    covered = np.mean((lo <= 0.1) & (hi >= 0.1))
    assert 0.88 <= covered <= 0.995
    assert np.allclose(change, np.median(c, axis=1) / np.median(b, axis=1) - 1)
