"""The three requests a logged run needs (create, log a batch, end), as cheaply as possible.

A suite of 1000 cells is 3000 of these requests, so what each costs on the sending side counts
(the server shares the machine). ``RestRunWriter`` sends them to an ``http(s)://`` tracking
server as MLflow's REST API JSON through MLflow's own HTTP layer (``http_request``: its pooled
keep-alive session, authentication, TLS settings and retries), without building MLflow's
entities and protobuf messages on the way, which is where ``MlflowClient`` spends most of its
client-side time. ``ClientRunWriter`` does the same through an ``MlflowClient`` for every other
tracking URI (``sqlite:///``, ``file:``, Databricks...). Both raise MLflow's exceptions, whose
``error_code`` tells a refused request from a failed one (``client.is_transient``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

MetricPoint = tuple[str, float, int, int]  # name, value, timestamp (ms), step


class RunWriter(Protocol):
    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> str: ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricPoint],
        params: Sequence[tuple[str, str]],
        tags: Sequence[tuple[str, str]],
    ) -> None: ...

    def end_run(self, run_id: str, status: str, end_time: int | None) -> None: ...


class ClientRunWriter:
    """The requests through an ``MlflowClient`` (any tracking URI)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> str:
        run = self.client.create_run(
            experiment_id, start_time=start_time, tags=dict(tags), run_name=run_name
        )
        return str(run.info.run_id)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricPoint],
        params: Sequence[tuple[str, str]],
        tags: Sequence[tuple[str, str]],
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, step) for k, v, ts, step in metrics],
            params=[Param(k, v) for k, v in params],
            tags=[RunTag(k, v) for k, v in tags],
        )

    def end_run(self, run_id: str, status: str, end_time: int | None) -> None:
        self.client.set_terminated(run_id, status, end_time)


class RestRunWriter:
    """The requests as MLflow REST calls to the ``http(s)://`` server ``tracking_uri``."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.utils.credentials import get_default_host_creds

        self.creds = get_default_host_creds(tracking_uri)

    def _post(self, endpoint: str, body: dict[str, Any]) -> Any:
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        path = f"/api/2.0/mlflow/{endpoint}"
        response = http_request(self.creds, path, "POST", json=body)
        return verify_rest_response(response, path).json()

    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> str:
        body: dict[str, Any] = {
            "experiment_id": str(experiment_id),
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        if start_time is not None:
            body["start_time"] = int(start_time)
        if run_name:
            body["run_name"] = run_name
        return str(self._post("runs/create", body)["run"]["info"]["run_id"])

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricPoint],
        params: Sequence[tuple[str, str]],
        tags: Sequence[tuple[str, str]],
    ) -> None:
        self._post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": k, "value": v, "timestamp": ts, "step": step}
                    for k, v, ts, step in metrics
                ],
                "params": [{"key": k, "value": v} for k, v in params],
                "tags": [{"key": k, "value": v} for k, v in tags],
            },
        )

    def end_run(self, run_id: str, status: str, end_time: int | None) -> None:
        # As MlflowClient.set_terminated: no end time means now.
        stamp = int(time.time() * 1000) if end_time is None else int(end_time)
        self._post("runs/update", {"run_id": run_id, "status": status, "end_time": stamp})


def run_writer(tracking_uri: str, client: Any, *, injected: bool) -> RunWriter:
    """REST for an ``http(s)://`` server, else (or for an injected client) the client."""
    if not injected and tracking_uri.startswith(("http://", "https://")):
        return RestRunWriter(tracking_uri)
    return ClientRunWriter(client)
