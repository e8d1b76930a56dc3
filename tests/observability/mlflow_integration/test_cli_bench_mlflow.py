"""``allele bench run SUITE --mlflow`` and ``allele mlflow log SUITE_ID`` through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.observability.benchmarking import storage
from allele.observability.mlflow_integration.client import open_client
from allele.observability.mlflow_integration.config import mlflow_config

SUITE = """
name = "cli-tiny"
component = "python"
runs = 1
samples = 3
warmup = 0
min_time = 0.001

[matrix]
size = [10, 100]
"""


def test_bench_run_with_mlflow_tracks_the_run_and_its_suite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from allele.observability import config as settings

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("ALLELE_MLFLOW_TRACKING_URI", tracking)
    monkeypatch.setenv("ALLELE_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    monkeypatch.setenv("ALLELE_MLFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    settings.reset_settings()
    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(SUITE)
    store = f"sqlite:///{tmp_path / 'allele.db'}"
    runner = CliRunner()
    args = ["bench", "run", str(suite_file), "--store", store, "--no-progress", "--mlflow"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"trackedinMLflowat{tracking}" in "".join(result.output.split())  # rich wraps
    suite_id = storage.list_runs(store, name="cli-tiny")[0].suite_id

    client = open_client(mlflow_config())
    experiment = client.get_experiment_by_name("allele_benchmark_cli-tiny")
    runs = client.search_runs([experiment.experiment_id])
    kinds = sorted(r.data.tags["allele.kind"] for r in runs)
    assert kinds == ["cell", "cell", "suite"]
    parent = next(r for r in runs if r.data.tags["allele.kind"] == "suite")
    assert parent.data.tags["allele.suite_id"] == suite_id
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "tiny.toml",
        "suite.json",
    }
    # The engine sampled the machine during the run: its series are on the suite's run.
    assert "allele_process_rss_bytes" in parent.data.metrics

    # Logging the stored run again afterwards finds the same MLflow runs: nothing duplicated.
    logged = runner.invoke(app, ["mlflow", "log", suite_id, "--store", store])
    assert logged.exit_code == 0, logged.output
    assert parent.info.run_id in "".join(logged.output.split())
    assert len(client.search_runs([experiment.experiment_id])) == 3
    missing = runner.invoke(app, ["mlflow", "log", "no-such-run", "--store", store])
    assert missing.exit_code == 2 and "no-such-run" in "".join(missing.output.split())
