"""Finished cells written into the tracking database in one transaction (``database.py``).

Each test reads back through MLflow's own client what the bulk path wrote, beside what the
request path writes for the same suite, so a row the bulk path gets wrong shows as a difference.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.experiment_logger import ExperimentLogger, database_uri
from allele.observability.benchmarking.experiment_tracking import (
    log_suite_run,
    suite_start_ops,
)
from allele.observability.mlflow_integration.client import open_client
from allele.observability.mlflow_integration.config import mlflow_config
from allele.observability.mlflow_integration.spool import Spool


@contextlib.contextmanager
def counted_requests() -> Iterator[list[str]]:
    """The REST endpoints called through MLflow's HTTP layer meanwhile."""
    from mlflow.utils import rest_utils

    seen: list[str] = []
    original = rest_utils.http_request

    def counting(host_creds: Any, endpoint: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(endpoint)
        return original(host_creds, endpoint, *args, **kwargs)

    rest_utils.http_request = counting  # type: ignore[assignment]
    try:
        yield seen
    finally:
        rest_utils.http_request = original  # type: ignore[assignment]


def _cells(client: Any, config: Any, run: Any) -> dict[str, Any]:
    experiment = client.get_experiment_by_name(config.experiment_prefix + run.name)
    found = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`allele.kind` = 'cell'", max_results=1000
    )
    out = {r.data.tags["allele.cell_key"]: r for r in found}
    assert len(out) == len(found), "a cell was logged twice"
    return out


def _sqlite_config(folder: Path) -> Any:
    """Settings for a plain ``sqlite:///`` tracking database in ``folder/runs.db``."""
    return mlflow_config(
        tracking_uri=f"sqlite:///{folder / 'runs.db'}",
        spool_dir=str(folder / "spool"),
        artifact_location=str(folder / "artifacts"),
    )


def _comparable(run: Any) -> tuple[Any, ...]:
    """What a logged cell says, without what differs by nature (ids, artifact paths)."""
    tags = {k: v for k, v in run.data.tags.items() if k not in ("mlflow.parentRunId",)}
    return (
        run.info.run_name,
        run.info.status,
        run.info.start_time,
        run.info.end_time,
        run.info.lifecycle_stage,
        run.data.params,
        run.data.metrics,
        tags,
    )


def test_the_server_with_its_database_reachable_gets_every_cell_without_a_request_each(
    mlflow_server: Any, config: Any, suite_run: Any
) -> None:
    bulk = replace(config, backend_store_uri=f"sqlite:///{mlflow_server.folder / 'mlflow.db'}")
    rest = replace(config, experiment_prefix=config.experiment_prefix + "rest_")
    run = suite_run(name="bulk", cells=25)
    with counted_requests() as requests:
        result = log_suite_run(run, experiment_logger=ExperimentLogger(bulk))
    assert result.spooled == 0 and result.rejected == 0 and not result.errors
    # Only the parent run is created through the API; the 25 cells went in one transaction.
    assert sum(path.endswith("/runs/create") for path in requests) == 1
    assert result.sent == 3 * 25 + 3 + 6  # the same count of operations as by requests

    log_suite_run(run, experiment_logger=ExperimentLogger(rest))
    client = open_client(config)  # the server's API sees both
    ours, theirs = _cells(client, bulk, run), _cells(client, rest, run)
    assert sorted(ours) == sorted(c.key for c in run.cells)
    for key, cell in ours.items():
        assert _comparable(cell) == _comparable(theirs[key]), key
        history = client.get_metric_history(cell.info.run_id, "time_s_median")
        assert [(m.value, m.step) for m in history] == [(cell.data.metrics["time_s_median"], 0)]
        assert cell.info.artifact_uri.endswith(f"/{cell.info.run_id}/artifacts")
    experiment = client.get_experiment_by_name(bulk.experiment_prefix + run.name)
    parent = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`allele.kind` = 'suite'"
    )[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in ours.values()} == {parent.info.run_id}
    # The server lists the children under their parent, as the UI does.
    nested = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        max_results=100,
    )
    assert len(nested) == 25


