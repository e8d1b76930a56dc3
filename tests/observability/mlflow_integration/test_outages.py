"""Nothing is lost or duplicated when the tracking server is down or restarts mid-suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.observability.benchmarking.experiment_logger import ExperimentLogger
from allele.observability.benchmarking.experiment_tracking import SuiteTracker, log_suite_run
from allele.observability.mlflow_integration.client import open_client
from allele.observability.mlflow_integration.config import mlflow_config
from allele.observability.mlflow_integration.spool import Spool


def _runs_of(client: Any, config: Any, suite_name: str) -> list[Any]:
    experiment = client.get_experiment_by_name(config.experiment_prefix + suite_name)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], max_results=1000))


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps lines at the terminal's width


def _dead_uri() -> str:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_restarting_the_server_mid_suite_loses_and_duplicates_nothing(
    mlflow_server: Any, config: Any, suite_run: Any
) -> None:
    run = suite_run(name="restarted", cells=9)
    tracker = SuiteTracker(config=config)
    tracker.suite_started(run)
    for cell in run.cells[:3]:
        tracker.cell_finished(run, cell)
    assert tracker.logger.flush(60)
    mlflow_server.stop()
    for cell in run.cells[3:6]:
        tracker.cell_finished(run, cell)  # never raises, whatever the server does
    assert tracker.logger.flush(120)
    assert Spool(config.spool_dir).pending() >= 3 * 3  # 3 cells x (run, log, end)
    mlflow_server.start()
    for cell in run.cells[6:]:
        tracker.cell_finished(run, cell)
    tracker.suite_finished(run)
    tracker.close()

    assert Spool(config.spool_dir).pending() == 0
    client = open_client(config)
    runs = _runs_of(client, config, "restarted")
    parents = [r for r in runs if r.data.tags.get("allele.kind") == "suite"]
    children = [r for r in runs if r.data.tags.get("allele.kind") == "cell"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    keys = [c.data.tags["allele.cell_key"] for c in children]
    assert sorted(keys) == sorted(c.key for c in run.cells)  # each cell exactly once
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        history = client.get_metric_history(child.info.run_id, "time_s_median")
        assert len(history) == 1  # sent once, even when replayed
    assert parents[0].data.metrics["cells_ok"] == 9


def test_what_could_not_be_sent_goes_out_once_with_the_next_run(
    config: Any, suite_run: Any
) -> None:
    down = mlflow_config(
        tracking_uri=_dead_uri(),
        spool_dir=config.spool_dir,
        experiment_prefix=config.experiment_prefix,
    )
    first = suite_run(name="offline", cells=4)
    result = log_suite_run(first, experiment_logger=ExperimentLogger(down))
    assert result.sent == 0 and result.spooled == len(first.cells) * 3 + 3 + 6
    assert Spool(config.spool_dir).pending() == result.spooled
    # The artifacts were copied into the spool: their temporary originals are gone.
    assert any((Path(config.spool_dir) / "files").rglob("report.html"))

    second = suite_run(name="offline", cells=2)
    log_suite_run(second, experiment_logger=ExperimentLogger(config))
    assert Spool(config.spool_dir).pending() == 0
    client = open_client(config)
    runs = _runs_of(client, config, "offline")
    suites = sorted(
        r.data.tags["allele.suite_id"] for r in runs if r.data.tags["allele.kind"] == "suite"
    )
    assert suites == sorted([first.suite_id, second.suite_id])
    assert sum(r.data.tags["allele.kind"] == "cell" for r in runs) == 6
    first_parent = next(
        r
        for r in runs
        if r.data.tags["allele.suite_id"] == first.suite_id
        and r.data.tags["allele.kind"] == "suite"
    )
    files = {a.path for a in client.list_artifacts(first_parent.info.run_id, "reports")}
    assert files == {"reports/report.html", "reports/report.md", "reports/report.json"}


def test_allele_mlflow_sync_sends_the_spool(
    config: Any, suite_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from allele.observability import config as settings

    down = mlflow_config(
        tracking_uri=_dead_uri(),
        spool_dir=config.spool_dir,
        experiment_prefix=config.experiment_prefix,
    )
    run = suite_run(name="synced", cells=3)
    log_suite_run(run, experiment_logger=ExperimentLogger(down))
    waiting = Spool(config.spool_dir).pending()
    monkeypatch.setenv("ALLELE_MLFLOW_SPOOL_DIR", str(config.spool_dir))
    monkeypatch.setenv("ALLELE_MLFLOW_EXPERIMENT_PREFIX", config.experiment_prefix)
    settings.reset_settings()  # the CLI reads the settings from this environment
    env: dict[str, str] = {}
    runner = CliRunner()
    status = runner.invoke(
        app, ["mlflow", "status", "--tracking-uri", config.tracking_uri], env=env
    )
    assert status.exit_code == 0 and f"{waiting} operations waiting" in _flat(status.output)
    result = runner.invoke(app, ["mlflow", "sync", "--tracking-uri", config.tracking_uri], env=env)
    assert result.exit_code == 0, result.output
    assert f"sent {waiting} operations" in _flat(result.output)
    assert Spool(config.spool_dir).pending() == 0
    runs = _runs_of(open_client(config), config, "synced")
    assert len(runs) == 4
    # Nothing left: a second sync sends nothing and says so.
    again = runner.invoke(app, ["mlflow", "sync", "--tracking-uri", config.tracking_uri], env=env)
    assert again.exit_code == 0 and "sent 0 operations" in _flat(again.output)
