"""The vocabulary of observability: metric kinds, series and the batches that cross to the store."""

from __future__ import annotations

import math
import numbers
import operator
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum, StrEnum
from types import UnionType
from typing import Any, TypedDict, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np

from allele.errors import ValidationError
from allele.observability.clock import parse_utc


class MetricType(StrEnum):
    """How a metric's values combine."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    TIMER = "timer"
    DISTRIBUTION = "distribution"


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Identity of one time series: metric name, sorted label pairs and kind."""

    name: str
    labels: tuple[tuple[str, str], ...]
    kind: MetricType


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What a producer that checked a batch knows of its values: their sum, min and max."""

    sum: float
    min: float
    max: float


@dataclass(slots=True)
class SeriesBatch:
    """Points of one series recorded since the previous drain (epoch seconds UTC, float64).

    ``stats``, when given, vouches for the batch: every timestamp and value is finite, the
    points are in time order and ``stats`` holds their sum, min and max. ``MetricsCollector``
    drains such batches (its fold has checked them), and a store then writes them without
    checking them again. Without ``stats`` the store checks and orders the points itself.
    """

    key: SeriesKey
    timestamps: np.ndarray
    values: np.ndarray
    stats: BatchStats | None = None


class AlertSeverity(StrEnum):
    """How urgent an alert is, in increasing order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class ComponentType(StrEnum):
    """The kinds of component the engine watches; each has its own default alert rules."""

    EVOLUTION_ENGINE = "evolution_engine"
    KRAKEN_LNN = "kraken_lnn"
    NLP_AGENT = "nlp_agent"
    LLM_CLIENT = "llm_client"
    GENOME = "genome"
    CMR_MODEL = "cmr_model"
    SYSTEM = "system"


class HealthStatus(StrEnum):
    """A component's health, from its heartbeat age and its error rate."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class AlertState(StrEnum):
    """Where an alert is in its life: pending (condition true, ``for`` not yet elapsed),
    firing, or resolved (condition cleared, or resolved by hand)."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Operator(StrEnum):
    """Comparison of an aggregated value with a rule's threshold."""

    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    NE = "ne"

    def compare(self, value: float, threshold: float) -> bool:
        """Return whether ``value <op> threshold`` holds."""
        return _COMPARE[self](value, threshold)


_COMPARE: dict[Operator, Callable[[float, float], bool]] = {
    Operator.GT: operator.gt,
    Operator.GTE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LTE: operator.le,
    Operator.EQ: operator.eq,
    Operator.NE: operator.ne,
}


class Aggregation(StrEnum):
    """How a rule (or a reader) reduces a window of points to one number.

    ``rate`` is the increase per second over the window (for counters; for other kinds, the
    number of points per second); ``last`` is the newest point.
    """

    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    MEAN = "mean"
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    RATE = "rate"
    LAST = "last"


# --- names and values -------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_REJECTED: Counter[str] = Counter()
_REJECTED_LOCK = threading.Lock()


