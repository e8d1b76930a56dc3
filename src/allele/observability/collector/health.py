"""A component's performance over a window, and its health judged from it and its heartbeat."""

from __future__ import annotations

from collections.abc import Mapping

from allele.observability.collector.registry import MetricsCollector
from allele.observability.collector.summaries import Summary
from allele.observability.metric_names import LATENCY_METRIC, OPERATIONS_METRIC, RESOURCE_METRICS
from allele.observability.types import HealthStatus, PerformanceMetrics


def performance(
    collector: MetricsCollector, labels: Mapping[str, str], window_s: float, age_s: float
) -> PerformanceMetrics:
    """Latency percentiles, throughput, error rate and resources of the component whose series
    carry ``labels``, over the last ``window_s`` seconds (as the last fold left them);
    ``age_s`` is how long the component has been registered (a young component's throughput
    is taken over at least one second)."""
    ok = _increase(collector, OPERATIONS_METRIC, {**labels, "outcome": "success"}, window_s)
    bad = _increase(collector, OPERATIONS_METRIC, {**labels, "outcome": "error"}, window_s)
    total = ok + bad
    pooled = collector.query(LATENCY_METRIC, labels, window_s, pool=True)
    latency = pooled[0][1] if pooled else Summary(count=0, window_s=window_s)
    effective = min(window_s, max(age_s, 1.0))
    resources = {}
    for field_name, metric in RESOURCE_METRICS.items():
        found = collector.query(metric, labels, window_s)
        resources[field_name] = found[0][1].last if found else None
    return PerformanceMetrics(
        window_s=window_s,
        operation_count=round(total),
        error_count=round(bad),
        latency_mean_s=latency.mean,
        latency_p50_s=latency.p50,
        latency_p95_s=latency.p95,
        latency_p99_s=latency.p99,
        latency_max_s=latency.max,
        throughput_per_s=total / effective,
        error_rate=bad / total if total else 0.0,
        cpu_percent=resources["cpu_percent"],
        memory_bytes=resources["memory_bytes"],
        gpu_memory_bytes=resources["gpu_memory_bytes"],
    )


def judge_health(
    perf: PerformanceMetrics,
    heartbeat_age_s: float | None,
    *,
    heartbeat_timeout_s: float,
    degraded_error_rate: float,
    unhealthy_error_rate: float,
) -> HealthStatus:
    """Unknown with no heartbeat and no operations; unhealthy when the heartbeat is older than
    3x ``heartbeat_timeout_s`` or the error rate reaches ``unhealthy_error_rate``; degraded past
    1x the timeout or ``degraded_error_rate``. ``heartbeat_age_s`` is None when no heartbeat is
    expected (none yet, or the component said it is idle)."""
    age = heartbeat_age_s
    if age is None and perf.operation_count == 0:
        return HealthStatus.UNKNOWN
    status = HealthStatus.HEALTHY
    if age is not None and age > 3 * heartbeat_timeout_s:
        return HealthStatus.UNHEALTHY
    if age is not None and age > heartbeat_timeout_s:
        status = HealthStatus.DEGRADED
    if perf.operation_count:
        if perf.error_rate >= unhealthy_error_rate:
            return HealthStatus.UNHEALTHY
        if perf.error_rate >= degraded_error_rate:
            status = HealthStatus.DEGRADED
    return status


def _increase(
    collector: MetricsCollector, name: str, match: Mapping[str, str], window_s: float
) -> float:
    found = collector.query(name, match, window_s, pool=True)
    return found[0][1].increase if found else 0.0
