"""``allele demo`` and ``allele bench run | list | baseline set`` through the real CLI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from allele.cli import app
from allele.observability.benchmarking import storage

runner = CliRunner()


def test_demo_stores_compares_with_the_previous_run_and_writes_reports(tmp_path: Path) -> None:
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
    assert "compared with the demo run of" in second.output
    runs = storage.list_runs(uri, name="python-quick")
    assert len(runs) == 2 and all(r.status == "complete" and r.n_cells == 6 for r in runs)


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
    assert listed.exit_code == 0 and summary.suite_id in listed.output

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


def test_bench_run_exits_1_when_a_cell_fails(tmp_path: Path) -> None:
    suite = tmp_path / "fails.toml"
    suite.write_text(
        'name = "fails"\ncomponent = "python"\nruns = 1\nsamples = 1\n\n'
        '[matrix]\nkernel = ["sum", "nope"]\n'
    )
    result = runner.invoke(
        app,
        ["bench", "run", str(suite), "--store", f"sqlite:///{tmp_path / 'f.db'}", "--no-progress"],
    )
    assert result.exit_code == 1
    assert "1 of 2 cells did not finish" in result.output.replace("\n", " ")
