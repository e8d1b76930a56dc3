"""Benchmark suites as MLflow runs: one run per suite run, one child run per cell.

A suite run is the MLflow run ``<suite name>-<suite id>`` in the experiment
``ALLELE_MLFLOW_EXPERIMENT_PREFIX + suite name``. It carries the suite's configuration as
parameters, its totals and the regressions found against a baseline as metrics and tags, and
as artifacts the HTML, Markdown and JSON reports, the suite (``suite.json``, and the TOML file
it came from when there is one), the comparison and every raw sample (``samples.parquet``, or
``samples.json`` without pyarrow). Each cell is a child run named by its cell key with:

- parameters: the cell's parameters, the suite's fixed parameters, ``inner_loops``,
  ``processes``;
- metrics: ``time_s_median`` with its confidence interval (``time_s_ci_low`` /
  ``time_s_ci_high``), ``time_s_p95``, ``time_s_p99``, ``time_s_mean``, ``time_s_stddev``,
  ``time_s_cv``, ``samples``, and every figure of the cell (``ops_per_s``, ``latency_p50_s``...,
  quality such as ``best_fitness``, memory such as ``peak_rss_bytes``, GPU ``gpu_*``), stamped
  with the time the cell finished;
- tags: ``allele.machine``, ``allele.commit`` (and MLflow's ``mlflow.source.git.commit``),
  ``allele.suite_id``, ``allele.cell_key``, ``allele.status``.

``SuiteTracker`` is the runner's observer (``run_suite(..., observers=[tracker])``): a cell is
queued for MLflow as soon as it finishes, so a long suite shows up while it runs and a crash
loses nothing already measured; ``log_suite_run`` / ``log_stored_run`` send a finished run at
once (``allele mlflow log SUITE_ID``). Sending, batching and the spool are the
``ExperimentLogger``'s.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from allele.observability.benchmarking.experiment_logger import (
    ExperimentLogger,
    SendResult,
    now_ms,
)
from allele.observability.benchmarking.model import PRIMARY_METRIC, CellResult, SuiteRun
from allele.observability.mlflow_integration.config import experiment_name, mlflow_config
from allele.observability.mlflow_integration.spool import Operation
from allele.observability.types import MLflowConfig

logger = logging.getLogger(__name__)

# MLflow 3 keeps parameter values up to 6000 characters and tag values up to 8000.
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000


def suite_key(run: SuiteRun) -> str:
    """Allele's key of the MLflow run of a suite run."""
    return f"suite:{run.suite_id}"


def cell_run_key(run: SuiteRun, cell: CellResult) -> str:
    """Allele's key of the MLflow child run of a cell."""
    return f"cell:{run.suite_id}:{cell.key}"


def _ms(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def _where(run: SuiteRun, key: str, parent: str | None, config: MLflowConfig) -> Operation:
    return {
        "key": key,
        "experiment": experiment_name(config, run.name),
        "group": run.suite_id,
        "parent": parent,
    }


def _provenance_tags(run: SuiteRun) -> dict[str, str]:
    commit = str(run.commit.get("id", ""))
    tags = {
        "allele.suite": run.name,
        "allele.suite_id": run.suite_id,
        "allele.component": run.component,
        "allele.machine": str(run.machine.get("node", "")),
    }
    if commit:
        tags["allele.commit"] = commit + ("-dirty" if run.commit.get("dirty") else "")
        tags["mlflow.source.git.commit"] = commit
    return tags


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) > MAX_PARAM_VALUE:
        return text[: MAX_PARAM_VALUE - 40] + " ... (complete in suite.json)"
    return text


def suite_start_ops(run: SuiteRun, config: MLflowConfig) -> list[Operation]:
    """The operations that open a suite's MLflow run: the run, its parameters and tags."""
    key = suite_key(run)
    where = _where(run, key, None, config)
    params = {k: _param_value(v) for k, v in sorted(run.config.items()) if v is not None}
    return [
        {
            **where,
            "op": "run",
            "name": f"{run.name}-{run.suite_id[:8]}",
            "tags": {**_provenance_tags(run), "allele.kind": "suite"},
            "start_time": _ms(run.created_at),
        },
        {**where, "op": "log", "params": params, "metrics": [], "tags": {}},
    ]


