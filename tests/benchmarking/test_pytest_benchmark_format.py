"""pytest-benchmark JSON: import a file pytest-benchmark wrote; export one its tools can read."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.benchmarking.compare import compare_runs
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.benchmarking.pytest_benchmark_format import (
    export_pytest_benchmark_json,
    import_pytest_benchmark_json,
    pytest_benchmark_stats,
)

pytest.importorskip("pytest_benchmark")

BENCH_FILE = """
import pytest

@pytest.mark.parametrize("n", [10, 1000])
def test_sum(benchmark, n):
    benchmark(sum, range(n))

def test_sorted(benchmark):
    benchmark.pedantic(sorted, args=([3, 1, 2],), rounds=7, iterations=3)
"""


@pytest.fixture(scope="module")
def real_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A JSON file written by pytest-benchmark itself, in a subprocess."""
    folder = tmp_path_factory.mktemp("pb")
    (folder / "test_tiny.py").write_text(BENCH_FILE)
    out = folder / "out.json"
    subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tiny.py",
            f"--benchmark-json={out}", "--benchmark-min-rounds=5", "--benchmark-max-time=0.02",
        ],
        cwd=folder, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return json.loads(out.read_text())


def test_import_maps_benchmarks_to_cells(real_json: dict[str, Any]) -> None:
    run = import_pytest_benchmark_json(real_json)
    keys = [c.key for c in run.cells]
    assert keys == [
        "benchmark='test_tiny.py::test_sum',n=10",
        "benchmark='test_tiny.py::test_sum',n=1000",
        "benchmark='test_tiny.py::test_sorted'",
    ]
    for cell, bench in zip(run.cells, real_json["benchmarks"], strict=True):
        assert cell.samples["time_s"] == bench["stats"]["data"]
        assert cell.inner_loops == bench["stats"]["iterations"]
        assert cell.metrics["median_s"] == bench["stats"]["median"]
    assert run.cells[2].inner_loops == 3 and len(run.cells[2].samples["time_s"]) == 7
    assert run.machine == real_json["machine_info"]
    assert run.created_at.tzinfo is not None
    # Sum over 1000 numbers is slower than over 10: the comparison machinery sees it.
    fast, slow = (np.median(c.samples["time_s"]) for c in run.cells[:2])
    assert slow > fast


def test_round_trip_gives_back_the_same_document(real_json: dict[str, Any]) -> None:
    exported = export_pytest_benchmark_json(import_pytest_benchmark_json(real_json))
    assert exported["benchmarks"] == real_json["benchmarks"]
    assert exported["machine_info"] == real_json["machine_info"]
    assert exported["commit_info"] == real_json["commit_info"]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 10, 13, 20])
def test_exported_stats_equal_pytest_benchmarks_own(n: int) -> None:
    from pytest_benchmark.stats import Stats

    rng = np.random.default_rng(n)
    data = rng.lognormal(-10, 0.5, n).tolist()
    theirs = Stats()
    for value in data:
        theirs.update(value)
    ours = pytest_benchmark_stats(data)
    for name, value in theirs.as_dict().items():
        expected = value if isinstance(value, str) else pytest.approx(value, rel=1e-12)
        assert ours[name] == expected, name


def _our_run(factor: float) -> SuiteRun:
    rng = np.random.default_rng(int(factor * 100))
    cells = [
        CellResult(
            params={"population": p},
            samples={"time_s": (1e-3 * p * factor * (1 + 0.01 * rng.standard_normal(15))).tolist()},
            inner_loops=4,
            metrics={"best_fitness": 0.9},
        )
        for p in (1, 2)
    ]
    cells.append(CellResult(params={"population": 3}, status="error", error="boom"))
    return SuiteRun(name="evolution", component="evolution", suite_id="s1", cells=cells)


def test_export_is_read_by_pytest_benchmark_compare(tmp_path: Path) -> None:
    first, second = tmp_path / "0001_a.json", tmp_path / "0002_b.json"
    first.write_text(json.dumps(export_pytest_benchmark_json(_our_run(1.0))))
    second.write_text(json.dumps(export_pytest_benchmark_json(_our_run(1.3))))
    from pytest_benchmark.storage.file import FileStorage

    class _Logger:
        def warning(self, text: str, **kwargs: Any) -> None:
            raise AssertionError(text)

        def info(self, text: str, **kwargs: Any) -> None:
            pass

    storage = FileStorage(str(tmp_path), default_machine_id=None, logger=_Logger())
    loaded = list(storage.load_benchmarks(str(first), str(second)))
    assert [b["name"] for b in loaded] == ["evolution[1]", "evolution[2]"] * 2
    assert loaded[0]["median"] == pytest.approx(np.median(_our_run(1.0).cells[0].samples["time_s"]))
    assert loaded[0]["iterations"] == 4 and loaded[0]["rounds"] == 15
    # The pytest-benchmark command line renders its comparison table from our files.
    result = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(first), str(second)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert re.search(r"evolution\[1\] \(\S*0001_a\)", result.stdout)
    assert re.search(r"evolution\[2\] \(\S*0002_b\)", result.stdout)
    # Its table shows our median (in microseconds, its unit for this range).
    median = np.median(_our_run(1.0).cells[0].samples["time_s"])
    assert f"{median * 1e6:,.4f}" in result.stdout


def test_export_leaves_out_failed_cells_and_keeps_metrics_as_extra_info() -> None:
    data = export_pytest_benchmark_json(_our_run(1.0))
    assert len(data["benchmarks"]) == 2
    bench = data["benchmarks"][0]
    assert bench["params"] == {"population": 1} and bench["param"] == "1"
    assert bench["extra_info"] == {"best_fitness": 0.9}
    assert bench["stats"]["iterations"] == 4


def test_import_without_raw_data_is_insufficient_for_comparison(
    real_json: dict[str, Any],
) -> None:
    stripped = json.loads(json.dumps(real_json))
    for bench in stripped["benchmarks"]:
        del bench["stats"]["data"]
    run = import_pytest_benchmark_json(stripped)
    assert run.cells[0].samples == {}
    assert run.cells[0].metrics["median_s"] == real_json["benchmarks"][0]["stats"]["median"]
    comparison = compare_runs(run, run)
    assert {c.verdict for c in comparison.cells} == {"insufficient"}


def test_import_rejects_other_documents() -> None:
    with pytest.raises(ValidationError, match="not a pytest-benchmark"):
        import_pytest_benchmark_json({"cells": []})
    with pytest.raises(ValidationError, match="fullname"):
        import_pytest_benchmark_json({"machine_info": {}, "benchmarks": [{"name": "x"}]})
