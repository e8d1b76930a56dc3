"""The spool's order and exactly-once replay; log_batch limits; the settings' validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.experiment_logger import ExperimentLogger, coalesce
from allele.observability.config import ObservabilitySettings
from allele.observability.mlflow_integration.config import mlflow_config
from allele.observability.mlflow_integration.spool import Rejected, SendFailed, Spool


def _ops(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"op": "end", "key": f"k{i}", "status": "FINISHED"} for i in range(start, start + n)]


def test_replay_sends_in_order_and_resumes_after_a_failure(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_ops(100))
    sent: list[str] = []

    def flaky(op: dict[str, Any]) -> None:
        if op["key"] == "k70" and "k70" not in failed:
            failed.add("k70")
            raise SendFailed("server restarting")
        sent.append(op["key"])

    failed: set[str] = set()
    first = spool.replay(flaky)
    assert (first.sent, first.pending) == (70, 30)
    assert spool.pending() == 30
    second = Spool(tmp_path).replay(flaky)  # another process takes over where it stopped
    assert (second.sent, second.pending) == (30, 0)
    assert sent == [f"k{i}" for i in range(100)]  # each once, in order
    assert spool.pending() == 0 and not list(tmp_path.glob("*.jsonl"))


def test_refused_operations_are_kept_aside_and_the_rest_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_ops(3))

    def picky(op: dict[str, Any]) -> None:
        if op["key"] == "k1":
            raise Rejected("INVALID_PARAMETER_VALUE: param changed")

    result = spool.replay(picky)
    assert (result.sent, result.rejected, result.pending) == (2, 1, 0)
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert rejected[0]["operation"]["key"] == "k1" and "param changed" in rejected[0]["error"]


def test_a_line_cut_by_a_crash_is_not_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_ops(2))
    batch = next(tmp_path.glob("*.jsonl"))
    with open(batch, "a") as f:
        f.write('{"op": "end", "key": "half')  # the process died mid-append
    assert spool.pending() == 2
    assert spool.replay(lambda op: None).sent == 2


def test_spooled_artifacts_are_copies(tmp_path: Path) -> None:
    original = tmp_path / "report.md"
    original.write_text("# report")
    spool = Spool(tmp_path / "spool")
    spool.append([{"op": "artifact", "key": "k", "path": str(original), "artifact_path": None}])
    original.unlink()  # the temporary original is gone; the spool has its own copy
    seen: list[str] = []
    spool.replay(lambda op: seen.append(Path(op["path"]).read_text()))
    assert seen == ["# report"]


class RecordingClient:
    """A fake MLflow client that records log_batch calls (tests the batching only)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, int]] = []

    def log_batch(self, run_id: str, metrics: Any, params: Any, tags: Any) -> None:
        self.batches.append((len(metrics), len(params), len(tags)))


@pytest.mark.parametrize(("batch_size", "expected"), [(1000, [1000, 1000, 500]), (100, [100] * 25)])
def test_metrics_go_in_batches_of_at_most_the_batch_size(
    tmp_path: Path, batch_size: int, expected: list[int]
) -> None:
    config = mlflow_config(
        tracking_uri="sqlite:///unused.db", metrics_batch_size=batch_size, spool_dir=str(tmp_path)
    )
    client = RecordingClient()
    logger = ExperimentLogger(config, client=client)
    op = {"op": "log", "metrics": [[f"m{i % 7}", float(i), 1000 + i, i] for i in range(2500)]}
    logger._log("run", op)
    assert [m for m, _, _ in client.batches] == expected
    assert sum(m for m, _, _ in client.batches) == 2500


def test_params_and_tags_are_split_at_mlflows_limits(tmp_path: Path) -> None:
    config = mlflow_config(tracking_uri="sqlite:///unused.db", spool_dir=str(tmp_path))
    client = RecordingClient()
    op = {
        "op": "log",
        "params": {f"p{i}": i for i in range(250)},
        "tags": {f"t{i}": i for i in range(120)},
        "metrics": [["m", 1.0, 1, 0]] * 950,
    }
    ExperimentLogger(config, client=client)._log("run", op)
    assert all(m + p + t <= 1000 and p <= 100 and t <= 100 for m, p, t in client.batches)
    assert sum(p for _, p, _ in client.batches) == 250
    assert sum(t for _, _, t in client.batches) == 120
    assert sum(m for m, _, _ in client.batches) == 950


def test_neighbouring_log_operations_of_a_run_are_merged() -> None:
    a = {"op": "log", "key": "r", "metrics": [["x", 1.0, 1, 0]], "params": {}, "tags": {}}
    b = {"op": "log", "key": "r", "metrics": [["x", 2.0, 2, 1]], "params": {}, "tags": {"t": "1"}}
    c = {"op": "end", "key": "r"}
    merged = coalesce([a, b, c, a])
    assert [op["op"] for op in merged] == ["log", "end", "log"]
    assert merged[0]["metrics"] == [["x", 1.0, 1, 0], ["x", 2.0, 2, 1]]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mlflow_tracking_uri", "mlflow.db", "ALLELE_MLFLOW_TRACKING_URI must be an MLflow"),
        ("mlflow_model_registry_uri", "ftp://x", "ALLELE_MLFLOW_MODEL_REGISTRY_URI must be"),
        (
            "mlflow_metrics_batch_size",
            5000,
            "ALLELE_MLFLOW_METRICS_BATCH_SIZE must be an integer in [1, 1000]",
        ),
        ("mlflow_artifact_retention_days", 0, "ALLELE_MLFLOW_ARTIFACT_RETENTION_DAYS"),
        ("mlflow_enabled", "perhaps", "ALLELE_MLFLOW_ENABLED must be a boolean"),
    ],
)
def test_bad_mlflow_settings_name_the_variable(field: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ObservabilitySettings(**{field: value})
    assert message in str(info.value)


def test_the_registry_defaults_to_the_tracking_uri() -> None:
    settings = ObservabilitySettings(mlflow_tracking_uri="http://127.0.0.1:5000")
    assert settings.mlflow_config().model_registry_uri == "http://127.0.0.1:5000"
    other = ObservabilitySettings(mlflow_model_registry_uri="sqlite:///registry.db")
    assert other.mlflow_config().model_registry_uri == "sqlite:///registry.db"
