"""The MLflow client Allele uses: imported lazily, failing fast when the server is down.

MLflow's HTTP client retries a failed request 7 times with exponential back-off (minutes of
waiting) by default. Allele spools what it could not send and sends it later, so it wants an
answer quickly: unless the user set them, ``open_client`` lowers the retries to 2 and the
request timeout to 10 s (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``..._TIMEOUT`` /
``..._BACKOFF_FACTOR``, which MLflow reads at each request).
"""

from __future__ import annotations

import os
from typing import Any

from allele.errors import require
from allele.observability.types import MLflowConfig

_FAST_FAILURE = {
    # MLflow prints a "View run" link for every run it ends: a thousand lines for a large suite.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}

# MLflow error codes that mean "this request is wrong and will stay wrong": it is not retried.
_PERMANENT_CODES = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
        "BAD_REQUEST",
        "INVALID_STATE",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "ENDPOINT_NOT_FOUND",
    }
)


def load_mlflow() -> Any:
    """The ``mlflow`` module, or a DependencyError naming the extra to install."""
    return require("mlflow", "mlflow")


def open_client(config: MLflowConfig) -> Any:
    """An ``MlflowClient`` for ``config``'s tracking and registry URIs."""
    mlflow = load_mlflow()
    for name, value in _FAST_FAILURE.items():
        os.environ.setdefault(name, value)
    return mlflow.MlflowClient(
        tracking_uri=config.tracking_uri, registry_uri=config.model_registry_uri
    )


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away by itself (server down, restarting, overloaded, locked).

    MLflow reports a request it rejects with an error code (``INVALID_PARAMETER_VALUE``...);
    a connection failure, a timeout or a 5xx after retries comes without one of those codes.
    """
    code = getattr(exc, "error_code", None)
    if code in _PERMANENT_CODES:
        return False
    return isinstance(exc, Exception)
