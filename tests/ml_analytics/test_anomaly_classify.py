"""Type classification: at least 90% right on synthetic series of each of the eight types."""

from __future__ import annotations

import numpy as np

from allele.observability.ml_analytics.anomaly.classify import (
    anomaly_shape,
    classify_anomaly,
    metric_meaning,
)
from allele.observability.ml_analytics.types import AnomalyType

N = 120  # rows per synthetic series; the anomaly ends at the last row


def _noise(rng: np.random.Generator, level: float, sd: float) -> np.ndarray:
    return level + rng.normal(0, sd, N)


def _spike(rng: np.random.Generator, level: float, sd: float, size: float) -> np.ndarray:
    x = _noise(rng, level, sd)
    x[-1] += size * sd
    return x


def _shift(rng: np.random.Generator, level: float, sd: float, size: float) -> np.ndarray:
    x = _noise(rng, level, sd)
    x[-10:] += size * sd
    return x


def _trend(rng: np.random.Generator, level: float, sd: float, slope: float) -> np.ndarray:
    x = _noise(rng, level, sd)
    x[-50:] += slope * sd * np.arange(1, 51)
    return x


def _odd(rng: np.random.Generator, level: float, sd: float) -> np.ndarray:
    # A metric of no known meaning oscillating wildly: nothing but an unusual pattern.
    x = _noise(rng, level, sd)
    x[-6:] += np.array([8, -8, 8, -8, 8, 9]) * sd
    return x


# (metric name, generator, expected type) for each type, with a few spellings of each meaning.
CASES = [
    ("process_memory_mb", lambda r: _trend(r, 500, 5, 0.6), AnomalyType.MEMORY_LEAK),
    ("heap_bytes_used", lambda r: _trend(r, 2e8, 1e6, 0.5), AnomalyType.MEMORY_LEAK),
    ("memory_percent", lambda r: _spike(r, 40, 1, 12), AnomalyType.RESOURCE_SPIKE),
    ("disk_io_bytes", lambda r: _spike(r, 1e5, 1e3, 15), AnomalyType.RESOURCE_SPIKE),
    ("cpu_percent", lambda r: _spike(r, 30, 2, 10), AnomalyType.CPU_OVERLOAD),
    ("processing_time_cpu", lambda r: _shift(r, 50, 2, 8), AnomalyType.CPU_OVERLOAD),
    ("latency_ms", lambda r: _spike(r, 120, 5, 12), AnomalyType.LATENCY_SPIKE),
    ("response_time_p95", lambda r: _shift(r, 0.3, 0.01, 10), AnomalyType.LATENCY_SPIKE),
    ("error_rate", lambda r: _spike(r, 0.01, 0.002, 15), AnomalyType.ERROR_RATE_SPIKE),
    ("failures_total", lambda r: _shift(r, 3, 0.5, 10), AnomalyType.ERROR_RATE_SPIKE),
    ("throughput_rps", lambda r: _shift(r, 900, 20, -10), AnomalyType.THROUGHPUT_DROP),
    ("tokens_per_second", lambda r: _spike(r, 60, 2, -12), AnomalyType.THROUGHPUT_DROP),
    ("fitness_score", lambda r: _shift(r, 0.8, 0.01, -10), AnomalyType.PERFORMANCE_DEGRADATION),
    ("accuracy", lambda r: _trend(r, 0.9, 0.005, -0.5), AnomalyType.PERFORMANCE_DEGRADATION),
    ("latency_ms", lambda r: _trend(r, 100, 2, 0.4), AnomalyType.PERFORMANCE_DEGRADATION),
    ("queue_depth", lambda r: _odd(r, 10, 1), AnomalyType.UNUSUAL_PATTERN),
    ("temperature", lambda r: _spike(r, 20, 0.5, 10), AnomalyType.UNUSUAL_PATTERN),
]


def test_every_type_is_at_least_90_percent_right() -> None:
    rng = np.random.default_rng(12)
    right: dict[AnomalyType, list[bool]] = {t: [] for t in AnomalyType}
    for _ in range(40):
        for name, make, want in CASES:
            right[want].append(classify_anomaly(name, make(rng).tolist()) == want)
    rates = {t.value: float(np.mean(v)) for t, v in right.items()}
    assert all(rate >= 0.9 for rate in rates.values()), rates
    assert len(rates) == 8


def test_meaning_from_the_name() -> None:
    assert metric_meaning("process_memory_mb") == "memory"
    assert metric_meaning("llm_latency_ms") == "latency"
    assert metric_meaning("error_count") == "error"  # errors before counts
    assert metric_meaning("requests_per_s") == "throughput"
    assert metric_meaning("temperature") == "other"


def test_shape_tells_spike_from_shift_from_trend() -> None:
    rng = np.random.default_rng(1)
    spike = anomaly_shape(_spike(rng, 10, 1, 10).tolist())
    shift = anomaly_shape(_shift(rng, 10, 1, 10).tolist())
    trend = anomaly_shape(_trend(rng, 10, 1, 0.6).tolist())
    assert spike.spike and not spike.shift and spike.direction == 1
    assert shift.shift and not shift.spike
    assert trend.trend and trend.direction == 1
    down = anomaly_shape(_shift(rng, 10, 1, -10).tolist())
    assert down.direction == -1
