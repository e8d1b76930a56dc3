"""MLflow integration: the client and settings every MLflow feature of Allele goes through.

Needs the ``mlflow`` extra (``mlflow-skinny`` is enough for tracking and the registry; the full
``mlflow`` package runs ``mlflow server`` and its UI). MLflow is imported only when one of these
names is used, so ``import allele`` does not pay for it. What uses them lives beside the
benchmarking: ``benchmarking/experiment_tracking.py`` (suite runs as MLflow runs),
``experiment_logger.py`` (sending, batching, the spool), ``metrics_logging.py`` (engine series
and alerts in real time), ``genome_registry.py`` and ``model_registry.py`` (registered models).
"""

from __future__ import annotations

from allele._lazy import lazy_namespace

_LAZY: dict[str, str] = {
    "mlflow_config": "allele.observability.mlflow_integration.config",
    "experiment_name": "allele.observability.mlflow_integration.config",
    "open_client": "allele.observability.mlflow_integration.client",
    "is_transient": "allele.observability.mlflow_integration.client",
    "Spool": "allele.observability.mlflow_integration.spool",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, globals(), _LAZY)
