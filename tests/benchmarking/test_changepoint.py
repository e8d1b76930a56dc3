"""PELT change points: known steps found at the right index, the optimum of the penalised cost."""

from __future__ import annotations

import math

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.benchmarking.changepoint import (
    detect_change_points,
    robust_sigma,
    suite_change_points,
)
from allele.observability.benchmarking.model import CellResult, SuiteRun


def _optimal_partition(x: np.ndarray, penalty: float, min_size: int, sigma: float) -> list[int]:
    """The exhaustive O(n^2) optimal partitioning that PELT must reproduce."""
    z = (x - np.median(x)) / sigma
    n = len(z)
    best = [math.inf] * (n + 1)
    best[0] = -penalty
    last = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(0, end - min_size + 1):
            if 0 < start < min_size:
                continue
            seg = z[start:end]
            total = best[start] + float(((seg - seg.mean()) ** 2).sum()) + penalty
            if total < best[end]:
                best[end], last[end] = total, start
    points, end = [], n
    while end > 0:
        if last[end] > 0:
            points.append(last[end])
        end = last[end]
    return sorted(points)


def test_two_large_steps_are_found_exactly() -> None:
    rng = np.random.default_rng(0)
    exact = 0
    for _ in range(40):
        x = np.concatenate([rng.normal(0, 1, 40), rng.normal(6, 1, 30), rng.normal(-2, 1, 50)])
        points = detect_change_points(x)
        assert {40, 70} <= set(points)
        exact += points == [40, 70]
    # An extra point in a flat stretch is a noise false alarm (about 3% of series).
    assert exact >= 37


def test_moderate_steps_are_found_within_one_index() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(50):
        x = np.concatenate([rng.normal(0, 1, 30), rng.normal(3, 1, 30)])
        points = detect_change_points(x)
        hits += len(points) == 1 and abs(points[0] - 30) <= 1
    assert hits >= 45


def test_pure_noise_rarely_has_a_change_point() -> None:
    rng = np.random.default_rng(2)
    false_alarms = sum(bool(detect_change_points(rng.normal(0, 1, 100))) for _ in range(100))
    assert false_alarms <= 5


@pytest.mark.parametrize("min_size", [1, 2, 3])
def test_pelt_equals_exhaustive_optimal_partitioning(min_size: int) -> None:
    rng = np.random.default_rng(10 + min_size)
    for _ in range(15):
        x = np.cumsum(rng.normal(0, 1, 50)) * 0.3 + rng.normal(0, 1, 50)
        penalty = 3 * math.log(len(x))
        sigma = robust_sigma(x)
        assert detect_change_points(x, min_size=min_size, sigma=sigma) == _optimal_partition(
            x, penalty, min_size, sigma
        )


def test_edge_cases_and_validation() -> None:
    assert detect_change_points(np.ones(10)) == []
    assert detect_change_points([1, 1, 1, 1, 5, 5, 5, 5]) == [4]
    assert detect_change_points([1.0, 2.0]) == []
    with pytest.raises(ValidationError, match="finite"):
        detect_change_points([1.0, math.nan, 2.0, 3.0])
    with pytest.raises(ValidationError, match="1-D"):
        detect_change_points(np.ones((3, 3)))
    with pytest.raises(ValidationError, match="min_size"):
        detect_change_points([1.0, 2.0], min_size=0)


def test_suite_history_reports_the_run_where_a_cell_slowed_down() -> None:
    rng = np.random.default_rng(5)
    history = []
    for i in range(24):
        slow = 1.2 if i >= 15 else 1.0
        cells = [
            CellResult(
                params={"n": 1},
                samples={"time_s": (1e-3 * slow * (1 + 0.01 * rng.standard_normal(10))).tolist()},
            ),
            CellResult(
                params={"n": 2},
                samples={"time_s": (2e-3 * (1 + 0.01 * rng.standard_normal(10))).tolist()},
            ),
        ]
        history.append(SuiteRun(name="h", component="t", suite_id=f"run{i}", cells=cells))
    found = suite_change_points(history)
    assert list(found) == ["n=1"]
    (point,) = found["n=1"]
    assert point.index == 15 and point.suite_id == "run15"
    assert point.relative_change == pytest.approx(0.2, abs=0.01)
    assert point.to_dict()["suite_id"] == "run15"
    assert suite_change_points([]) == {}