def cell_metrics(cell: CellResult) -> dict[str, float]:
    """The figures of a cell as MLflow metrics (statistics of its timing, then its metrics)."""
    from allele.observability.benchmarking.stats import describe

    out: dict[str, float] = {}
    times = cell.samples.get(PRIMARY_METRIC, [])
    if times:
        s = describe(times)
        out.update(
            {
                "time_s_median": s.median,
                "time_s_ci_low": s.median_ci[0],
                "time_s_ci_high": s.median_ci[1],
                "time_s_p95": s.percentiles["p95"],
                "time_s_p99": s.percentiles["p99"],
                "time_s_mean": s.mean,
                "time_s_stddev": s.stddev,
                "time_s_cv": s.cv,
                "samples": float(s.n),
            }
        )
    for name, value in cell.metrics.items():
        out[name] = float(value)
    return {k: v for k, v in out.items() if math.isfinite(v)}


def cell_ops(run: SuiteRun, cell: CellResult, config: MLflowConfig) -> list[Operation]:
    """The operations of one finished cell: its child run, parameters, metrics, tags, end."""
    key = cell_run_key(run, cell)
    where = _where(run, key, suite_key(run), config)
    stamp = _ms(cell.finished_at) or now_ms()
    fixed = run.config.get("params") or {}
    params = {
        **{k: _param_value(v) for k, v in fixed.items()},
        **{k: _param_value(v) for k, v in cell.params.items()},
        "inner_loops": str(cell.inner_loops),
        "processes": str(cell.processes),
    }
    tags = {
        **_provenance_tags(run),
        "allele.kind": "cell",
        "allele.cell_key": cell.key,
        "allele.status": cell.status,
    }
    if cell.node:
        tags["allele.node"] = cell.node
    if cell.error:
        tags["allele.error"] = cell.error[-MAX_TAG_VALUE:]
    metrics = [[name, value, stamp, 0] for name, value in cell_metrics(cell).items()]
    status = "FINISHED" if cell.status == "ok" else "FAILED"
    return [
        {
            **where,
            "op": "run",
            "name": cell.key[:250],
            "tags": tags,
            "start_time": _ms(cell.started_at) or stamp,
        },
        {**where, "op": "log", "params": params, "metrics": metrics, "tags": {}},
        {**where, "op": "end", "status": status, "end_time": stamp},
    ]


def suite_end_ops(
    run: SuiteRun,
    config: MLflowConfig,
    comparison: Any = None,
    artifacts: Iterable[tuple[Path, str | None]] = (),
) -> list[Operation]:
    """The operations that close a suite's run: totals, regressions, artifacts, status."""
    key = suite_key(run)
    where = _where(run, key, None, config)
    stamp = now_ms()
    ok = sum(1 for c in run.cells if c.status == "ok")
    metrics: dict[str, float] = {
        "cells": float(len(run.cells)),
        "cells_ok": float(ok),
        "cells_failed": float(len(run.cells) - ok),
    }
    tags: dict[str, str] = {"allele.status": run.status}
    if comparison is not None:
        counts = comparison.counts()
        metrics.update({f"cells_{verdict}": float(n) for verdict, n in counts.items()})
        metrics["regressions"] = float(counts["regression"])
        metrics["improvements"] = float(counts["improvement"])
        tags["allele.baseline"] = f"{comparison.baseline_name}:{comparison.baseline_id}"
        regressed = [c.key for c in comparison.regressions]
        text = "; ".join(regressed) or "none"
        if len(text) > MAX_TAG_VALUE:
            more = f" ... ({len(regressed)} cells, see comparison.json)"
            text = text[: MAX_TAG_VALUE - len(more)] + more
        tags["allele.regressions"] = text
    ops: list[Operation] = [
        {
            **where,
            "op": "log",
            "params": {},
            "metrics": [[k, v, stamp, 0] for k, v in metrics.items()],
            "tags": tags,
        }
    ]
    for path, folder in artifacts:
        ops.append({**where, "op": "artifact", "path": str(path), "artifact_path": folder})
    status = {"complete": "FINISHED", "interrupted": "KILLED"}.get(run.status, "FAILED")
    ops.append({**where, "op": "end", "status": status, "end_time": stamp})
    return ops


