"""The built-in ``cmr`` component and suite: a forward pass with a full memory, measured."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the cmr workload needs the torch extra")

from allele.errors import ConfigurationError
from allele.observability.benchmarking.executors.base import Job
from allele.observability.benchmarking.suites import builtin_suite
from allele.observability.benchmarking.worker import run_job
from allele.observability.benchmarking.workloads import prepare


def test_cmr_reports_tokens_per_second_and_memory_quality() -> None:
    params = {"layers": 2, "d_model": 32, "buffer_size": 16, "sequence_length": 24}
    job = Job(
        cell_index=0,
        run_index=0,
        component="cmr",
        params=params,
        samples=3,
        warmup=0,
        min_time=0.001,
        measure_memory=False,
    )
    result = run_job(job)
    assert result.status == "ok", result.error
    rates = result.samples["tokens_per_s"]
    assert rates == pytest.approx([24.0 / t for t in result.samples["time_s"]])
    q = result.quality
    # 23 states captured per pass into 16 slots: some are dropped at once.
    assert 0.0 < q["storage_efficiency"] < 1.0
    assert q["memory_utilization"] == 1.0
    assert 0.0 < q["cmr_time_share"] < 1.0


def test_cmr_parameters_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="at least 2"):
        prepare("cmr", {"layers": 1})
    with pytest.raises(ConfigurationError, match="has no parameter 'heads'"):
        prepare("cmr", {"heads": 3})


def test_the_builtin_cmr_suite_spans_the_four_dimensions() -> None:
    suite = builtin_suite("cmr")
    cells = suite.cells()
    assert len(cells) == 2 * 2 * 4 * 2
    assert {c["retrieval_strategy"] for c in cells} == {
        "similarity",
        "contextual",
        "multi_criteria",
        "hybrid",
    }
    quick = suite.quick_variant()
    assert len(quick.cells()) == 2
    prepared = prepare("cmr", quick.cell_params(quick.cells()[1]))
    prepared.operation()
    assert prepared.units["tokens"] == 64.0
