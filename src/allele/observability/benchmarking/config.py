"""Matrix benchmarking settings: run defaults and the default matrices, from ``ALLELE_BENCHMARK_*``.

>>> from allele.observability.benchmarking.config import get_matrix_benchmark_settings
>>> settings = get_matrix_benchmark_settings()
>>> combinations = settings.create_matrix_combinations()
>>> combinations[0]
{'component': 'evolution', 'population_size': 50, 'mutation_rate': 0.05}

Variables: ``ALLELE_BENCHMARK_RUNS`` (worker processes per cell, default 3),
``ALLELE_BENCHMARK_TIMEOUT`` (seconds per process run, 300), ``ALLELE_BENCHMARK_WORKERS``
(processes at once, 1), ``ALLELE_BENCHMARK_MEASURE_MEMORY`` (tracemalloc peak, true), and the
matrices as JSON (``ALLELE_BENCHMARK_EVOLUTION_MATRIX='{"population_size": [50, 100]}'``). The
default matrices are those of the built-in suites, so one file states each of them.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from allele.errors import ConfigurationError
from allele.observability.benchmarking.matrix import expand
from allele.observability.benchmarking.model import ParameterSet

Matrix = dict[str, list[bool | int | float | str]]


def _builtin_matrix(name: str) -> Matrix:
    from allele.observability.benchmarking.suites import builtin_suite

    return dict(builtin_suite(name).matrix)


class MatrixBenchmarkSettings(BaseSettings):
    """Run defaults for every suite and the default parameter matrix of each component."""

    model_config = SettingsConfigDict(env_prefix="ALLELE_BENCHMARK_", extra="ignore")

    runs: int = Field(default=3, ge=1, description="worker processes per cell")
    timeout: float = Field(default=300.0, gt=0, description="seconds one process run may take")
    workers: int = Field(default=1, ge=1, description="worker processes running at once")
    measure_memory: bool = Field(
        default=True, description="record the tracemalloc peak of one call"
    )
    evolution_matrix: Matrix = Field(default_factory=lambda: _builtin_matrix("evolution"))
    kraken_matrix: Matrix = Field(default_factory=lambda: _builtin_matrix("kraken"))
    agent_matrix: Matrix = Field(default_factory=lambda: _builtin_matrix("agent"))

    def matrices(self) -> dict[str, Matrix]:
        """The default matrix of each component."""
        return {
            "evolution": self.evolution_matrix,
            "kraken": self.kraken_matrix,
            "agent": self.agent_matrix,
        }

    def create_matrix_combinations(self, component: str | None = None) -> list[ParameterSet]:
        """Every parameter combination of the default matrices, each tagged with its component
        (a ``ParameterSet``, which ``runner.run_benchmark`` measures).

        ``component`` ("evolution", "kraken" or "agent") keeps that component's only.
        """
        matrices = self.matrices()
        if component is not None and component not in matrices:
            raise ConfigurationError(
                f"no default matrix for component {component!r}; known: {', '.join(matrices)}"
            )
        combinations: list[ParameterSet] = []
        for name, matrix in matrices.items():
            if component is None or name == component:
                combinations.extend(ParameterSet(component=name, **cell) for cell in expand(matrix))
        return combinations


def get_matrix_benchmark_settings() -> MatrixBenchmarkSettings:
    """The settings read now from the environment (ConfigurationError naming a bad variable)."""
    try:
        return MatrixBenchmarkSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ALLELE_BENCHMARK_{'_'.join(str(p) for p in e['loc'][:1]).upper()}: {e['msg']} "
            f"(got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid benchmark settings: {problems}") from exc