def validate_metric_name(name: object) -> str:
    """Return ``name`` if it is a Prometheus-compatible metric name, else raise ValidationError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(f"invalid metric name {name!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    return name


def normalize_labels(labels: Mapping[str, object] | None) -> tuple[tuple[str, str], ...]:
    """Return labels as sorted ``(name, value)`` pairs, validating names ([a-zA-Z_][a-zA-Z0-9_]*,
    not starting with ``__``) and turning values into strings."""
    if not labels:
        return ()
    pairs = []
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_RE.match(key) or key.startswith("__"):
            raise ValidationError(
                f"invalid label name {key!r}: must match [a-zA-Z_][a-zA-Z0-9_]* "
                "and not start with '__'"
            )
        if value is None:
            raise ValidationError(f"label {key!r} has no value (None); give a string")
        pairs.append((key, str(value)))
    return tuple(sorted(pairs))


def value_problem(value: object) -> str | None:
    """Return why ``value`` cannot be a metric value ("nan", "inf", "not_a_number"), or None."""
    if not isinstance(value, numbers.Real):
        return "not_a_number"
    as_float = float(value)
    if math.isnan(as_float):
        return "nan"
    if math.isinf(as_float):
        return "inf"
    return None


def count_rejected(reason: str, n: int = 1) -> None:
    """Count ``n`` metric values rejected for ``reason`` (see ``rejected_values``)."""
    with _REJECTED_LOCK:
        _REJECTED[reason] += n


def rejected_values() -> dict[str, int]:
    """Return how many ``MetricValue`` constructions were rejected, by reason."""
    with _REJECTED_LOCK:
        return dict(_REJECTED)


# --- (de)serialisation shared by every persisted type ------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple):
        args = get_args(hint)
        inner = args[0] if args else Any
        items = [_decode(inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        inner = get_args(hint)[1] if get_args(hint) else Any
        return {k: _decode(inner, v) for k, v in value.items()}
    if hint is datetime:
        return parse_utc(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if isinstance(hint, type) and hasattr(hint, "from_dict"):
        return hint.from_dict(value)
    return value


_T = TypeVar("_T", bound="Persisted")


class Persisted:
    """Mixin for dataclasses: ``to_dict()`` gives JSON-ready data, ``from_dict()`` reads it back.

    Datetimes become ISO-8601 UTC strings, enums their values, nested types their dicts.
    """

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready data."""
        return {f.name: _encode(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Return an instance built from ``to_dict()`` output (unknown keys are an error)."""
        hints = _hints(cls)
        unknown = set(data) - set(hints)
        if unknown:
            raise ValidationError(
                f"unknown field(s) {sorted(unknown)} for {cls.__name__}; allowed: {sorted(hints)}"
            )
        return cls(**{k: _decode(hints[k], v) for k, v in data.items()})


def _hints(cls: type) -> dict[str, Any]:
    cached = _HINTS.get(cls)
    if cached is None:
        all_hints = get_type_hints(cls)
        cached = {f.name: all_hints[f.name] for f in fields(cls) if f.init}
        _HINTS[cls] = cached
    return cached


_HINTS: dict[type, dict[str, Any]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


def _require_utc(owner: str, name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValidationError(f"{owner}.{name} must be timezone-aware (UTC), got naive {value}")


# --- metric values and summaries ----------------------------------------------------------------


@dataclass(slots=True)
class MetricValue(Persisted):
    """One validated observation: a finite number, a metric name, labels and a UTC time.

    NaN, infinity and non-numbers raise ValidationError and are counted in ``rejected_values()``.
    """

    name: str
    value: float
    kind: MetricType = MetricType.GAUGE
    labels: dict[str, str] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        validate_metric_name(self.name)
        problem = value_problem(self.value)
        if problem is not None:
            count_rejected(problem)
            raise ValidationError(
                f"metric {self.name!r} got value {self.value!r} ({problem}); "
                "only finite numbers are allowed"
            )
        self.value = float(self.value)
        self.kind = MetricType(self.kind)
        self.labels = dict(normalize_labels(self.labels))
        _require_utc("MetricValue", "timestamp", self.timestamp)


@dataclass(slots=True)
class PerformanceMetrics(Persisted):
    """A component's performance over a window: latency percentiles (seconds), throughput
    (operations per second), error rate (errors / operations) and resource use."""

    window_s: float = 0.0
    operation_count: int = 0
    error_count: int = 0
    latency_mean_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    latency_max_s: float | None = None
    throughput_per_s: float = 0.0
    error_rate: float = 0.0
    cpu_percent: float | None = None
    memory_bytes: float | None = None
    gpu_memory_bytes: float | None = None


@dataclass(slots=True)
class BenchmarkResult(Persisted):
    """One benchmark's raw timings (seconds per operation, one per repeat) and its summary."""

    name: str
    component_type: ComponentType
    samples_s: list[float]
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    started_at: datetime = field(default_factory=_now)
    finished_at: datetime | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        self.component_type = ComponentType(self.component_type)
        bad = [s for s in self.samples_s if value_problem(s) is not None or s < 0]
        if bad:
            raise ValidationError(
                f"benchmark {self.name!r} has invalid samples {bad[:5]}; "
                "samples must be finite seconds >= 0"
            )
        _require_utc("BenchmarkResult", "started_at", self.started_at)
        _require_utc("BenchmarkResult", "finished_at", self.finished_at)

    def summary(self) -> dict[str, float]:
        """Return count, mean, std, min, max, p50, p95 and p99 of the samples (empty if none)."""
        if not self.samples_s:
            return {}
        data = np.asarray(self.samples_s, dtype=np.float64)
        p50, p95, p99 = np.percentile(data, [50, 95, 99])
        return {
            "count": float(data.size),
            "mean": float(data.mean()),
            "std": float(data.std(ddof=1)) if data.size > 1 else 0.0,
            "min": float(data.min()),
            "max": float(data.max()),
            "p50": float(p50),
            "p95": float(p95),
            "p99": float(p99),
        }


@dataclass(slots=True)
class GPUDevice(Persisted):
    """One GPU as seen by NVML or torch.cuda (bytes; utilisation in percent when NVML gives it)."""

    index: int
    name: str
    memory_used_bytes: float
    memory_total_bytes: float | None = None
    utilization_percent: float | None = None
    temperature_c: float | None = None


@dataclass(slots=True)
class GPUStatus(Persisted):
    """Whether GPU figures are available, from which source, and the devices."""

    available: bool
    source: str | None = None
    reason: str | None = None
    devices: list[GPUDevice] = field(default_factory=list)


@dataclass(slots=True)
class SystemMetrics(Persisted):
    """A sample of the machine and of this process.

    CPU percentages follow psutil: the system figure is 0-100; the process figure is 0-100 per
    core (so up to ``100 * cpu_count``). I/O figures are cumulative bytes since boot.
    """

    timestamp: datetime
    cpu_percent: float
    cpu_count: int
    memory_percent: float
    memory_used_bytes: float
    memory_total_bytes: float
    disk_percent: float | None
    disk_read_bytes: float | None
    disk_write_bytes: float | None
    net_sent_bytes: float | None
    net_recv_bytes: float | None
    process_cpu_percent: float
    process_rss_bytes: float
    process_threads: int
    load_average_1m: float | None = None
    gpu: GPUStatus = field(default_factory=lambda: GPUStatus(available=False, reason="not sampled"))


@dataclass(slots=True)
class ComponentMetrics(Persisted):
    """A snapshot of one registered component: identity, health, heartbeat and performance."""

    component_id: str
    component_type: ComponentType
    health: HealthStatus
    performance: PerformanceMetrics
    timestamp: datetime = field(default_factory=_now)
    registered_at: datetime | None = None
    last_heartbeat: datetime | None = None
    heartbeat_age_s: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


# --- alerts -------------------------------------------------------------------------------------


@dataclass(slots=True)
class AlertRule(Persisted):
    """A condition over an aggregation window that raises an alert.

    For every series named ``metric`` whose labels include ``labels``, the points of the last
    ``window_s`` seconds are reduced with ``aggregation`` (any but ``last``); with at least
    ``min_samples`` points, the rule holds when ``value <operator> threshold``. It must hold
    for ``for_s`` seconds (pending) before the alert fires; after an alert ends, the same rule
    and series cannot fire again for ``cooldown_s`` seconds. ``component_type`` restricts the
    rule to components of that type (matched on the ``component_type`` label).
    """

    name: str
    metric: str
    operator: Operator
    threshold: float
    aggregation: Aggregation = Aggregation.MEAN
    window_s: float = 60.0
    min_samples: int = 1
    for_s: float = 0.0
    cooldown_s: float = 300.0
    severity: AlertSeverity = AlertSeverity.WARNING
    labels: dict[str, str] = field(default_factory=dict)
    component_type: ComponentType | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValidationError(f"alert rule needs a non-empty name, got {self.name!r}")
        validate_metric_name(self.metric)
        self.operator = _enum(Operator, self.operator, "operator")
        self.aggregation = _enum(Aggregation, self.aggregation, "aggregation")
        if self.aggregation is Aggregation.LAST:
            # One raw point flaps on noise; a rule must judge the whole window.
            raise ValidationError(
                f"alert rule {self.name!r}: aggregation 'last' judges a single raw sample; "
                "use a window aggregate (count, sum, min, max, mean, p50, p95, p99, rate)"
            )
        self.severity = _enum(AlertSeverity, self.severity, "severity")
        if self.component_type is not None:
            self.component_type = _enum(ComponentType, self.component_type, "component_type")
        if value_problem(self.threshold) is not None:
            raise ValidationError(
                f"alert rule {self.name!r}: threshold must be a finite number, "
                f"got {self.threshold!r}"
            )
        self.threshold = float(self.threshold)
        for attr in ("window_s", "for_s", "cooldown_s"):
            value = getattr(self, attr)
            if value_problem(value) is not None or value < 0:
                raise ValidationError(
                    f"alert rule {self.name!r}: {attr} must be a finite number >= 0, got {value!r}"
                )
        if self.window_s <= 0:
            raise ValidationError(
                f"alert rule {self.name!r}: window_s must be > 0 (rules never judge a single "
                f"raw sample), got {self.window_s!r}"
            )
        if not isinstance(self.min_samples, int) or self.min_samples < 1:
            raise ValidationError(
                f"alert rule {self.name!r}: min_samples must be an integer >= 1, "
                f"got {self.min_samples!r}"
            )
        self.labels = dict(normalize_labels(self.labels))

    def matches(self, labels: tuple[tuple[str, str], ...]) -> bool:
        """Return whether a series with ``labels`` falls under this rule."""
        present = dict(labels)
        if any(present.get(k) != v for k, v in self.labels.items()):
            return False
        return self.component_type is None or present.get("component_type") in (
            None,
            self.component_type.value,
        )


def _enum(kind: type[_E], value: object, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ValidationError(f"unknown {what} {value!r}; allowed: {allowed}") from None


_E = TypeVar("_E", bound=Enum)


@dataclass(slots=True)
class Alert(Persisted):
    """One alert instance: a rule that held for one series, with its lifecycle and handling.

    ``labels`` are the series' labels (they include ``component_id`` for component metrics).
    ``started_at`` is when the condition first held, ``fired_at`` when it fired (None if it
    cleared while pending), ``resolved_at`` when it ended. Acknowledgement and manual resolution
    record who, when and a comment.
    """

    alert_id: str
    rule_name: str
    metric: str
    severity: AlertSeverity
    state: AlertState
    value: float
    threshold: float
    operator: Operator
    aggregation: Aggregation
    labels: dict[str, str] = field(default_factory=dict)
    message: str = ""
    started_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_comment: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledgement_comment: str | None = None

    def __post_init__(self) -> None:
        self.severity = AlertSeverity(self.severity)
        self.state = AlertState(self.state)
        self.operator = Operator(self.operator)
        self.aggregation = Aggregation(self.aggregation)
        for name in ("started_at", "updated_at", "fired_at", "resolved_at", "acknowledged_at"):
            _require_utc("Alert", name, getattr(self, name))

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def active(self) -> bool:
        """Pending or firing (not yet resolved)."""
        return self.state is not AlertState.RESOLVED

    @property
    def component_id(self) -> str | None:
        return self.labels.get("component_id")


# --- configuration types ------------------------------------------------------------------------


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


class ValueStatistics(TypedDict):
    """The statistics of a window of values (see ``value_statistics``)."""

    sum: float
    min: float
    max: float
    mean: float
    p50: float
    p95: float
    p99: float


def value_statistics(values: np.ndarray) -> ValueStatistics:
    """sum, min, max, mean and p50/p95/p99 (numpy's linear interpolation) of a non-empty array.

    The one definition of a window's statistics, shared by the in-memory collector and the store.
    """
    p50, p95, p99 = np.percentile(values, [50.0, 95.0, 99.0])
    return {
        "sum": float(values.sum()),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
    }
