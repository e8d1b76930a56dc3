"""The MLflow settings (``ALLELE_MLFLOW_*``) as the integration uses them.

The variables are declared and validated with every other setting in
``observability/config.py``; this module turns them into what MLflow calls take:

- ``ALLELE_MLFLOW_ENABLED``: tracking of benchmark suites is on (``allele bench run --mlflow``
  turns it on for one run);
- ``ALLELE_MLFLOW_AUTO_EXPERIMENT_TRACKING``: with tracking enabled, every suite run is tracked
  without asking (false: only runs given ``--mlflow``), and the observability engine's series
  are logged while it runs;
- ``ALLELE_MLFLOW_TRACKING_URI`` / ``ALLELE_MLFLOW_MODEL_REGISTRY_URI``: where runs and
  registered models live (the registry defaults to the tracking URI);
- ``ALLELE_MLFLOW_EXPERIMENT_PREFIX``: a suite's experiment is ``prefix + suite name``;
- ``ALLELE_MLFLOW_ARTIFACT_LOCATION``: the artifact root of experiments Allele creates on a
  database or file store (an ``http(s)://`` server keeps its own artifact root);
- ``ALLELE_MLFLOW_MODEL_REGISTRY_ENABLED``: registry operations are allowed;
- ``ALLELE_MLFLOW_AUTO_REGISTER_MODELS``: a tracked evolution (``genome_registry.track_evolution``)
  registers its best genome;
- ``ALLELE_MLFLOW_METRICS_BATCH_SIZE``: metrics per ``log_batch`` call (MLflow allows 1000);
- ``ALLELE_MLFLOW_ARTIFACT_RETENTION_DAYS``: ``allele mlflow prune`` deletes Allele's runs
  older than this (MLflow's ``gc`` then frees their artifacts);
- ``ALLELE_MLFLOW_SPOOL_DIR``: where what could not be sent waits for the server;
- ``ALLELE_MLFLOW_BACKEND_STORE_URI``: the tracking server's own database, when it can be reached
  from here: finished runs are written into it in bulk (``database.py``).
"""

from __future__ import annotations

from pathlib import Path

from allele.errors import ConfigurationError
from allele.observability.types import MLflowConfig


def mlflow_config(**overrides: object) -> MLflowConfig:
    """The MLflow settings in force (the process-wide settings), with ``overrides`` applied.

    >>> mlflow_config(tracking_uri="sqlite:///runs.db").model_registry_uri
    'sqlite:///runs.db'
    """
    from allele.observability.config import ObservabilitySettings, get_settings

    if not overrides:
        return get_settings().mlflow_config()
    values = get_settings().model_dump()
    values.update({f"mlflow_{k}": v for k, v in overrides.items()})
    unknown = [k for k in values if k not in ObservabilitySettings.model_fields]
    if unknown:
        raise ConfigurationError(f"unknown MLflow setting(s) {unknown}")
    return ObservabilitySettings(**values).mlflow_config()


def experiment_name(config: MLflowConfig, suite_name: str) -> str:
    """The experiment of a suite: ``ALLELE_MLFLOW_EXPERIMENT_PREFIX`` + the suite's name."""
    return f"{config.experiment_prefix}{suite_name}"


def artifact_location(config: MLflowConfig) -> str | None:
    """The artifact root for a new experiment, or None to let the server choose its own."""
    if config.tracking_uri.startswith(("http://", "https://")):
        return None
    return Path(config.artifact_location).expanduser().resolve().as_uri()
