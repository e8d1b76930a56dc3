"""A single validated metric value and a benchmark's raw timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.types.components import ComponentType
from allele.observability.types.persisted import Persisted, _now, _require_utc
from allele.observability.types.series import (
    MetricType,
    normalize_labels,
    validate_metric_name,
    value_problem,
)


@dataclass(slots=True)
class MetricValue(Persisted):
    """One validated observation: a finite number, a metric name, labels and a UTC time.

    NaN, infinity and non-numbers raise ValidationError naming the value.
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
            raise ValidationError(
                f"metric {self.name!r} got value {self.value!r} ({problem}); "
                "only finite numbers are allowed"
            )
        self.value = float(self.value)
        self.kind = MetricType(self.kind)
        self.labels = dict(normalize_labels(self.labels))
        _require_utc("MetricValue", "timestamp", self.timestamp)


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
