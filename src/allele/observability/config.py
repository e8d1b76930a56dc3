"""Observability settings: the ALLELE_* environment variables, a settings file that reloads
while the program runs, and the default alert rules of each component type.

Precedence, highest first: values passed to ``ObservabilitySettings(...)``, then the settings
file (``ALLELE_SETTINGS_FILE``, TOML or JSON; it is the live configuration, so it overrides the
environment), then ``ALLELE_*`` environment variables, then the defaults below.

A bad value raises ``ConfigurationError`` naming the variable, what is allowed and what was
given, e.g. ``ALLELE_DASHBOARD_PORT must be an integer in [1, 65535], got 'abc'``. A settings
file that fails to parse or validate during hot reload is logged as an error and the previous
settings stay in force.

>>> settings = get_settings()
>>> settings.dashboard_port
8080
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pydantic
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from allele.errors import ConfigurationError
from allele.observability.intervals import (
    MIN_COLLECTION_INTERVAL_S,
    MIN_FLUSH_INTERVAL_S,
    MIN_POLL_S,
    MIN_RETENTION_S,
    MIN_TIMEOUT_S,
    check_seconds,
    describe_range,
)
from allele.observability.metric_names import (
    ERROR_RATE_METRIC,
    HEARTBEAT_AGE_METRIC,
    LATENCY_METRIC,
    PROCESS_RSS,
    SYSTEM_CPU_PERCENT,
    SYSTEM_DISK_PERCENT,
    SYSTEM_MEMORY_PERCENT,
)
from allele.observability.redact import mask_secrets, mask_webhook_url
from allele.observability.types import (
    Aggregation,
    AlertRule,
    AlertSeverity,
    ComponentType,
    DashboardConfig,
    MatrixBenchmarkConfig,
    MLflowConfig,
    MonitoringConfig,
    Operator,
)

logger = logging.getLogger("allele.observability.config")

ENV_PREFIX = "ALLELE_"
_BOOL = "a boolean (true/false, 1/0, yes/no, on/off)"
# The tracking stores MLflow 3 opens from a URI (databricks and plugins are not used here).
_MLFLOW_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql", "http", "https", "file"})
_DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
_MLFLOW_URI = "an MLflow tracking URI: sqlite:///path.db, postgresql://..., http(s)://host:port or file:///dir"


def _f(default: Any, allowed: str, **constraints: Any) -> Any:
    """A settings field that carries the human text of what it allows."""
    return Field(default, json_schema_extra={"allowed": allowed}, **constraints)


def _seconds(default: float, minimum: float, maximum: float, unit: str = "s") -> Any:
    """A duration field: finite, within ``[minimum, maximum]`` (floors from ``intervals``)."""
    return _f(
        default,
        describe_range(minimum, maximum, unit),
        ge=minimum,
        le=maximum,
        allow_inf_nan=False,
    )


class ObservabilitySettings(BaseSettings):
    """Every observability setting, read from ``ALLELE_<FIELD NAME>`` environment variables.

    Construct with keyword overrides (``ObservabilitySettings(dashboard_port=9000)``) or read
    the process-wide instance with ``get_settings()``.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore", validate_default=True
    )

    # Monitoring
    monitoring_enabled: bool = _f(True, _BOOL)
    collection_interval: float = _seconds(10.0, MIN_COLLECTION_INTERVAL_S, 86400)
    retention_hours: float = _seconds(168.0, MIN_RETENTION_S / 3600, 87600, unit="hours")
    alerting_enabled: bool = _f(True, _BOOL)
    series_capacity: int = _f(8192, "an integer in [16, 10000000]", ge=16, le=10_000_000)
    heartbeat_timeout: float = _seconds(60.0, MIN_TIMEOUT_S, 86400)
    strict_metrics: bool = _f(False, _BOOL)
    console_alerts: bool = _f(False, _BOOL)
    # Every series carries it as its ``instance`` label, so that processes sharing a store
    # never merge into one series (None: host:pid).
    instance: str | None = _f(
        None, "a non-empty name of this writer, e.g. web-1 (default host:pid)"
    )
    # Persistence and notifications
    store_uri: str = _f(
        "sqlite:///allele.db",
        "a database URI such as sqlite:///allele.db or postgresql+psycopg://..., "
        "or '' / 'none' to keep metrics in memory only",
    )
    # Every 5 s, as OpenTelemetry's batch processor exports: each write costs the monitored
    # program a few GIL hand-overs, and a crash loses at most this long (the engine still folds
    # every second, so counters keep their one-second timestamps).
    flush_interval: float = _seconds(5.0, MIN_FLUSH_INTERVAL_S, 3600)
    webhook_url: str | None = _f(None, "an http:// or https:// URL, or empty for none")
    settings_file: Path | None = _f(None, "the path of a TOML or JSON settings file")
    alert_routes: Path | None = _f(None, "the path of a TOML alert routes file (see routing)")
    # Benchmarking
    benchmark_runs: int = _f(3, "an integer in [1, 10000]", ge=1, le=10_000)
    benchmark_timeout: float = _seconds(300.0, MIN_TIMEOUT_S, 604_800)
    benchmark_workers: int = _f(1, "an integer in [1, 1024]", ge=1, le=1024)
    benchmark_measure_memory: bool = _f(True, _BOOL)
    # Dashboard
    dashboard_enabled: bool = _f(False, _BOOL)
    dashboard_port: int = _f(8080, "an integer in [1, 65535]", ge=1, le=65535)
    dashboard_host: str = _f("localhost", "a non-empty host name or address", min_length=1)
    # A secret: never echoed by repr, logs or status (SecretStr).
    dashboard_token: SecretStr | None = _f(None, "a token of at least 16 characters", min_length=16)
    # MLflow (used by observability/mlflow_integration and the benchmarking tracker/registries)
    mlflow_enabled: bool = _f(False, _BOOL)
    mlflow_tracking_uri: str = _f("sqlite:///mlflow.db", _MLFLOW_URI)
    mlflow_experiment_prefix: str = _f(
        "allele_benchmark_", "a string of at most 200 characters", max_length=200
    )
    mlflow_artifact_location: str = _f("./mlflow_artifacts", "a non-empty path", min_length=1)
    mlflow_model_registry_enabled: bool = _f(True, _BOOL)
    # Empty: the registry lives where the runs are (a separate registry database is allowed,
    # but then the tracking UI does not show the registered models).
    mlflow_model_registry_uri: str = _f("", _MLFLOW_URI + ", or empty for the tracking URI")
    mlflow_auto_register_models: bool = _f(True, _BOOL)
    mlflow_auto_experiment_tracking: bool = _f(True, _BOOL)
    # MLflow's log_batch takes at most 1000 metrics per call.
    mlflow_metrics_batch_size: int = _f(100, "an integer in [1, 1000]", ge=1, le=1000)
    mlflow_artifact_retention_days: int = _f(30, "an integer in [1, 36500]", ge=1, le=36_500)
    mlflow_spool_dir: Path = _f(
        Path("./mlflow_spool"), "a directory for what could not be sent to MLflow yet"
    )
    # The tracking server's own database (its --backend-store-uri), when this machine can reach
    # it: finished runs are then written there in bulk (mlflow_integration/database.py) instead
    # of three requests each. Empty: everything goes through the server.
    mlflow_backend_store_uri: str = _f(
        "", "a database URI (sqlite:///path.db, postgresql://..., mysql://...) or empty"
    )

    @field_validator("mlflow_backend_store_uri")
    @classmethod
    def _database_uri(cls, value: str) -> str:
        value = value.strip()
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if value and scheme.split("+", 1)[0] not in _DATABASE_SCHEMES:
            raise ValueError("not a database URI")
        return value

    @field_validator("mlflow_tracking_uri", "mlflow_model_registry_uri")
    @classmethod
    def _mlflow_uri(cls, value: str, info: Any) -> str:
        value = value.strip()
        if not value and info.field_name == "mlflow_model_registry_uri":
            return ""
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme.split("+", 1)[0] not in _MLFLOW_SCHEMES:
            raise ValueError("not an MLflow tracking URI")
        return value

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise ConfigurationError(describe_errors(exc, type(self))) from None

    @field_validator("store_uri")
    @classmethod
    def _store_uri(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in ("", "none", "off", "memory"):
            return ""
        if "://" not in value:
            raise ValueError("not a URI")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value.strip()

    @property
    def persistence_enabled(self) -> bool:
        """Whether metrics are written to a store (``store_uri`` is set)."""
        return bool(self.store_uri)

    def monitoring_config(self) -> MonitoringConfig:
        """Return the engine's view of these settings."""
        return MonitoringConfig(
            enabled=self.monitoring_enabled,
            collection_interval_s=self.collection_interval,
            retention_hours=self.retention_hours,
            series_capacity=self.series_capacity,
            alerting_enabled=self.alerting_enabled,
            heartbeat_timeout_s=self.heartbeat_timeout,
            strict=self.strict_metrics,
            store_uri=self.store_uri or None,
            flush_interval_s=self.flush_interval,
            webhook_url=self.webhook_url,
            console_alerts=self.console_alerts,
            instance=self.instance,
        )

    def dashboard_config(self) -> DashboardConfig:
        """Return where the dashboard listens."""
        return DashboardConfig(
            enabled=self.dashboard_enabled, host=self.dashboard_host, port=self.dashboard_port
        )

    def matrix_benchmark_config(self) -> MatrixBenchmarkConfig:
        """Return the benchmark run parameters (repeats, timeout, workers, memory)."""
        return MatrixBenchmarkConfig(
            runs=self.benchmark_runs,
            timeout_s=self.benchmark_timeout,
            workers=self.benchmark_workers,
            measure_memory=self.benchmark_measure_memory,
        )

    def mlflow_config(self) -> MLflowConfig:
        """Return the MLflow settings."""
        return MLflowConfig(
            enabled=self.mlflow_enabled,
            tracking_uri=self.mlflow_tracking_uri,
            experiment_prefix=self.mlflow_experiment_prefix,
            artifact_location=self.mlflow_artifact_location,
            model_registry_enabled=self.mlflow_model_registry_enabled,
            model_registry_uri=self.mlflow_model_registry_uri or self.mlflow_tracking_uri,
            auto_register_models=self.mlflow_auto_register_models,
            auto_experiment_tracking=self.mlflow_auto_experiment_tracking,
            metrics_batch_size=self.mlflow_metrics_batch_size,
            artifact_retention_days=self.mlflow_artifact_retention_days,
            spool_dir=str(self.mlflow_spool_dir),
            backend_store_uri=self.mlflow_backend_store_uri,
        )


def env_name(field_name: str) -> str:
    """Return the environment variable of a settings field (``dashboard_port`` ->
    ``ALLELE_DASHBOARD_PORT``)."""
    return ENV_PREFIX + field_name.upper()


def describe_errors(exc: pydantic.ValidationError, model: type[BaseSettings]) -> str:
    """Return one line per invalid setting: ``<VARIABLE> must be <allowed>, got <value>``."""
    lines = []
    for error in exc.errors():
        field_name = str(error["loc"][0]) if error["loc"] else "?"
        info = model.model_fields.get(field_name)
        extra = info.json_schema_extra if info is not None else None
        allowed = extra.get("allowed") if isinstance(extra, dict) else None
        given = error.get("input")
        if field_name == "webhook_url" and isinstance(given, str):
            given = mask_webhook_url(given)  # its path and query carry tokens
        elif isinstance(given, str):
            given = mask_secrets(given)  # a store URI's password
        lines.append(f"{env_name(field_name)} must be {allowed or error['msg']}, got {given!r}")
    return "; ".join(lines)


# --- settings files and hot reload -------------------------------------------------------------


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """Return the settings in a TOML (``.toml``) or JSON (``.json``) file as field values.

    Keys may be field names (``dashboard_port``) or variable names (``ALLELE_DASHBOARD_PORT``);
    unknown keys are an error (they are usually typos).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read settings file {path}: {exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigurationError(
                f"settings file {path} must end in .toml or .json, got {suffix!r}"
            )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"settings file {path} is not valid {suffix[1:]}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"settings file {path} must hold a table/object of settings")
    values = {}
    known = ObservabilitySettings.model_fields
    for key, value in data.items():
        name = str(key).lower().removeprefix(ENV_PREFIX.lower())
        if name not in known:
            raise ConfigurationError(
                f"settings file {path}: unknown setting {key!r}; known: {sorted(known)}"
            )
        values[name] = value
    return values


def load_settings(path: str | Path | None = None, **overrides: Any) -> ObservabilitySettings:
    """Return settings from the environment, the settings file (``path``, else
    ``ALLELE_SETTINGS_FILE``) and ``overrides``, in increasing priority."""
    if path is None:
        path = os.environ.get(ENV_PREFIX + "SETTINGS_FILE") or None
    if path is not None:
        values = read_settings_file(path)
        values["settings_file"] = Path(path)
        values.update(overrides)
        try:
            return ObservabilitySettings(**values)
        except ConfigurationError as exc:
            raise ConfigurationError(f"settings file {path}: {exc}") from None
    return ObservabilitySettings(**overrides)


SettingsListener = Callable[[ObservabilitySettings, ObservabilitySettings], None]

_lock = threading.RLock()
_current: ObservabilitySettings | None = None
_listeners: list[SettingsListener] = []


def get_settings() -> ObservabilitySettings:
    """Return the process-wide settings (read on first use, replaced by hot reload)."""
    global _current
    current = _current
    if current is not None:
        return current
    with _lock:
        if _current is None:
            _current = load_settings()
        return _current


def set_settings(settings: ObservabilitySettings) -> None:
    """Replace the process-wide settings and tell every listener ``(old, new)``."""
    global _current
    with _lock:
        old = _current if _current is not None else settings
        _current = settings
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(old, settings)
        except Exception:  # one listener must not stop the others
            logger.exception("settings listener %r failed", listener)


def reset_settings() -> None:
    """Forget the process-wide settings and listeners (for tests)."""
    global _current
    with _lock:
        _current = None
        _listeners.clear()


def add_settings_listener(listener: SettingsListener) -> None:
    """Call ``listener(old, new)`` whenever the process-wide settings change."""
    with _lock:
        _listeners.append(listener)


def remove_settings_listener(listener: SettingsListener) -> None:
    """Stop calling ``listener`` (no error if it was not registered)."""
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


class SettingsWatcher:
    """Reloads a settings file when its content changes, without a restart.

    ``check()`` compares the file's content hash with the last one seen; on a change it loads
    the file and calls ``apply(new_settings)`` (by default ``set_settings``). A file that does
    not parse or validate is rejected: the error is logged, ``last_error`` holds it, and the
    previous settings stay. ``start()`` runs ``check()`` every ``interval_s`` on a daemon thread.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        interval_s: float = 1.0,
        apply: Callable[[ObservabilitySettings], None] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.interval_s = check_seconds(interval_s, "interval_s", minimum=MIN_POLL_S)
        self.apply = apply or set_settings
        self.overrides = dict(overrides or {})
        self.last_error: str | None = None
        self.reloads = 0
        self.rejections = 0
        self._digest: str | None = self._read_digest()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def check(self) -> bool:
        """Reload if the file changed; return True when new settings were applied."""
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return False
        self._digest = digest
        try:
            settings = load_settings(self.path, **self.overrides)
        except ConfigurationError as exc:
            self.last_error = str(exc)
            self.rejections += 1
            logger.error("rejected settings reload, keeping the previous settings: %s", exc)
            return False
        self.last_error = None
        self.reloads += 1
        logger.info("reloaded settings from %s", self.path)
        self.apply(settings)
        return True

    def start(self) -> SettingsWatcher:
        """Start polling on a daemon thread; return self."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="allele-settings-watcher", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # keep watching whatever happens
                logger.exception("settings watcher failed")


# --- default alert rules ----------------------------------------------------------------------

# p95 latency (seconds) above which an operation of each component type counts as slow.
_SLOW_P95_S = {
    ComponentType.EVOLUTION_ENGINE: 10.0,  # one generation of a 1000-genome population
    ComponentType.KRAKEN_LNN: 0.5,  # one sequence through the reservoir
    ComponentType.NLP_AGENT: 15.0,  # one chat turn, LLM call included
    ComponentType.LLM_CLIENT: 30.0,  # one provider request
    ComponentType.GENOME: 0.05,  # one mutate / crossover
    ComponentType.CMR_MODEL: 0.1,  # the design documents' high_latency threshold
}


def default_alert_rules(
    component_type: ComponentType | str, settings: ObservabilitySettings | None = None
) -> list[AlertRule]:
    """Return the default alert rules of a component type.

    Components: error rate (mean over 5 min) above 5% (warning) and 25% (critical), p95
    latency over 5 min above the type's threshold (warning), heartbeat older than the timeout
    for a whole 2-minute window (error). System: CPU above 90% (warning) and memory above 90%
    (error) as 5-minute means, disk above 95% (critical), this process above 90% of the
    machine's memory (error).
    """
    kind = ComponentType(component_type)
    if kind is ComponentType.SYSTEM:
        return _system_rules()
    heartbeat_timeout = (settings or get_settings()).heartbeat_timeout
    scope = {"component_type": kind.value}
    prefix = kind.value
    # Every component rule needs several points (min_samples) and most must hold for a minute
    # (for_s): one slow call or one failure right after start is not an incident.
    error_rules = [
        AlertRule(
            name=f"{prefix}_error_rate_{level}",
            metric=ERROR_RATE_METRIC,
            operator=Operator.GT,
            threshold=threshold,
            aggregation=Aggregation.MEAN,
            window_s=300,
            min_samples=3,
            for_s=60,
            severity=severity,
            labels=scope,
            description=f"more than {threshold:.0%} of operations fail",
        )
        for level, threshold, severity in (
            ("high", 0.05, AlertSeverity.WARNING),
            ("critical", 0.25, AlertSeverity.CRITICAL),
        )
    ]
    return [
        *error_rules,
        AlertRule(
            name=f"{prefix}_latency_p95_high",
            metric=LATENCY_METRIC,
            operator=Operator.GT,
            threshold=_SLOW_P95_S[kind],
            aggregation=Aggregation.P95,
            window_s=300,
            min_samples=20,
            for_s=60,
            severity=AlertSeverity.WARNING,
            labels=scope,
            description=f"p95 latency above {_SLOW_P95_S[kind]:g} s",
        ),
        AlertRule(
            name=f"{prefix}_heartbeat_stale",
            metric=HEARTBEAT_AGE_METRIC,
            operator=Operator.GT,
            threshold=heartbeat_timeout,
            # The youngest age in the window: stale for the whole window, not one late beat.
            aggregation=Aggregation.MIN,
            window_s=120,
            min_samples=2,
            severity=AlertSeverity.ERROR,
            labels=scope,
            description=f"no heartbeat for more than {heartbeat_timeout:g} s",
        ),
    ]


def _system_rules() -> list[AlertRule]:
    # (name, metric, threshold, aggregation, window_s, min_samples, for_s, severity, description)
    table = (
        ("system_high_cpu", SYSTEM_CPU_PERCENT, 90.0, Aggregation.MEAN, 300, 3, 60,
         AlertSeverity.WARNING, "machine CPU above 90% for 5 minutes"),
        ("system_high_memory", SYSTEM_MEMORY_PERCENT, 90.0, Aggregation.MEAN, 300, 3, 60,
         AlertSeverity.ERROR, "machine memory above 90%"),
        ("system_disk_full", SYSTEM_DISK_PERCENT, 95.0, Aggregation.MIN, 120, 2, 0,
         AlertSeverity.CRITICAL, "disk above 95% full"),
        ("process_memory_growth", PROCESS_RSS, 0.9 * _total_memory(), Aggregation.MEAN, 300, 3,
         0, AlertSeverity.ERROR, "this process uses more than 90% of the machine's memory"),
    )  # fmt: skip
    return [
        AlertRule(
            name=name,
            metric=metric,
            operator=Operator.GT,
            threshold=threshold,
            aggregation=aggregation,
            window_s=window_s,
            min_samples=min_samples,
            for_s=for_s,
            severity=severity,
            description=description,
        )
        for (
            name,
            metric,
            threshold,
            aggregation,
            window_s,
            min_samples,
            for_s,
            severity,
            description,
        ) in table
    ]


def _total_memory() -> float:
    import psutil

    return float(psutil.virtual_memory().total)
