"""The allele_bench pytest fixture, run in real pytest subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from allele.observability.benchmarking.measure import ROUND_TIME
from allele.observability.benchmarking.model import SuiteRun

BENCH_FILE = """
import time
import pytest

@pytest.mark.parametrize("size", [10, 2000])
def test_sort(allele_bench, size):
    data = list(range(size, 0, -1))
    result = allele_bench(sorted, data)
    assert result[0] == 1  # the fixture returns the function's value

def test_pedantic(allele_bench):
    calls = []
    def setup():
        calls.append(1)
        return (list(range(50, 0, -1)),), {}
    out = allele_bench.pedantic(sorted, setup=setup, rounds=6, warmup_rounds=2)
    assert out[0] == 1
    assert len(calls) == 8  # one setup per round, warm-up rounds included

def test_failing(allele_bench):
    def broken():
        raise RuntimeError("kaput")
    allele_bench(broken)

def test_twice(allele_bench):
    allele_bench(len, [1])
    allele_bench(len, [1])
"""


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, str]:
    folder = tmp_path_factory.mktemp("allele_bench")
    (folder / "test_bench.py").write_text(BENCH_FILE)
    out = folder / "results" / "run.json"
    result = _pytest(
        folder,
        "test_bench.py",
        f"--allele-bench-json={out}",
        "--allele-bench-samples=7",
        "--allele-bench-min-time=0.001",
        "--allele-bench-name=sorting",
    )
    assert result.returncode == 1, result.stdout + result.stderr  # test_failing, test_twice
    return SuiteRun.from_dict(json.loads(out.read_text())), result.stdout


def test_each_benchmark_is_a_cell_with_calibrated_samples(bench_run) -> None:
    run, _ = bench_run
    assert run.name == "sorting" and run.component == "pytest"
    small = run.cell("benchmark='test_bench.py::test_sort',size=10")
    large = run.cell("benchmark='test_bench.py::test_sort',size=2000")
    assert small is not None and large is not None
    for cell in (small, large):
        assert cell.status == "ok"
        assert len(cell.samples["time_s"]) == 7 and len(cell.samples["cpu_time_s"]) == 7
        # Calls per round were calibrated so that one timed round lasts about ROUND_TIME or
        # more (the worker's protocol: a sample is the median of such rounds).
        assert min(cell.samples["time_s"]) * cell.inner_loops >= 0.8 * ROUND_TIME
    assert small.inner_loops > large.inner_loops
    assert sorted(large.samples["time_s"])[3] > sorted(small.samples["time_s"])[3]
    assert "latency_p50_s" in small.metrics
    assert run.machine["python_version"] and run.config["samples"] == 7


def test_pedantic_takes_exactly_the_requested_rounds(bench_run) -> None:
    run, _ = bench_run
    cell = run.cell("benchmark='test_bench.py::test_pedantic'")
    assert cell is not None
    assert len(cell.samples["time_s"]) == 6 and cell.inner_loops == 1


def test_failures_are_recorded_and_the_fixture_is_single_use(bench_run) -> None:
    run, stdout = bench_run
    failing = run.cell("benchmark='test_bench.py::test_failing'")
    assert failing is not None and failing.status == "error"
    assert "RuntimeError: kaput" in (failing.error or "")
    assert "use it once per test" in stdout
    assert "allele_bench: 5 benchmarks" in stdout  # the terminal summary


def test_plugin_is_inert_without_the_fixture(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    result = _pytest(tmp_path, "test_plain.py", f"--allele-bench-json={tmp_path / 'x.json'}")
    assert result.returncode == 0
    assert "allele_bench" not in result.stdout
    assert not (tmp_path / "x.json").exists()


def test_results_can_go_to_a_store(tmp_path: Path) -> None:
    storage = pytest.importorskip("allele.observability.benchmarking.storage")
    (tmp_path / "test_b.py").write_text(
        "def test_len(allele_bench):\n    allele_bench(len, [1, 2])\n"
    )
    uri = f"sqlite:///{tmp_path / 'bench.db'}"
    result = _pytest(
        tmp_path,
        "test_b.py",
        f"--allele-bench-store={uri}",
        "--allele-bench-samples=3",
        "--allele-bench-min-time=0.0005",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = storage.load_run(uri, "pytest")
    assert [c.key for c in run.cells] == ["benchmark='test_b.py::test_len'"]
    assert len(run.cells[0].samples["time_s"]) == 3


def test_an_unusable_store_fails_the_session_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "test_b.py").write_text(
        "def test_len(allele_bench):\n    allele_bench(len, [1, 2])\n"
    )
    result = _pytest(
        tmp_path, "test_b.py", "--allele-bench-store=bogus://nowhere", "--allele-bench-samples=2"
    )
    assert result.returncode == 1
    assert "allele_bench: could not save the results" in result.stderr
    assert "bogus" in result.stderr
