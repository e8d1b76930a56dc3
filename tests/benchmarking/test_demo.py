"""``allele demo`` and ``allele bench run | list | baseline set`` through the real CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.cli.demo import code_change, comparison_story
from allele.observability.benchmarking import storage
from allele.observability.benchmarking.compare import compare_runs
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.config import reset_settings

runner = CliRunner()


def test_demo_stores_compares_with_the_previous_run_and_writes_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With mlflow installed the demo also logs to MLflow: keep that store in tmp_path.
    monkeypatch.chdir(tmp_path)
    reset_settings()
    uri = f"sqlite:///{tmp_path / 'demo.db'}"
    out = tmp_path / "reports"
    args = ["demo", "--store", uri, "--output", str(out), "--suite", "python", "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "nothing to compare with yet" in first.output
    report = out / "python-quick.html"
    assert report.exists() and "<html" in report.read_text()[:2000].lower()
    assert str(report.resolve()) in first.output.replace("\n", "")

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    runs = storage.list_runs(uri, name="python-quick")
    assert len(runs) == 2 and all(r.status == "complete" and r.n_cells == 6 for r in runs)
    newest, oldest = runs
    text = " ".join(second.output.split())
    assert f"compared with the previous run {oldest.suite_id[:8]}" in text
    assert f"stored as run {newest.suite_id[:8]}" in text
    assert "vs last" in text and "items/s" in text
    # The run records the commit of the code under test even from outside a checkout.
    assert storage.load_run(uri, newest.suite_id).commit.get("id")
    if importlib.util.find_spec("mlflow") is not None:
        from allele.observability.mlflow_integration.client import open_client
        from allele.observability.mlflow_integration.config import mlflow_config

        tracked = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
        assert f"mlflow ui --backend-store-uri {tracked}" in text
        client = open_client(mlflow_config(tracking_uri=tracked))
        experiment = client.get_experiment_by_name("allele_benchmark_python-quick")
        suites = client.search_runs(
            [experiment.experiment_id], filter_string="tags.`allele.kind` = 'suite'"
        )
        assert {r.data.tags["allele.suite_id"] for r in suites} == {r.suite_id for r in runs}
    reset_settings()


def _cells(shift: float, moved: int, total: int = 8) -> tuple[SuiteRun, SuiteRun]:
    rng = np.random.default_rng(3)
    base, cur = [], []
    for i in range(total):
        x = 1e-3 * (1 + 0.01 * rng.standard_normal(15))
        y = 1e-3 * (1 + 0.01 * rng.standard_normal(15)) * (1 + shift if i < moved else 1.0)
        base.append(CellResult(params={"i": i}, samples={"time_s": x.tolist()}))
        cur.append(CellResult(params={"i": i}, samples={"time_s": y.tolist()}))
    clean = {"id": "a" * 40, "dirty": False}
    return (
        SuiteRun(
            name="evolution-quick",
            component="evolution",
            suite_id="b" * 32,
            cells=base,
            commit=clean,
        ),
        SuiteRun(
            name="evolution-quick",
            component="evolution",
            suite_id="c" * 32,
            cells=cur,
            commit=clean,
        ),
    )


def test_story_of_a_grid_that_moved_together_on_the_same_code() -> None:
    previous, run = _cells(shift=0.4, moved=8)
    comparison = compare_runs(previous, run)
    lines = comparison_story(previous, run, comparison, calibrated=False)
    assert "same code: commit aaaaaaaa" in lines[0]
    assert lines[1] == "8 cells slower, 0 faster, 0 unchanged"
    moved = next(line for line in lines if "moved together" in line)
    assert "100% of the cells the same way" in moved and "+40." in moved
    assert any("measure the machine's run-to-run noise" in line for line in lines)
    assert any("allele bench calibrate evolution --quick" in line for line in lines)
    # Calibrated noise already accounted for: no advice to calibrate.
    calibrated = comparison_story(previous, run, comparison, calibrated=True)
    assert not any("calibrate" in line for line in calibrated)


def test_story_of_one_slower_cell_after_a_code_change() -> None:
    previous, run = _cells(shift=0.4, moved=1)
    run.commit = {"id": "d" * 40, "dirty": False}
    comparison = compare_runs(previous, run)
    lines = comparison_story(previous, run, comparison, calibrated=False)
    assert "code changed: commit aaaaaaaa -> dddddddd" in lines[0]
    assert lines[1] == "1 cell slower, 0 faster, 7 unchanged"
    assert not any("moved together" in line or "run-to-run noise" in line for line in lines)


def test_code_change_wording() -> None:
    clean = {"id": "1" * 40, "dirty": False}
    assert code_change({}, clean) == "commit unknown"
    assert code_change({"error": "no git"}, clean) == "commit unknown"
    assert code_change(clean, {**clean, "dirty": True}).startswith("same commit 11111111, with")


def test_bench_run_list_and_baseline_set(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    suite = tmp_path / "s.toml"
    suite.write_text(
        'name = "cli"\ncomponent = "python"\nruns = 1\nsamples = 2\nwarmup = 0\n'
        "min_time = 0.001\n\n[matrix]\nsize = [10, 20]\n"
    )
    result = runner.invoke(app, ["bench", "run", str(suite), "--store", uri, "--no-progress"])
    assert result.exit_code == 0, result.output
    [summary] = storage.list_runs(uri)
    assert summary.name == "cli" and summary.n_cells == 2

    listed = runner.invoke(app, ["bench", "list", "--store", uri])
    assert listed.exit_code == 0 and summary.suite_id[:12] in listed.output  # short ids

    base = runner.invoke(
        app, ["bench", "baseline", "set", "main", summary.suite_id, "--store", uri]
    )
    assert base.exit_code == 0, base.output
    assert storage.get_baseline(uri, "main").suite_id == summary.suite_id


def test_bench_run_rejects_a_malformed_suite_with_its_line(tmp_path: Path) -> None:
    suite = tmp_path / "bad.toml"
    suite.write_text('name = "bad"\ncomponent = "python"\nruns = "many"\n')
    result = runner.invoke(
        app, ["bench", "run", str(suite), "--store", f"sqlite:///{tmp_path / 'x.db'}"]
    )
    assert result.exit_code == 2
    assert f"{suite}:3:" in result.output.replace("\n", "")


def test_bench_run_exits_1_when_a_cell_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A value the suite check cannot know is bad: the workload itself raises when it runs.
    (tmp_path / "failing_workload_fake.py").write_text(
        "def factory(fail=False):\n"
        "    def op():\n"
        "        if fail:\n"
        "            raise RuntimeError('fails on purpose')\n"
        "    return op\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "fails.toml"
    suite.write_text(
        'name = "fails"\ncomponent = "function"\ntarget = "failing_workload_fake:factory"\n'
        "runs = 1\nsamples = 1\n\n[matrix]\nfail = [false, true]\n"
    )
    result = runner.invoke(
        app,
        ["bench", "run", str(suite), "--store", f"sqlite:///{tmp_path / 'f.db'}", "--no-progress"],
    )
    assert result.exit_code == 1
    assert "1 of 2 cells did not finish" in result.output.replace("\n", " ")
