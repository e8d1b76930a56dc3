"""``allele bench optimize`` end to end: real worker processes, every cell stored, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.observability.benchmarking.storage import list_runs, runs_history

runner = CliRunner()

SUITE = (
    'name = "tiny"\ncomponent = "python"\nruns = 2\nsamples = 5\nwarmup = 0\n'
    'min_time = 0.001\n\n[matrix]\nkernel = ["sum", "sort"]\nsize = [100, 1000, 10000]\n'
)


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    return path


def test_optimize_measures_the_budget_stores_it_and_confirms_the_winner(
    suite: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'bench.db'}"
    args = ["bench", "optimize", str(suite), "--budget", "4", "--store", store]
    args += ["--current", "kernel='sum',size=10000"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    evaluations = runs_history(store, "tiny-optimize")
    assert len(evaluations) == 4
    assert all(r.status == "complete" and len(r.cells) == 1 for r in evaluations)
    measured = [r.cells[0].params for r in evaluations]
    assert len({tuple(sorted(p.items())) for p in measured}) == 4
    # Every size-100 cell is about 10x faster than any size-1000 one: the winner is one.
    best_line = next(line for line in result.output.splitlines() if line.startswith("best of"))
    assert "size=100," in best_line
    (confirm,) = list_runs(store, "tiny-confirm")
    assert confirm.n_cells == 2
    assert "the improvement held" in result.output

    # --resume replays the search from the store: nothing is measured again.
    again = runner.invoke(app, [*args, "--resume", "--no-confirm"])
    assert again.exit_code == 0, again.output
    assert again.output.count("(stored)") == 4
    assert len(runs_history(store, "tiny-optimize")) == 4
    assert "0 measured now" in again.output


def test_bad_input_exits_2_naming_the_problem(suite: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'bench.db'}"
    base = ["bench", "optimize", str(suite), "--budget", "2", "--store", store]
    bad = runner.invoke(app, [*base, "--current", "size=5"])
    assert bad.exit_code == 2
    assert "not a cell of the suite" in bad.output
    bad = runner.invoke(app, [*base, "--constraint", "items per second > 5"])
    assert bad.exit_code == 2
    assert "not of the form NAME<=NUMBER" in bad.output
    assert list_runs(store, "tiny-optimize") == []