def write_artifacts(
    run: SuiteRun, folder: Path, comparison: Any = None, suite_file: str | Path | None = None
) -> list[tuple[Path, str | None]]:
    """Write the suite's artifacts into ``folder``; returns ``(file, artifact folder)`` pairs."""
    from allele.observability.benchmarking.report.jsonreport import json_report
    from allele.observability.benchmarking.report.markdown import markdown_report

    folder.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, str | None]] = []

    def write(name: str, text: str, where: str | None) -> None:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        out.append((path, where))

    write("suite.json", json.dumps(run.config, indent=2, sort_keys=True, default=str), None)
    if suite_file is not None and Path(suite_file).is_file():
        out.append((Path(suite_file), None))
    write("report.md", markdown_report(run, comparison), "reports")
    report = json_report(run, comparison)
    write("report.json", json.dumps(report, indent=2, allow_nan=False, default=str), "reports")
    try:
        from allele.observability.benchmarking.report.html import html_report

        write("report.html", html_report(run, comparison), "reports")
    except ImportError as exc:  # plotly is the `report` extra
        logger.warning("MLflow tracking: no HTML report (%s)", exc)
    if comparison is not None:
        write("comparison.json", json.dumps(comparison.to_dict(), indent=2, default=str), None)
    out.append((_write_samples(run, folder), "samples"))
    return out


def _write_samples(run: SuiteRun, folder: Path) -> Path:
    """Every raw sample as rows ``(cell_key, metric, index, value)``: Parquet, else JSON."""
    rows: dict[str, list[Any]] = {"cell_key": [], "metric": [], "index": [], "value": []}
    for cell in run.cells:
        for metric, values in cell.samples.items():
            rows["cell_key"].extend([cell.key] * len(values))
            rows["metric"].extend([metric] * len(values))
            rows["index"].extend(range(len(values)))
            rows["value"].extend(float(v) for v in values)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        path = folder / "samples.json"
        path.write_text(json.dumps(rows), encoding="utf-8")
        return path
    path = folder / "samples.parquet"
    pq.write_table(pa.table(rows), path)
    return path


def suite_comparison(store: Any, run: SuiteRun, baseline: str | None = None) -> Any:
    """The Comparison of ``run`` with the named ``baseline``, else with the previous complete
    run of the same suite in ``store``; None when there is nothing to compare with."""
    from allele.observability.benchmarking import storage
    from allele.observability.benchmarking.compare import compare_runs

    if store is None:
        return None
    if baseline is not None:
        before = storage.get_baseline(store, baseline)
    else:
        earlier = [
            s
            for s in storage.list_runs(store, name=run.name, limit=20)
            if s.status == "complete"
            and s.suite_id != run.suite_id
            and s.created_at < run.created_at
        ]
        if not earlier:
            return None
        before = storage.load_run(store, earlier[0].suite_id)
    return compare_runs(before, run, noise=storage.load_calibration(store, run.name))


def suite_ops(
    run: SuiteRun,
    config: MLflowConfig,
    folder: Path,
    comparison: Any = None,
    suite_file: str | Path | None = None,
) -> list[Operation]:
    """Every operation that logs a finished suite run (artifacts are written into ``folder``)."""
    ops = suite_start_ops(run, config)
    for cell in run.cells:
        ops.extend(cell_ops(run, cell, config))
    artifacts = write_artifacts(run, folder, comparison, suite_file)
    ops.extend(suite_end_ops(run, config, comparison, artifacts))
    return ops


