"""``allele bench compare | check | report | calibrate`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.benchmarking.pytest_benchmark_format import (
    export_pytest_benchmark_json,
)

SLOW = "population=200"


def _run(factor: float, seed: int, suite_id: str) -> SuiteRun:
    rng = np.random.default_rng(seed)
    cells = [
        CellResult(
            params={"population": p},
            samples={
                "time_s": (
                    1e-3
                    * p
                    / 50
                    * (factor if p == 200 else 1.0)
                    * (1 + 0.02 * rng.standard_normal(20))
                ).tolist()
            },
        )
        for p in (50, 100, 200)
    ]
    return SuiteRun(name="evo", component="evolution", suite_id=suite_id, cells=cells)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, factor, seed in (("base", 1.0, 0), ("same", 1.0, 1), ("slow", 1.3, 2)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(_run(factor, seed, name).to_dict()))
        paths[name] = path
    return paths


runner = CliRunner()


def test_compare_json_files(files: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["bench", "compare", str(files["base"]), str(files["slow"]), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    verdicts = {c["key"]: c["verdict"] for c in data["cells"]}
    assert verdicts == {
        "population=50": "unchanged",
        "population=100": "unchanged",
        SLOW: "regression",
    }
    slow = next(c for c in data["cells"] if c["key"] == SLOW)
    assert slow["shift"] == pytest.approx(0.3, abs=0.03)


def test_compare_markdown_to_a_file(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp.md"
    result = runner.invoke(
        app,
        [
            "bench",
            "compare",
            str(files["base"]),
            str(files["slow"]),
            "--format",
            "md",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| `population=200` |" in out.read_text()


def test_compare_reads_pytest_benchmark_files(files: dict[str, Path], tmp_path: Path) -> None:
    theirs = []
    for name in ("base", "slow"):
        run = SuiteRun.from_dict(json.loads(files[name].read_text()))
        path = tmp_path / f"pb_{name}.json"
        path.write_text(json.dumps(export_pytest_benchmark_json(run)))
        theirs.append(str(path))
    result = runner.invoke(app, ["bench", "check", "--baseline", theirs[0], theirs[1]])
    assert result.exit_code == 1, result.output
    assert "REGRESSION benchmark='evo',population=200" in result.output


def test_check_exit_codes(files: dict[str, Path], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    regressed = runner.invoke(
        app,
        ["bench", "check", "--baseline", str(files["base"]), str(files["slow"]),
         "--markdown", str(summary)],
    )  # fmt: skip
    assert regressed.exit_code == 1
    assert f"REGRESSION {SLOW}" in regressed.output
    assert "1 regression" in regressed.output
    assert "regression" in summary.read_text()
    clean = runner.invoke(
        app, ["bench", "check", "--baseline", str(files["base"]), str(files["same"])]
    )
    assert clean.exit_code == 0, clean.output
    assert "REGRESSION" not in clean.output
    # A 40% threshold lets the +30% pass.
    lenient = runner.invoke(
        app,
        [
            "bench",
            "check",
            "--baseline",
            str(files["base"]),
            str(files["slow"]),
            "--threshold",
            "0.4",
        ],
    )
    assert lenient.exit_code == 0


def test_bad_input_exits_2_with_a_message(files: dict[str, Path], tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["bench", "compare", str(files["base"]), str(tmp_path / "no.json")]
    )
    assert missing.exit_code == 2
    assert "cannot read run file" in missing.output
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    wrong = runner.invoke(app, ["bench", "compare", str(files["base"]), str(tmp_path / "bad.json")])
    assert wrong.exit_code == 2 and "neither a suite run" in wrong.output
    fmt = runner.invoke(app, ["bench", "report", str(files["base"]), "--format", "pdf"])
    assert fmt.exit_code == 2 and "--format must be one of" in fmt.output


def test_report_formats(files: dict[str, Path], tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    result = runner.invoke(
        app,
        ["bench", "report", str(files["slow"]), "--format", "html", "-o", str(html),
         "--baseline", str(files["base"])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '<tr class="regression">' in html.read_text()
    result = runner.invoke(app, ["bench", "report", str(files["slow"]), "--format", "json"])
    assert json.loads(result.output)["suite"]["suite_id"] == "slow"
    result = runner.invoke(app, ["bench", "report", str(files["slow"]), "--format", "md"])
    assert "## Benchmark `evo`" in result.output
    result = runner.invoke(app, ["bench", "report", str(files["slow"])])
    assert result.exit_code == 0
    assert ["200", "20", "5.22", "ms"] in [line.split()[:4] for line in result.output.splitlines()]


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    pytest.importorskip("allele.observability.benchmarking.storage")
    return f"sqlite:///{tmp_path / 'bench.db'}"


def test_check_against_a_stored_baseline(store_uri: str) -> None:
    from allele.observability.benchmarking.storage import save_run, set_baseline

    base = _run(1.0, 0, "")
    base.suite_id = ""
    base_id = save_run(store_uri, base)
    set_baseline(store_uri, "main", base_id)
    # The latest run is the baseline itself: refused, not silently "no regression".
    same = runner.invoke(app, ["bench", "check", "--baseline", "main", "--store", store_uri])
    assert same.exit_code == 2 and "is the baseline" in same.output
    slow = _run(1.3, 2, "")
    slow.suite_id = ""
    slow.created_at = base.created_at.replace(year=base.created_at.year + 1)
    save_run(store_uri, slow)
    result = runner.invoke(app, ["bench", "check", "--baseline", "main", "--store", store_uri])
    assert result.exit_code == 1, result.output
    assert f"REGRESSION {SLOW}" in result.output
    # Compare by suite name (latest run) and id.
    result = runner.invoke(
        app, ["bench", "compare", base_id, "evo", "--store", store_uri, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["regression"] == 1
    unknown = runner.invoke(app, ["bench", "check", "--baseline", "nope", "--store", store_uri])
    assert unknown.exit_code == 2 and "no baseline named 'nope'" in unknown.output


def test_stored_calibration_raises_the_floor(store_uri: str) -> None:
    from allele.observability.benchmarking.storage import save_calibration, save_run, set_baseline

    base = _run(1.0, 0, "")
    set_baseline(store_uri, "main", save_run(store_uri, base))
    slow = _run(1.3, 2, "")
    slow.created_at = base.created_at.replace(year=base.created_at.year + 1)
    save_run(store_uri, slow)
    save_calibration(store_uri, "evo", {SLOW: 0.5})
    result = runner.invoke(app, ["bench", "check", "--baseline", "main", "--store", store_uri])
    assert result.exit_code == 0, result.output


def test_calibrate_runs_the_suite_twice_and_stores_noise(store_uri: str, tmp_path: Path) -> None:
    from allele.observability.benchmarking.storage import list_runs, load_calibration

    suite = tmp_path / "tiny.toml"
    suite.write_text(
        'name = "tiny"\ncomponent = "python"\nruns = 1\nsamples = 6\nwarmup = 0\n'
        'min_time = 0.001\n\n[matrix]\nkernel = ["sum"]\nsize = [100, 1000]\n'
    )
    result = runner.invoke(app, ["bench", "calibrate", str(suite), "--store", store_uri])
    assert result.exit_code == 0, result.output
    assert "stored the noise of 2 cells of tiny" in result.output
    noise = load_calibration(store_uri, "tiny")
    assert set(noise) == {"kernel='sum',size=100", "kernel='sum',size=1000"}
    assert all(v >= 0 for v in noise.values())
    assert len(list_runs(store_uri, "tiny")) == 2


def test_changes_finds_the_run_where_a_cell_stepped(store_uri: str) -> None:
    from datetime import timedelta

    from allele.observability.benchmarking.storage import save_run

    first = None
    ids = []
    for i in range(12):
        run = _run(1.3 if i >= 7 else 1.0, 100 + i, "")
        first = first or run.created_at
        run.created_at = first + timedelta(minutes=i)
        ids.append(save_run(store_uri, run))
    result = runner.invoke(
        app, ["bench", "changes", "evo", "--store", store_uri, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"] == ids
    assert list(data["change_points"]) == [SLOW]
    (point,) = data["change_points"][SLOW]
    assert point["index"] == 7 and point["suite_id"] == ids[7]
    assert point["relative_change"] == pytest.approx(0.3, abs=0.03)
    text = runner.invoke(app, ["bench", "changes", "evo", "--store", store_uri])
    assert f"{SLOW}: step at run #7" in text.output


def _stored_history(store_uri: str, count: int = 12, step_at: int = 7) -> list[str]:
    from datetime import timedelta

    from allele.observability.benchmarking.storage import save_run

    first = None
    ids = []
    for i in range(count):
        run = _run(1.3 if i >= step_at else 1.0, 100 + i, "")
        run.commit = {"id": f"{i:02d}" + "ab" * 19, "dirty": False}
        first = first or run.created_at
        run.created_at = first + timedelta(minutes=i)
        ids.append(save_run(store_uri, run))
    return ids


def test_history_shows_each_cells_median_across_runs_with_change_points(store_uri: str) -> None:
    ids = _stored_history(store_uri)
    result = runner.invoke(app, ["bench", "history", "evo", "--store", store_uri])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line[:1] == " "}
    assert "#7: +" in rows["200"] and rows["50"].split()[-1] == "-"  # the step, and none
    assert rows["200"].split()[1] == "12"  # 12 runs measured
    one = runner.invoke(
        app, ["bench", "history", "evo", "--cell", SLOW, "--store", store_uri, "--format", "json"]
    )
    assert one.exit_code == 0, one.output
    (cell,) = json.loads(one.output)["cells"]
    assert [p["suite_id"] for p in cell["points"]] == ids
    steps = [i for i, p in enumerate(cell["points"]) if p["change_point"]]
    assert steps == [7] and cell["points"][7]["commit"] == "07" + "ab" * 4
    assert cell["points"][8]["median"] == pytest.approx(1.3 * cell["points"][0]["median"], rel=0.05)
    text = runner.invoke(app, ["bench", "history", "evo", "--cell", SLOW, "--store", store_uri])
    assert "new level +" in text.output and "07abababab" in text.output
    missing = runner.invoke(app, ["bench", "history", "evo", "--cell", "x=1", "--store", store_uri])
    assert missing.exit_code == 2 and "no cell 'x=1'" in missing.output


def test_html_report_has_a_history_section(store_uri: str, tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    _stored_history(store_uri)
    out = tmp_path / "r.html"
    result = runner.invoke(
        app, ["bench", "report", "evo", "--format", "html", "-o", str(out), "--store", store_uri]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "History: median time_s of each cell across 12 stored runs" in text
    assert "change point" in text


def test_report_of_a_suite_run_only_quick_finds_the_quick_variant(store_uri: str) -> None:
    from allele.observability.benchmarking.storage import save_run

    quick = _run(1.0, 0, "")
    quick.name = "evo-quick"
    save_run(store_uri, quick)
    result = runner.invoke(app, ["bench", "report", "evo", "--store", store_uri])
    assert result.exit_code == 0, result.output
    assert "evo-quick" in result.output and "its --quick variant" in result.output
    typo = runner.invoke(app, ["bench", "report", "evo-quik", "--store", store_uri])
    assert typo.exit_code == 2 and "did you mean 'evo-quick'?" in typo.output.replace("\n", "")


def test_baseline_list_and_how_to_set_a_missing_one(store_uri: str) -> None:
    from allele.observability.benchmarking.storage import save_run

    empty = runner.invoke(app, ["bench", "baseline", "list", "--store", store_uri])
    assert empty.exit_code == 0 and "allele bench baseline set NAME SUITE_ID" in empty.output
    suite_id = save_run(store_uri, _run(1.0, 0, ""))
    # A short id, as `bench list` shows them, names the run.
    done = runner.invoke(
        app, ["bench", "baseline", "set", "main", suite_id[:12], "--store", store_uri]
    )
    assert done.exit_code == 0, done.output
    listed = runner.invoke(app, ["bench", "baseline", "list", "--store", store_uri])
    assert listed.exit_code == 0
    assert ["main", suite_id[:12], "evo"] == listed.output.splitlines()[-1].split()[:3]
    missing = runner.invoke(app, ["bench", "check", "--baseline", "v2", "--store", store_uri])
    assert missing.exit_code == 2
    assert "allele bench baseline set v2 SUITE_ID" in missing.output.replace("\n", "")


def test_bench_list_reads_at_80_columns(store_uri: str) -> None:
    from allele.observability.benchmarking.storage import save_run

    ids = _stored_history(store_uri, count=3)
    result = runner.invoke(app, ["bench", "list", "--store", store_uri], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.output
    assert [ids[-1][:12], "evo"] == next(line.split()[:2] for line in lines if ids[-1][:12] in line)
    save_run(store_uri, _run(1.0, 0, ""))


def test_check_says_when_commit_and_machine_are_unchanged(store_uri: str) -> None:
    from allele.observability.benchmarking.storage import save_run, set_baseline

    machine = {"node": "box", "cpu": {"count": 8}, "load_average": 0.1}
    commit = {"id": "c0ffee" * 6, "dirty": False}
    base = _run(1.0, 0, "")
    base.machine, base.commit = machine, commit
    set_baseline(store_uri, "main", save_run(store_uri, base))
    again = _run(1.0, 1, "")
    again.machine, again.commit = machine, commit
    again.created_at = base.created_at.replace(year=base.created_at.year + 1)
    save_run(store_uri, again)
    result = runner.invoke(
        app, ["bench", "check", "--baseline", "main", "--store", store_uri], env={"COLUMNS": "200"}
    )
    assert "warning: unchanged: the baseline and this run measured the same commit" in result.output