def test_a_plain_sqlite_uri_writes_in_bulk_and_logging_again_duplicates_nothing(
    tmp_path: Path, suite_run: Any
) -> None:
    config = _sqlite_config(tmp_path)
    assert database_uri(config) == config.tracking_uri
    run = suite_run(name="again", cells=12)
    first = log_suite_run(run, experiment_logger=ExperimentLogger(config))
    second = log_suite_run(run, experiment_logger=ExperimentLogger(config))
    assert first.rejected == second.rejected == 0
    cells = _cells(open_client(config), config, run)
    assert sorted(cells) == sorted(c.key for c in run.cells)
    assert all(c.info.status == "FINISHED" for c in cells.values())


def test_a_cell_mlflow_refuses_is_refused_alone_and_the_others_are_written(
    tmp_path: Path, suite_run: Any
) -> None:
    config = _sqlite_config(tmp_path)
    run = suite_run(name="refused", cells=5)
    run.cells[2].params["bad*name"] = 1  # MLflow refuses '*' in a parameter name
    result = log_suite_run(run, experiment_logger=ExperimentLogger(config))
    assert result.rejected == 1
    assert "bad*name" in (Path(config.spool_dir) / "rejected.jsonl").read_text()
    cells = _cells(open_client(config), config, run)
    assert sorted(cells) == sorted(c.key for c in run.cells)  # the run itself exists
    assert "bad*name" not in cells[run.cells[2].key].data.params
    assert cells[run.cells[3].key].data.params["size"] == "40"


def test_a_locked_database_spools_the_whole_block_and_it_is_sent_once(
    tmp_path: Path, suite_run: Any
) -> None:
    db = tmp_path / "runs.db"
    config = _sqlite_config(tmp_path)
    run = suite_run(name="locked", cells=6)
    log = ExperimentLogger(config)
    assert log.send(suite_start_ops(run, config)).sent == 2
    from allele.observability.benchmarking.experiment_tracking import cell_ops

    ops = [op for cell in run.cells for op in cell_ops(run, cell, config)]
    writer = log._database_writer()
    assert writer is not None
    holder = sqlite3.connect(db, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writer.store, "ManagedSessionMaker", _no_wait(db))
            result = log.send(ops)
    finally:
        holder.rollback()
        holder.close()
    assert result.sent == 0 and result.spooled == len(ops)
    assert Spool(config.spool_dir).pending() == len(ops)
    assert log.sync().pending == 0
    cells = _cells(open_client(config), config, run)
    assert sorted(cells) == sorted(c.key for c in run.cells)


def _no_wait(db: Path) -> Any:
    """A session maker on ``db`` that gives up at once when the database is locked."""
    from mlflow.store.db.utils import _get_managed_session_maker
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine(f"sqlite:///{db}", connect_args={"timeout": 0})
    return _get_managed_session_maker(sessionmaker(bind=engine), "sqlite")


def test_the_backend_store_setting_takes_database_uris_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from allele.observability.config import ObservabilitySettings

    monkeypatch.setenv("ALLELE_MLFLOW_BACKEND_STORE_URI", "http://127.0.0.1:5000")
    with pytest.raises(ConfigurationError, match="ALLELE_MLFLOW_BACKEND_STORE_URI must be"):
        ObservabilitySettings()
    monkeypatch.setenv("ALLELE_MLFLOW_BACKEND_STORE_URI", "postgresql://u:p@127.0.0.1/mlflow")
    config = ObservabilitySettings().mlflow_config()
    assert config.backend_store_uri == "postgresql://u:p@127.0.0.1/mlflow"
    http = replace(config, tracking_uri="http://127.0.0.1:5000")
    assert database_uri(http) == "postgresql://u:p@127.0.0.1/mlflow"
    assert database_uri(replace(http, backend_store_uri="")) is None


def test_a_postgresql_tracking_database_takes_the_bulk_write_too(
    postgres_url: str, tmp_path: Path, suite_run: Any
) -> None:
    config = mlflow_config(
        tracking_uri=postgres_url,
        spool_dir=str(tmp_path / "spool"),
        artifact_location=str(tmp_path / "artifacts"),
    )
    run = suite_run(name="postgres", cells=10)
    log = ExperimentLogger(config)
    result = log_suite_run(run, experiment_logger=log)
    assert result.spooled == 0 and result.rejected == 0 and not result.errors
    assert log._database is not None  # the cells went through the bulk path
    cells = _cells(open_client(config), config, run)
    assert sorted(cells) == sorted(c.key for c in run.cells)
    first = cells[run.cells[0].key]
    assert first.data.params["size"] == "10"
    assert first.data.metrics["best_fitness"] == pytest.approx(0.5)
