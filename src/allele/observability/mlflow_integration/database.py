"""Finished runs written straight into an MLflow tracking database, many in one transaction.

MLflow has no bulk run creation: each run is a create, a log_batch and an update, and a tracking
server spends ~8.5 ms of CPU on each request, so a 1,000-cell suite costs a server on two cores
at least 12.7 s whatever the client does. When the tracking database can be reached (a
``sqlite:///`` or ``postgresql://`` tracking URI, or ``ALLELE_MLFLOW_BACKEND_STORE_URI`` naming
the server's own ``--backend-store-uri``), ``DatabaseRunWriter`` writes a whole block of
finished runs (their rows in ``runs``, ``tags``, ``params``, ``metrics`` and
``latest_metrics``) with MLflow's own table definitions in one transaction: all of them or none,
so a block that fails is sent again whole, never half.

Values are checked by MLflow's own validators first (names, lengths, numbers), so a run this
writer takes is one MLflow's API would have taken; a run they refuse is left to the per-request
path, which records the refusal. The server reads the same database on each request, so the
runs appear in its UI and API at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RUN_NAME_TAG = "mlflow.runName"


@dataclass
class RunRecord:
    """One finished run as it will be stored."""

    key: str
    name: str | None
    start_time: int
    end_time: int
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)


class DatabaseRunWriter:
    """Writes blocks of finished runs into the MLflow tracking database at ``db_uri``."""

    def __init__(self, db_uri: str, default_artifact_root: str) -> None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        # MLflow's store checks the schema is the one this MLflow version writes (and creates
        # the tables of a new database) before anything is written by hand.
        self.store = SqlAlchemyStore(db_uri, default_artifact_root)

    def check(self, record: RunRecord) -> RunRecord:
        """``record`` as MLflow's validators accept it; raises MlflowException otherwise."""
        from mlflow.utils.validation import _validate_metric, _validate_param, _validate_tag

        for i, (k, v, ts, step) in enumerate(record.metrics):
            _validate_metric(k, v, ts, step, path=f"metrics[{i}]")
        params = {p.key: p.value for p in (_validate_param(k, v) for k, v in record.params.items())}
        tags = {t.key: t.value for t in (_validate_tag(k, v) for k, v in record.tags.items())}
        return RunRecord(
            record.key,
            record.name,
            record.start_time,
            record.end_time,
            record.status,
            tags,
            params,
            record.metrics,
        )

    def write_runs(self, experiment_id: str, records: Sequence[RunRecord]) -> dict[str, str]:
        """Write ``records`` (checked) in one transaction; returns each key's new run id."""
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )
        from mlflow.utils.name_utils import _generate_random_name
        from mlflow.utils.uri import append_to_uri_path

        if not records:
            return {}
        experiment = self.store.get_experiment(experiment_id)
        self.store._check_experiment_is_active(experiment)
        ids: dict[str, str] = {}
        Row = dict[str, Any]
        runs: list[Row] = []
        tags: list[Row] = []
        params: list[Row] = []
        metrics: list[Row] = []
        latest: list[Row] = []
        for record in records:
            run_id = uuid.uuid4().hex
            ids[record.key] = run_id
            name = record.name or record.tags.get(RUN_NAME_TAG) or _generate_random_name()
            runs.append(
                {
                    "run_uuid": run_id,
                    "name": name,
                    "source_type": "UNKNOWN",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": record.tags.get("mlflow.user", "unknown"),  # as MlflowClient
                    "status": record.status,
                    "start_time": record.start_time,
                    "end_time": record.end_time,
                    "deleted_time": None,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": append_to_uri_path(
                        experiment.artifact_location, run_id, "artifacts"
                    ),
                    "experiment_id": int(experiment_id),
                }
            )
            tags.extend(
                {"key": k, "value": v, "run_uuid": run_id}
                for k, v in {**record.tags, RUN_NAME_TAG: name}.items()
            )
            params.extend(
                {"key": k, "value": v, "run_uuid": run_id} for k, v in record.params.items()
            )
            newest: dict[str, tuple[int, int, float]] = {}
            for k, v, ts, step in dict.fromkeys(record.metrics):  # MLflow keeps a point once
                metrics.append(_metric_row(run_id, k, v, ts, step))
                if k not in newest or (step, ts, v) > newest[k]:
                    newest[k] = (step, ts, v)
            latest.extend(
                _metric_row(run_id, k, v, ts, step) for k, (step, ts, v) in newest.items()
            )
        with self.store.ManagedSessionMaker() as session:
            for table, rows in (
                (SqlRun, runs),
                (SqlTag, tags),
                (SqlParam, params),
                (SqlMetric, metrics),
                (SqlLatestMetric, latest),
            ):
                if rows:
                    session.execute(table.__table__.insert(), rows)
        return ids


def _metric_row(run_id: str, key: str, value: float, timestamp: int, step: int) -> dict[str, Any]:
    return {
        "key": key,
        "value": value,
        "timestamp": timestamp,
        "step": step,
        "is_nan": False,  # NaN points are dropped before they get here
        "run_uuid": run_id,
    }


def finished_runs(lanes: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, RunRecord]:
    """The lanes (operations of one run each) that describe a whole finished run, as records.

    A lane qualifies when it is exactly: the ``run``, then ``log`` operations whose params do
    not contradict each other, then the ``end``; anything else (an artifact, a run that already
    exists, a run still going) is sent request by request.
    """
    out: dict[str, RunRecord] = {}
    for key, ops in lanes.items():
        if len(ops) < 2 or ops[0]["op"] != "run" or ops[-1]["op"] != "end":
            continue
        if any(op["op"] != "log" for op in ops[1:-1]):
            continue
        first, last = ops[0], ops[-1]
        start = first.get("start_time")
        end = last.get("end_time")
        if start is None or end is None:
            continue
        record = RunRecord(
            key, first.get("name"), int(start), int(end), last.get("status", "FINISHED")
        )
        record.tags.update({str(k): str(v) for k, v in first.get("tags", {}).items()})
        clash = False
        for op in ops[1:-1]:
            for k, v in op.get("params", {}).items():
                if record.params.setdefault(str(k), str(v)) != str(v):
                    clash = True
            record.tags.update({str(k): str(v) for k, v in op.get("tags", {}).items()})
            record.metrics.extend(
                (str(k), float(v), int(ts), int(step))
                for k, v, ts, step in op.get("metrics", [])
                if v is not None and float(v) == float(v)  # NaN: not logged, as per request
            )
        if not clash:
            out[key] = record
    return out
