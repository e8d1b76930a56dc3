"""Plain views of the settings that each part of Allele reads (built by
``ObservabilitySettings``: ``monitoring_config()``, ``dashboard_config()``, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from allele.observability.types.persisted import Persisted


@dataclass(slots=True)
class MonitoringConfig(Persisted):
    """What the engine does: sampling interval, in-memory retention, health thresholds,
    alerting and persistence. Built from ``ObservabilitySettings.monitoring_config()``."""

    enabled: bool = True
    collection_interval_s: float = 10.0
    retention_hours: float = 168.0
    series_capacity: int = 8192
    alerting_enabled: bool = True
    heartbeat_timeout_s: float = 60.0
    degraded_error_rate: float = 0.05
    unhealthy_error_rate: float = 0.25
    health_window_s: float = 300.0
    strict: bool = False
    store_uri: str | None = None
    flush_interval_s: float = 5.0
    webhook_url: str | None = None
    console_alerts: bool = False
    instance: str | None = None


@dataclass(slots=True)
class DashboardConfig(Persisted):
    """Where the dashboard listens and how often it refreshes."""

    enabled: bool = False
    host: str = "localhost"
    port: int = 8080
    refresh_interval_s: float = 2.0


@dataclass(slots=True)
class MatrixBenchmarkConfig(Persisted):
    """A plain description of a benchmark matrix run: repeats, timeout, workers, memory
    measurement and the parameter grid (name -> values)."""

    runs: int = 3
    timeout_s: float = 300.0
    workers: int = 1
    measure_memory: bool = True
    population_sizes: list[int] = field(default_factory=lambda: [50, 100, 250, 500, 1000])
    parameters: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(slots=True)
class MLflowConfig(Persisted):
    """MLflow tracking and model-registry settings (the ALLELE_MLFLOW_* variables)."""

    enabled: bool = False
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment_prefix: str = "allele_benchmark_"
    artifact_location: str = "./mlflow_artifacts"
    model_registry_enabled: bool = True
    model_registry_uri: str = "sqlite:///mlflow.db"
    auto_register_models: bool = True
    auto_experiment_tracking: bool = True
    metrics_batch_size: int = 100
    artifact_retention_days: int = 30
    spool_dir: str = "./mlflow_spool"
    backend_store_uri: str = ""
