"""A/A calibration: per-cell noise from repeated runs, and its effect on verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.benchmarking.compare import compare_runs, shift_estimates
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.benchmarking.noise import noise_from_runs, summarize_noise


def _run(rng: np.random.Generator, spreads: dict[str, float], offset: float = 1.0) -> SuiteRun:
    cells = [
        CellResult(
            params={"cell": name},
            samples={"time_s": (offset * (1 + spread * rng.standard_normal(20))).tolist()},
        )
        for name, spread in spreads.items()
    ]
    return SuiteRun(name="aa", component="test", cells=cells)


def test_noise_is_the_wider_end_of_the_aa_shift_interval() -> None:
    rng = np.random.default_rng(0)
    a = _run(rng, {"quiet": 0.01, "loud": 0.15})
    b = _run(rng, {"quiet": 0.01, "loud": 0.15})
    noise = noise_from_runs([a, b])
    s = shift_estimates(
        [c.samples["time_s"] for c in a.cells], [c.samples["time_s"] for c in b.cells]
    )
    expected = np.maximum(np.abs(s.ci_low), np.abs(s.ci_high))
    assert noise == pytest.approx({"cell='quiet'": expected[0], "cell='loud'": expected[1]})
    assert noise["cell='quiet'"] < 0.02 < noise["cell='loud'"]


def test_run_to_run_offset_counts_as_noise() -> None:
    rng = np.random.default_rng(1)
    a = _run(rng, {"x": 0.005}, offset=1.0)
    b = _run(rng, {"x": 0.005}, offset=1.04)  # the machine was 4% slower the second time
    assert noise_from_runs([a, b])["cell='x'"] > 0.04


def test_more_runs_keep_the_largest_pairwise_noise() -> None:
    rng = np.random.default_rng(2)
    runs = [_run(rng, {"x": 0.01}, offset=o) for o in (1.0, 1.0, 1.08)]
    assert noise_from_runs(runs)["cell='x'"] >= noise_from_runs(runs[:2])["cell='x'"]
    assert noise_from_runs(runs)["cell='x'"] > 0.07


def test_calibrated_noise_suppresses_a_regression_in_a_noisy_cell() -> None:
    rng = np.random.default_rng(3)
    noise = noise_from_runs([_run(rng, {"x": 0.01}, 1.0), _run(rng, {"x": 0.01}, 1.09)])
    baseline = _run(rng, {"x": 0.01}, 1.0)
    current = _run(rng, {"x": 0.01}, 1.08)
    assert compare_runs(baseline, current).regressions  # without calibration: +8% > 5%
    assert not compare_runs(baseline, current, noise=noise).regressions


def test_cells_missing_failed_or_thin_are_left_out() -> None:
    rng = np.random.default_rng(4)
    a = _run(rng, {"x": 0.01, "only_a": 0.01})
    b = _run(rng, {"x": 0.01})
    b.cells.append(CellResult(params={"cell": "only_a"}, status="error", error="boom"))
    assert set(noise_from_runs([a, b])) == {"cell='x'"}
    with pytest.raises(ValidationError, match="at least 2 runs"):
        noise_from_runs([a])


def test_summarize_noise() -> None:
    summary = summarize_noise({"a": 0.01, "b": 0.03, "c": 0.02})
    assert summary["median"] == pytest.approx(0.02)
    assert summary["max"] == pytest.approx(0.03)
    assert summarize_noise({})["cells"] == 0
