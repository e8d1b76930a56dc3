"""The built-in components measured in-process: throughput in their own units, quality, memory."""

from __future__ import annotations

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.executors.base import Job
from allele.observability.benchmarking.worker import run_job
from allele.observability.benchmarking.workloads import prepare


def _measure(component: str, **params: object) -> object:
    job = Job(
        cell_index=0,
        run_index=0,
        component=component,
        params=params,
        samples=3,
        warmup=0,
        min_time=0.001,
        measure_memory=True,
    )
    result = run_job(job)
    assert result.status == "ok", result.error
    return result


def _per_sample_rate(result: object, unit: str, per_op: float) -> None:
    times = result.samples["time_s"]  # type: ignore[attr-defined]
    rates = result.samples[f"{unit}_per_s"]  # type: ignore[attr-defined]
    assert rates == pytest.approx([per_op / t for t in times])


def test_evolution_reports_generations_per_second_and_fitness() -> None:
    result = _measure("evolution", population_size=20, mutation_rate=0.1, generations=3)
    _per_sample_rate(result, "generations", 3.0)
    assert 0.0 < result.quality["best_fitness"] <= 1.0
    assert result.quality["mean_fitness"] <= result.quality["best_fitness"]
    assert result.quality["evaluations"] >= 20 * 3
    assert len(result.samples["cpu_time_s"]) == 3
    assert result.metrics["peak_rss_bytes"] > 1e6
    assert result.metrics["tracemalloc_peak_bytes"] > 0
    assert result.metrics["gpu_available"] in (0.0, 1.0)


def test_kraken_reports_sequences_and_steps_per_second_and_memory_capacity() -> None:
    result = _measure("kraken", reservoir_size=30, connectivity=0.2, sequence_length=40)
    _per_sample_rate(result, "sequences", 1.0)
    _per_sample_rate(result, "steps", 40.0)
    assert result.quality["memory_capacity"] > 0


def test_agent_reports_turns_and_tokens_per_second() -> None:
    result = _measure("agent", temperature=0.5, max_tokens=16)
    _per_sample_rate(result, "turns", 1.0)
    tokens = result.quality["tokens_out_per_turn"]
    assert 0 < tokens <= 16
    # Tokens per turn are known once turns ran; the rate uses that figure.
    _per_sample_rate(result, "tokens", tokens)
    assert result.quality["error_rate"] == 0.0


def test_processes_of_one_cell_get_different_seeds() -> None:
    quality = [
        prepare("kraken", {"reservoir_size": 30, "sequence_length": 10}, run_index=r).quality()
        for r in (0, 0, 1)
    ]
    assert quality[0] == quality[1] and quality[0] != quality[2]


def test_unknown_parameters_and_components_are_named() -> None:
    with pytest.raises(
        ConfigurationError, match=r"has no parameter 'populaton'; did you mean 'population_size'"
    ):
        prepare("evolution", {"populaton": 10})
    with pytest.raises(ConfigurationError, match="unknown component 'quantum'"):
        prepare("quantum", {})
