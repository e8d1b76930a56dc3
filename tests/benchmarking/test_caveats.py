"""Noise caveats: a run says when its timings are too noisy to trust, wherever it is shown."""

from __future__ import annotations

import numpy as np
import pytest

from allele.observability.benchmarking.caveats import (
    comparison_caveats,
    run_caveats,
    same_code_and_machine,
)
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.benchmarking.report.markdown import markdown_report


def _run(cv: float, *, cpus: int = 8, load: float = 0.2, workers: int = 1) -> SuiteRun:
    rng = np.random.default_rng(0)
    cells = [
        CellResult(
            params={"size": size},
            samples={"time_s": (1e-3 * size * (1 + cv * rng.standard_normal(40))).tolist()},
        )
        for size in (1, 2, 3)
    ]
    return SuiteRun(
        name="s",
        component="python",
        cells=cells,
        machine={"node": "box", "cpu": {"count": cpus}, "load_average": load,
                 "load_average_end": load},
        config={"workers": workers},
        commit={"id": "ab" * 20, "dirty": False},
    )  # fmt: skip


def test_a_quiet_run_on_an_idle_machine_has_no_caveat() -> None:
    assert run_caveats(_run(0.01)) == []


def test_a_spread_too_wide_for_the_threshold_is_named() -> None:
    (line,) = run_caveats(_run(0.3))
    assert line.startswith("spread: 3 of 3 cells vary too much for a 5% threshold")
    assert "size=" in line and "CV" in line
    # A wider threshold tolerates a little more spread, never a CV of 10 % or more.
    assert run_caveats(_run(0.3), threshold=0.5) != []


def test_load_above_the_free_cores_and_parallel_workers_are_named() -> None:
    loaded = run_caveats(_run(0.01, cpus=2, load=3.0, workers=2))
    assert any(line.startswith("load: the load average was 3.0 at the start") for line in loaded)
    assert any(
        line.startswith("parallel workers: 2 workers ran at once on 2 cores") for line in loaded
    )
    assert run_caveats(_run(0.01, cpus=8, load=3.0, workers=2)) == []


def test_an_unchanged_commit_and_machine_is_said_in_check_and_reports() -> None:
    base, current = _run(0.01), _run(0.01)
    assert same_code_and_machine(base, current)
    lines = comparison_caveats(base, current)
    assert lines[-1].startswith("unchanged: the baseline and this run measured the same commit")
    current.commit = {"id": "cd" * 20, "dirty": False}
    assert comparison_caveats(base, current) == []
    dirty = _run(0.01)
    dirty.commit = {"id": "ab" * 20, "dirty": True}
    assert not same_code_and_machine(base, dirty)
    assert "> warning: spread: 3 of 3 cells" in markdown_report(_run(0.3))


def test_the_html_headline_carries_the_caveats() -> None:
    pytest.importorskip("plotly")
    from allele.observability.benchmarking.report.html import html_report

    text = html_report(_run(0.3, cpus=2, load=3.0, workers=2))
    assert '<p class="warn">warning: spread: 3 of 3 cells' in text
    assert '<p class="warn">warning: parallel workers' in text
