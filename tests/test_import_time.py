"""The import graph: ``import allele`` is fast and loads no heavy optional dependency.

Each check runs in a fresh interpreter, because this test process has long since imported
everything. The time limit (0.5 s, median of three runs) is the project's requirement, not a
micro-benchmark: a healthy import takes a few tens of milliseconds, so only an eager heavy
import (torch, mlflow, ray...) can break it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "mlflow",
    "ray",
    "plotly",
    "sklearn",
    "fastapi",
    "uvicorn",
    "pandas",
    "pyarrow",
    "statsmodels",
    "prometheus_client",
    "opentelemetry",
    "psycopg",
    "deap",
    "reservoirpy",
    "scipy.sparse.linalg",
    "scipy.linalg",
)

_PROBE = """
import json, sys, time
start = time.perf_counter()
{imports}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "modules": sorted(sys.modules)}}))
"""


def _probe(imports: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(imports=imports)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _heavy_loaded(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return sorted(m for m in HEAVY if m in modules)


def test_import_allele_is_under_half_a_second() -> None:
    times = [float(_probe("import allele")["seconds"]) for _ in range(3)]  # type: ignore[arg-type]
    assert statistics.median(times) < 0.5, f"import allele took {times} s"


def test_import_allele_loads_no_heavy_dependency() -> None:
    assert _heavy_loaded(_probe("import allele")["modules"]) == []


@pytest.mark.parametrize(
    "imports",
    [
        "import allele.genome, allele.fitness, allele.evolution",
        "import allele.kraken",
        "from allele import ConversationalGenome, EvolutionEngine, EvolutionConfig, KrakenLNN",
    ],
)
def test_workload_modules_load_no_heavy_dependency(imports: str) -> None:
    assert _heavy_loaded(_probe(imports)["modules"]) == []


def test_workload_attributes_resolve_lazily() -> None:
    probe = _probe("import allele")
    modules = probe["modules"]
    assert isinstance(modules, list)
    assert "allele.evolution" not in modules and "allele.kraken" not in modules