def log_suite_run(
    run: SuiteRun,
    *,
    experiment_logger: ExperimentLogger | None = None,
    comparison: Any = None,
    suite_file: str | Path | None = None,
) -> SendResult:
    """Log a finished suite run to MLflow now; what cannot be sent is spooled."""
    log = experiment_logger or ExperimentLogger()
    with tempfile.TemporaryDirectory(prefix="allele-mlflow-") as tmp:
        return log.send(suite_ops(run, log.config, Path(tmp), comparison, suite_file))


def log_stored_run(
    store: Any,
    suite_id: str,
    *,
    experiment_logger: ExperimentLogger | None = None,
    baseline: str | None = None,
) -> tuple[SuiteRun, SendResult]:
    """Log the stored run ``suite_id`` (with its comparison to ``baseline``) to MLflow."""
    from allele.observability.benchmarking.storage import load_run

    run = load_run(store, suite_id)
    comparison = suite_comparison(store, run, baseline)
    return run, log_suite_run(run, experiment_logger=experiment_logger, comparison=comparison)


class SuiteTracker:
    """The runner's MLflow observer: a suite run becomes an MLflow run while it runs.

    ``store`` (the suite's store) gives the baseline to compare with at the end (``baseline``
    names one, else the previous complete run of the suite). ``engine`` is an observability
    engine whose series and alerts are logged on the suite's run while it runs. No method
    raises: a tracking failure is logged and the suite goes on.
    """

    def __init__(
        self,
        *,
        config: MLflowConfig | None = None,
        experiment_logger: ExperimentLogger | None = None,
        store: Any = None,
        baseline: str | None = None,
        suite_file: str | Path | None = None,
        engine: Any = None,
        owns_engine: bool = False,
        flush_timeout: float = 60.0,
    ) -> None:
        self.config = config or (experiment_logger.config if experiment_logger else mlflow_config())
        self.logger = experiment_logger or ExperimentLogger(self.config)
        self.store = store
        self.baseline = baseline
        self.suite_file = suite_file
        self.engine = engine
        self.owns_engine = owns_engine
        self.flush_timeout = flush_timeout
        self.live: Any = None
        self._logged: set[str] = set()
        self._finishers: list[threading.Thread] = []

    def suite_started(self, run: SuiteRun) -> None:
        """Open the suite's MLflow run (and start logging the engine's series on it)."""
        try:
            self.logger.submit(suite_start_ops(run, self.config))
            if self.engine is not None:
                from allele.observability.benchmarking.metrics_logging import LiveMetricsLogger

                where = _where(run, suite_key(run), None, self.config)
                self.live = LiveMetricsLogger(self.engine, self.logger, where).attach()
        except Exception:
            logger.exception("MLflow tracking: could not start tracking suite %s", run.name)

    def cell_finished(self, run: SuiteRun, cell: CellResult) -> None:
        """Queue a finished cell's child run (sent in the background)."""
        try:
            self.logger.submit(cell_ops(run, cell, self.config))
            self._logged.add(cell.key)
        except Exception:
            logger.exception("MLflow tracking: could not log cell %s", cell.key)

    def suite_finished(self, run: SuiteRun) -> None:
        """Close the suite's run in the background: comparison, reports, artifacts, status.

        Returns at once (the reports and the uploads would otherwise hold up the runner);
        ``wait()`` or ``close()`` wait for them.
        """
        try:
            if self.live is not None:
                self.live.detach()
                self.live = None
            # Cells finished before this process started (a resumed run) were not reported.
            for cell in run.cells:
                if cell.key not in self._logged and cell.status != "partial":
                    self.cell_finished(run, cell)
            finisher = threading.Thread(
                target=self._finish, args=(run,), name="allele-mlflow-finish", daemon=True
            )
            self._finishers.append(finisher)
            finisher.start()
        except Exception:
            logger.exception("MLflow tracking: could not finish tracking suite %s", run.name)

    def _finish(self, run: SuiteRun) -> None:
        try:
            comparison = None
            try:
                comparison = suite_comparison(self.store, run, self.baseline)
            except Exception as exc:
                logger.warning("MLflow tracking: no comparison for %s: %s", run.name, exc)
            tmp = Path(tempfile.mkdtemp(prefix="allele-mlflow-"))
            artifacts = write_artifacts(run, tmp, comparison, self.suite_file)
            self.logger.submit(suite_end_ops(run, self.config, comparison, artifacts))
            # The artifacts live in ``tmp`` until they are sent or copied into the spool.
            if self.logger.flush(self.flush_timeout):
                shutil.rmtree(tmp, ignore_errors=True)
            if self.logger.spool.pending():
                # The server may be back while the sender still waits out its back-off.
                self.logger.sync()
        except Exception:
            logger.exception("MLflow tracking: could not finish tracking suite %s", run.name)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the finished suites are sent (or spooled)."""
        for finisher in self._finishers:
            finisher.join(timeout)
        self._finishers = [f for f in self._finishers if f.is_alive()]

    def close(self) -> None:
        """Finish what is started, stop the sender (what is left is spooled) and the engine
        this tracker started."""
        self.wait(self.flush_timeout)
        self.logger.close()
        if self.owns_engine and self.engine is not None:
            self.engine.close()


def tracker_for(
    requested: bool | None,
    *,
    store: Any = None,
    baseline: str | None = None,
    suite_file: str | Path | None = None,
    live: bool = True,
) -> SuiteTracker | None:
    """The tracker a suite run gets, or None: ``requested`` True/False is the ``--mlflow`` /
    ``--no-mlflow`` choice; None follows ``ALLELE_MLFLOW_ENABLED`` and
    ``ALLELE_MLFLOW_AUTO_EXPERIMENT_TRACKING``.

    With ``live``, a private observability engine samples the machine during the run and its
    series are logged on the suite's run. Raises DependencyError when tracking was requested
    and MLflow is not installed; when only the settings ask for it, logs a warning instead.
    """
    from allele.errors import DependencyError

    config = mlflow_config()
    wanted = (
        requested if requested is not None else (config.enabled and config.auto_experiment_tracking)
    )
    if not wanted:
        return None
    try:
        experiment_logger = ExperimentLogger(config)
    except DependencyError:
        if requested:
            raise
        logger.warning("ALLELE_MLFLOW_ENABLED is set but mlflow is not installed: not tracked")
        return None
    engine = None
    if live:
        from allele.observability.config import ObservabilitySettings
        from allele.observability.engine import ObservabilityEngine

        # Its own engine, with no store: the suite's process is watched, nothing else changes.
        engine = ObservabilityEngine(ObservabilitySettings(store_uri="none"), notifiers=[])
        engine.start()
    return SuiteTracker(
        config=config,
        experiment_logger=experiment_logger,
        store=store,
        baseline=baseline,
        suite_file=suite_file,
        engine=engine,
        owns_engine=engine is not None,
    )


def prune_runs(config: MLflowConfig, days: int) -> int:
    """Delete (MLflow's soft delete) the suite runs older than ``days`` in Allele's experiments,
    with their cell runs; returns how many runs were deleted. ``mlflow gc`` frees their
    artifacts afterwards."""
    from allele.errors import ValidationError
    from allele.observability.benchmarking.experiment_logger import GROUP_TAG
    from allele.observability.mlflow_integration.client import open_client

    if not (isinstance(days, int) and days >= 1):
        raise ValidationError(f"days must be an integer >= 1, got {days!r}")
    client = open_client(config)
    cutoff = now_ms() - days * 86_400_000
    prefix = config.experiment_prefix.replace("'", "")
    experiments = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    ids = [e.experiment_id for e in experiments]
    deleted = 0
    if not ids:
        return 0
    old = client.search_runs(
        ids, filter_string=f"tags.`allele.kind` = 'suite' and attributes.start_time < {cutoff}"
    )
    for suite in old:
        group = suite.data.tags.get(GROUP_TAG, "")
        members = client.search_runs(
            [suite.info.experiment_id], filter_string=f"tags.`{GROUP_TAG}` = '{group}'"
        )
        for run in members:
            client.delete_run(run.info.run_id)
            deleted += 1
    return deleted
