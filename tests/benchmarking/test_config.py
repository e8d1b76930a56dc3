"""MatrixBenchmarkSettings: ALLELE_BENCHMARK_* overrides and the design documents' combinations."""

from __future__ import annotations

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.config import get_matrix_benchmark_settings
from allele.observability.benchmarking.suites import Suite

_VARIABLES = ("RUNS", "TIMEOUT", "WORKERS", "MEASURE_MEMORY", "EVOLUTION_MATRIX")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(f"ALLELE_BENCHMARK_{name}", raising=False)


def test_defaults() -> None:
    settings = get_matrix_benchmark_settings()
    assert (settings.runs, settings.timeout, settings.workers, settings.measure_memory) == (
        3,
        300.0,
        1,
        True,
    )


def test_environment_overrides_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLELE_BENCHMARK_RUNS", "7")
    monkeypatch.setenv("ALLELE_BENCHMARK_TIMEOUT", "12.5")
    monkeypatch.setenv("ALLELE_BENCHMARK_WORKERS", "2")
    monkeypatch.setenv("ALLELE_BENCHMARK_MEASURE_MEMORY", "false")
    settings = get_matrix_benchmark_settings()
    assert (settings.runs, settings.timeout, settings.workers, settings.measure_memory) == (
        7,
        12.5,
        2,
        False,
    )


def test_invalid_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLELE_BENCHMARK_RUNS", "0")
    with pytest.raises(ConfigurationError, match="ALLELE_BENCHMARK_RUNS"):
        get_matrix_benchmark_settings()


def test_create_matrix_combinations_as_in_the_design_documents() -> None:
    combinations = get_matrix_benchmark_settings().create_matrix_combinations()
    assert len(combinations) == 20 + 12 + 4
    assert combinations[0] == {
        "component": "evolution",
        "population_size": 50,
        "mutation_rate": 0.05,
    }
    assert combinations[19] == {
        "component": "evolution",
        "population_size": 1000,
        "mutation_rate": 0.3,
    }
    assert combinations[20] == {"component": "kraken", "reservoir_size": 50, "connectivity": 0.1}
    assert combinations[-1] == {"component": "agent", "temperature": 1.0, "provider": "synthetic"}


def test_matrix_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLELE_BENCHMARK_EVOLUTION_MATRIX", '{"population_size": [10, 20]}')
    combinations = get_matrix_benchmark_settings().create_matrix_combinations("evolution")
    assert combinations == [
        {"component": "evolution", "population_size": 10},
        {"component": "evolution", "population_size": 20},
    ]
    with pytest.raises(ConfigurationError, match="no default matrix for component 'x'"):
        get_matrix_benchmark_settings().create_matrix_combinations("x")


def test_suite_values_win_over_environment_and_flags_win_over_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLELE_BENCHMARK_RUNS", "5")
    monkeypatch.setenv("ALLELE_BENCHMARK_WORKERS", "2")
    suite = Suite(name="p", component="python", matrix={"size": [1]}, workers=1)
    resolved = suite.resolved()
    assert (resolved.runs, resolved.workers, resolved.timeout) == (5, 1, 300.0)
    assert suite.resolved(runs=9).runs == 9
