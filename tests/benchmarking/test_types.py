"""The design documents' benchmarking vocabulary and their matrix benchmarking example."""

from __future__ import annotations

import ast
import asyncio
import json
from typing import Any

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking import compare, measure, model, stats, suites, workloads
from allele.observability.benchmarking.report import summary
from allele.observability.benchmarking.types import (
    BenchmarkComparison,
    BenchmarkConfig,
    BenchmarkReport,
    BenchmarkSuite,
    BenchmarkType,
    ComponentUnderTest,
    ParameterSet,
    PerformanceProfile,
    ResourceMeasurement,
)

# The example of ../shared/spec/1-implementation-status.md ("Matrix Benchmarking"), verbatim
# but for the import path (`allele.`, not `src.allele.`). It names `run_benchmark` without
# importing it; the namespace below provides it, from allele.observability.benchmarking.
DESIGN_EXAMPLE = """\
from allele.observability.benchmarking.config import get_matrix_benchmark_settings

# Get matrix benchmarking settings
settings = get_matrix_benchmark_settings()
combinations = settings.create_matrix_combinations()

# Run benchmarks across parameter matrix
for combo in combinations:
    # Execute benchmark with parameter combination
    result = await run_benchmark(combo)
"""


def test_each_name_is_the_existing_class_not_a_copy() -> None:
    assert BenchmarkConfig is suites.Suite
    assert BenchmarkSuite is model.SuiteRun
    assert BenchmarkComparison is compare.Comparison
    assert PerformanceProfile is stats.SampleStats
    assert BenchmarkReport is summary.RunSummary
    assert ResourceMeasurement is measure.ResourceMeasurement
    assert BenchmarkType is workloads.BenchmarkType
    assert ParameterSet is model.ParameterSet
    assert [t.value for t in BenchmarkType] == list(workloads.COMPONENTS)
    assert BenchmarkType.KRAKEN_PROCESSING == "kraken" and BenchmarkType.AGENT_CHAT == "agent"


def test_component_under_test_checks_and_prepares_its_workload() -> None:
    evolution = ComponentUnderTest(BenchmarkType.EVOLUTION)
    assert evolution.parameters["population_size"] == 100
    assert evolution.check({"population_size": 50}) is None
    assert "did you mean 'population_size'" in (evolution.check({"populaton_size": 5}) or "")
    assert "population_size must be an integer" in (evolution.check({"population_size": 1}) or "")
    prepared = ComponentUnderTest("python").prepare({"kernel": "sum", "size": 10})
    assert prepared.units == {"items": 10.0}
    prepared.operation()
    with pytest.raises(ConfigurationError, match="unknown component 'quantum'"):
        ComponentUnderTest("quantum")  # type: ignore[arg-type]


def test_parameter_sets_are_the_combinations_and_name_their_cell() -> None:
    from allele.observability.benchmarking.config import get_matrix_benchmark_settings

    combos = get_matrix_benchmark_settings().create_matrix_combinations("evolution")
    first = combos[0]
    assert isinstance(first, ParameterSet)
    assert first == {"component": "evolution", "population_size": 50, "mutation_rate": 0.05}
    assert first.component == "evolution"
    assert first.key == "mutation_rate=0.05,population_size=50"
    assert json.loads(json.dumps(first)) == dict(first)


def test_resource_measurement_round_trips_through_cell_metrics() -> None:
    used = ResourceMeasurement(rss_growth_bytes=1e8, tracemalloc_peak_bytes=9e7)
    cell = model.CellResult(params={"a": 1}, metrics={**used.to_metrics(), "best_fitness": 0.5})
    assert cell.resources == used and cell.resources.peak_rss_bytes is None


def test_the_design_documents_example_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    from allele.observability.benchmarking import run_benchmark

    # Small default matrices and one process per cell, so that the example runs in seconds.
    monkeypatch.setenv("ALLELE_BENCHMARK_RUNS", "1")
    monkeypatch.setenv("ALLELE_BENCHMARK_EVOLUTION_MATRIX", '{"population_size": [20, 40]}')
    monkeypatch.setenv("ALLELE_BENCHMARK_KRAKEN_MATRIX", '{"reservoir_size": [20]}')
    monkeypatch.setenv("ALLELE_BENCHMARK_AGENT_MATRIX", '{"temperature": [0.5]}')
    results: list[model.CellResult] = []

    async def recording(combo: Any) -> model.CellResult:
        result = await run_benchmark(combo, quick=True)
        results.append(result)
        return result

    code = compile(DESIGN_EXAMPLE, "<design example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"run_benchmark": recording}
    outcome = eval(code, namespace)  # the example text above, nothing else
    assert asyncio.iscoroutine(outcome)
    asyncio.run(outcome)
    assert [r.status for r in results] == ["ok"] * 4, [r.error for r in results]
    assert [r.params.get("population_size") for r in results[:2]] == [20, 40]
    assert results[0].params["generations"] == 5  # the evolution suite's quick params filled in
    assert all(len(r.samples["time_s"]) >= 3 and r.metrics["latency_p50_s"] > 0 for r in results)
    assert namespace["result"] is results[-1]


def test_run_benchmark_as_written_uses_the_full_suite_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from allele.observability.benchmarking import run_benchmark

    monkeypatch.setenv("ALLELE_BENCHMARK_RUNS", "1")
    combo = ParameterSet(component="python", kernel="sum", size=10)
    result = asyncio.run(run_benchmark(combo))
    assert result.status == "ok" and result.params == {"kernel": "sum", "size": 10}
    assert len(result.samples["time_s"]) == suites.builtin_suite("python").samples
