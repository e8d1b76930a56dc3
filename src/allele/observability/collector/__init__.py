"""The metrics collector: recording on the hot path, one fold per engine tick, reads of the
state the last fold left, and the drain to the store.

* ``handles``    what instrumented code holds: counter, gauge and histogram handles
* ``fold``       where raw buffers become series state (the GIL-sensitive code)
* ``ring``       the points each series retains for reading, in time order
* ``summaries``  ``Summary`` / ``SeriesSnapshot``: a window's statistics, a series' state
* ``registry``   ``MetricsCollector``: handle creation and validation, fold, drain, reads
* ``component``  ``ComponentMetricsCollector``: one component's recorder
* ``health``     a component's performance and health, judged from what it recorded
"""

from __future__ import annotations

from allele.observability.collector.component import ComponentMetricsCollector
from allele.observability.collector.handles import CounterHandle, GaugeHandle, HistogramHandle
from allele.observability.collector.registry import (
    INSTANCE_ENV,
    INSTANCE_LABEL,
    MetricsCollector,
    default_instance,
    exposed_names,
)
from allele.observability.collector.summaries import SeriesSnapshot, Summary, summarize
from allele.observability.metric_names import (
    DROPPED_METRIC,
    ERROR_RATE_METRIC,
    ERRORS_METRIC,
    HEARTBEAT_AGE_METRIC,
    HEARTBEATS_METRIC,
    LATENCY_METRIC,
    OPERATIONS_METRIC,
    RESOURCE_METRICS,
)

__all__ = [
    "DROPPED_METRIC",
    "ERRORS_METRIC",
    "ERROR_RATE_METRIC",
    "HEARTBEATS_METRIC",
    "HEARTBEAT_AGE_METRIC",
    "INSTANCE_ENV",
    "INSTANCE_LABEL",
    "LATENCY_METRIC",
    "OPERATIONS_METRIC",
    "RESOURCE_METRICS",
    "ComponentMetricsCollector",
    "CounterHandle",
    "GaugeHandle",
    "HistogramHandle",
    "MetricsCollector",
    "SeriesSnapshot",
    "Summary",
    "default_instance",
    "exposed_names",
    "summarize",
]
