"""Suite runs in a real MLflow server and a sqlite:/// store, read back with MLflow's client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from allele.observability.benchmarking import storage
from allele.observability.benchmarking.experiment_logger import ExperimentLogger
from allele.observability.benchmarking.experiment_tracking import (
    SuiteTracker,
    log_suite_run,
)
from allele.observability.benchmarking.runner import run_suite
from allele.observability.benchmarking.suites import Suite
from allele.observability.mlflow_integration.client import open_client
from allele.observability.mlflow_integration.config import mlflow_config
from allele.observability.store import open_store


def _children(client: Any, experiment_id: str, parent_id: str) -> list[Any]:
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        max_results=1000,
    )
    return list(runs)


def _parent(client: Any, config: Any, run: Any) -> tuple[str, Any]:
    experiment = client.get_experiment_by_name(config.experiment_prefix + run.name)
    assert experiment is not None, "the suite's experiment was not created"
    parents = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`allele.kind` = 'suite'"
    )
    assert len(parents) == 1
    return experiment.experiment_id, parents[0]


def _artifacts(client: Any, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for info in client.list_artifacts(run_id, path):
        out.extend(_artifacts(client, run_id, info.path) if info.is_dir else [info.path])
    return out


def test_a_suite_is_a_run_with_a_child_run_per_cell_and_its_artifacts(
    config: Any, suite_run: Any, tmp_path: Path
) -> None:
    run = suite_run(cells=8, samples=15)
    result = log_suite_run(run, experiment_logger=ExperimentLogger(config))
    assert result.spooled == 0 and result.rejected == 0 and not result.errors

    client = open_client(config)
    experiment_id, parent = _parent(client, config, run)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == f"{run.name}-{run.suite_id[:8]}"
    assert parent.data.params["runs"] == "2"
    assert json.loads(parent.data.params["matrix"]) == run.config["matrix"]
    assert parent.data.tags["allele.suite_id"] == run.suite_id
    assert parent.data.tags["mlflow.source.git.commit"] == "0123456789abcdef"
    assert parent.data.metrics["cells_ok"] == 8

    children = _children(client, experiment_id, parent.info.run_id)
    assert sorted(c.data.tags["allele.cell_key"] for c in children) == sorted(
        c.key for c in run.cells
    )
    for child in children:
        cell = run.cell(child.data.tags["allele.cell_key"])
        assert cell is not None
        times = np.asarray(cell.samples["time_s"])
        m = child.data.metrics
        assert m["time_s_median"] == pytest.approx(np.median(times), rel=1e-12)
        assert m["time_s_p95"] == pytest.approx(np.percentile(times, 95), rel=1e-12)
        assert m["time_s_p99"] == pytest.approx(np.percentile(times, 99), rel=1e-12)
        assert m["time_s_cv"] == pytest.approx(times.std(ddof=1) / times.mean(), rel=1e-9)
        assert m["time_s_ci_low"] <= m["time_s_median"] <= m["time_s_ci_high"]
        assert m["ops_per_s"] == pytest.approx(cell.metrics["ops_per_s"])
        assert m["peak_rss_bytes"] == cell.metrics["peak_rss_bytes"]
        assert m["best_fitness"] == cell.metrics["best_fitness"]
        assert child.data.params == {
            "size": str(cell.params["size"]),
            "kernel": "sort",
            "inner_loops": "4",
            "processes": "2",
        }
        tags = child.data.tags
        assert (tags["allele.machine"], tags["allele.suite_id"]) == ("test-machine", run.suite_id)
        assert tags["allele.commit"] == "0123456789abcdef"
        assert child.info.status == "FINISHED"
        assert child.info.start_time == int(cell.started_at.timestamp() * 1000)

    files = _artifacts(client, parent.info.run_id)
    assert set(files) >= {
        "suite.json",
        "reports/report.html",
        "reports/report.md",
        "reports/report.json",
        "samples/samples.parquet",
    }
    import pyarrow.parquet as pq

    local = client.download_artifacts(parent.info.run_id, "samples/samples.parquet", str(tmp_path))
    table = pq.read_table(local).to_pydict()
    assert len(table["value"]) == sum(len(v) for c in run.cells for v in c.samples.values())
    first = run.cells[0]
    got = [
        v
        for k, m, v in zip(table["cell_key"], table["metric"], table["value"], strict=True)
        if k == first.key and m == "time_s"
    ]
    assert got == first.samples["time_s"]
    suite_json = client.download_artifacts(parent.info.run_id, "suite.json", str(tmp_path))
    assert json.loads(Path(suite_json).read_text()) == run.config


def test_logging_the_same_run_again_duplicates_nothing(config: Any, suite_run: Any) -> None:
    run = suite_run(cells=3)
    log_suite_run(run, experiment_logger=ExperimentLogger(config))
    # A second process (a fresh logger) sends everything again, as a replay would.
    again = log_suite_run(run, experiment_logger=ExperimentLogger(config))
    assert again.spooled == 0 and again.rejected == 0
    client = open_client(config)
    experiment_id, parent = _parent(client, config, run)
    children = _children(client, experiment_id, parent.info.run_id)
    assert len(children) == 3
    history = client.get_metric_history(children[0].info.run_id, "time_s_median")
    assert len(history) == 1


def test_a_plain_sqlite_uri_is_a_tracking_store_too(tmp_path: Path, suite_run: Any) -> None:
    config = mlflow_config(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=str(tmp_path / "artifacts"),
        spool_dir=str(tmp_path / "spool"),
    )
    run = suite_run(cells=4)
    result = log_suite_run(run, experiment_logger=ExperimentLogger(config))
    assert result.spooled == 0 and result.rejected == 0
    client = open_client(config)
    experiment_id, parent = _parent(client, config, run)
    assert len(_children(client, experiment_id, parent.info.run_id)) == 4
    # ALLELE_MLFLOW_ARTIFACT_LOCATION is where a local store keeps the artifacts.
    assert client.get_experiment(experiment_id).artifact_location.startswith(
        (tmp_path / "artifacts").as_uri()
    )
    assert (tmp_path / "artifacts").is_dir() and any((tmp_path / "artifacts").rglob("report.md"))


def test_the_runner_tracks_a_real_suite_and_its_regressions_against_the_last_run(
    tmp_path: Path,
) -> None:
    config = mlflow_config(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=str(tmp_path / "artifacts"),
        spool_dir=str(tmp_path / "spool"),
    )
    store = open_store(f"sqlite:///{tmp_path / 'allele.db'}")
    suite = Suite(
        name="tiny",
        component="python",
        matrix={"size": [10, 100]},
        runs=1,
        samples=3,
        warmup=0,
        min_time=0.001,
        workers=1,
        timeout=120,
    )
    runs = []
    for _ in range(2):
        tracker = SuiteTracker(config=config, store=store)
        runs.append(run_suite(suite, store=store, observers=[tracker]))
        tracker.close()
    client = open_client(config)
    experiment = client.get_experiment_by_name(config.experiment_prefix + "tiny")
    parents = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`allele.kind` = 'suite'"
    )
    by_suite = {p.data.tags["allele.suite_id"]: p for p in parents}
    assert set(by_suite) == {r.suite_id for r in runs}
    second = by_suite[runs[1].suite_id]
    assert second.data.tags["allele.baseline"] == f"tiny:{runs[0].suite_id}"
    verdicts = sum(
        second.data.metrics[f"cells_{v}"] for v in ("regression", "improvement", "unchanged")
    )
    assert verdicts == 2
    assert second.data.metrics["regressions"] == second.data.metrics["cells_regression"]
    assert "comparison.json" in _artifacts(client, second.info.run_id)
    children = _children(client, experiment.experiment_id, second.info.run_id)
    stored = storage.load_run(store, runs[1].suite_id)
    for child in children:
        cell = stored.cell(child.data.tags["allele.cell_key"])
        assert cell is not None
        assert child.data.metrics["time_s_median"] == pytest.approx(
            np.median(cell.samples["time_s"]), rel=1e-12
        )


def test_prune_deletes_suite_runs_older_than_the_retention(tmp_path: Path, suite_run: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from allele.observability.benchmarking.experiment_tracking import prune_runs

    config = mlflow_config(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=str(tmp_path / "artifacts"),
        spool_dir=str(tmp_path / "spool"),
    )
    old, new = suite_run(name="kept", cells=2), suite_run(name="kept", cells=2)
    old.created_at = datetime.now(UTC) - timedelta(days=40)
    log = ExperimentLogger(config)
    for run in (old, new):
        log_suite_run(run, experiment_logger=log)
    assert prune_runs(config, 30) == 3  # the old suite run and its two cells
    client = open_client(config)
    experiment = client.get_experiment_by_name(config.experiment_prefix + "kept")
    left = client.search_runs([experiment.experiment_id])
    assert {r.data.tags["allele.suite_id"] for r in left} == {new.suite_id} and len(left) == 3
