"""Descriptive statistics of benchmark samples: values against numpy/scipy and coverage."""

from __future__ import annotations

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.benchmarking.stats import (
    describe,
    describe_many,
    median_ci_ranks,
    pad,
    run_stats,
)


def test_describe_matches_numpy_definitions() -> None:
    rng = np.random.default_rng(1)
    x = rng.lognormal(size=37)
    s = describe(x)
    assert s.n == 37
    assert s.mean == pytest.approx(np.mean(x))
    assert s.stddev == pytest.approx(np.std(x, ddof=1))
    assert s.median == pytest.approx(np.median(x))
    expected = np.percentile(x, [5, 25, 50, 75, 95, 99])
    assert list(s.percentiles.values()) == pytest.approx(list(expected))
    assert s.mad == pytest.approx(np.median(np.abs(x - np.median(x))))
    assert s.iqr == pytest.approx(expected[3] - expected[1])
    assert s.cv == pytest.approx(np.std(x, ddof=1) / np.mean(x))


def test_grid_rows_of_different_lengths_equal_single_cell_results() -> None:
    rng = np.random.default_rng(2)
    cells = [rng.normal(10, 1, size=n).tolist() for n in (5, 20, 7, 1, 33)]
    grid = describe_many(cells, keys=list("abcde"))
    for i, cell in enumerate(cells):
        one = describe(cell)
        row = grid.cell(i)
        assert row.n == len(cell)
        assert row.median == pytest.approx(np.median(cell))
        assert row.median == pytest.approx(one.median)
        assert row.median_ci == pytest.approx(one.median_ci)
        assert row.mad == pytest.approx(one.mad)
    assert grid.cell("c").n == 7


def test_median_ci_ranks_are_the_binomial_order_statistics() -> None:
    # n = 20 at 95%: the classic table gives the 6th and 15th order statistics.
    lo, hi, level = median_ci_ranks(20, 0.95)
    assert (lo, hi) == (5, 14)
    assert level == pytest.approx(1 - 2 * 0.020694732666015625)
    # n = 100: 40th and 61st order statistics.
    assert median_ci_ranks(100, 0.95)[:2] == (39, 60)
    # Five samples cannot reach 95%: the whole range, at its true level 1 - 2/32.
    assert median_ci_ranks(5, 0.95) == (0, 4, pytest.approx(0.9375))


def test_median_ci_covers_the_true_median_at_its_level() -> None:
    rng = np.random.default_rng(7)
    trials = 4000
    data = rng.lognormal(mean=0.0, sigma=1.0, size=(trials, 20))  # true median exp(0) = 1
    grid = describe_many(list(data))
    covered = np.mean((grid.ci_low <= 1.0) & (grid.ci_high >= 1.0))
    level = grid.ci_level[0]
    assert level == pytest.approx(0.9586, abs=1e-4)
    # Binomial standard error of the coverage over 4000 trials is ~0.003.
    assert abs(covered - level) < 0.012


def test_outliers_are_flagged_by_index_not_dropped() -> None:
    x = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 9.0, 0.98, -5.0]
    s = describe(x)
    assert s.outliers == (6, 8)
    assert s.n == len(x)
    assert s.mean == pytest.approx(np.mean(x))  # the outliers still count


def test_single_sample_has_undefined_spread() -> None:
    s = describe([2.5])
    assert s.median == 2.5
    assert np.isnan(s.stddev) and np.isnan(s.cv)
    assert s.to_dict()["stddev"] is None
    assert s.median_ci == (2.5, 2.5)


def test_non_finite_samples_are_rejected_by_cell() -> None:
    with pytest.raises(ValidationError, match="cell 1"):
        pad([[1.0, 2.0], [1.0, float("nan")]])
    with pytest.raises(ValidationError, match="confidence"):
        describe([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValidationError, match="2 keys for 1 cells"):
        describe_many([[1.0]], keys=["a", "b"])


def test_run_stats_skips_failed_and_empty_cells() -> None:
    run = SuiteRun(
        name="s",
        component="c",
        cells=[
            CellResult(params={"x": 1}, samples={"time_s": [1.0, 2.0, 3.0]}),
            CellResult(params={"x": 2}, status="error", error="boom"),
            CellResult(params={"x": 3}, samples={"time_s": []}),
        ],
    )
    grid = run_stats(run)
    assert grid.keys == ["x=1"]
    assert grid.cell("x=1").median == 2.0
    with pytest.raises(ValidationError, match="x=2"):
        grid.cell("x=2")
