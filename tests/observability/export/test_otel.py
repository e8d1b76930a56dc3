"""The OpenTelemetry bridge, read with the SDK's InMemoryMetricReader."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from allele.observability.export.otel import OtelBridge

from .conftest import LATENCIES


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    data = reader.get_metrics_data()
    found: dict[str, list] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    (dict(p.attributes), p.value) for p in metric.data.data_points
                ]
    return found


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def test_collector_values_reach_otel_instruments(collector, reader):
    bridge = OtelBridge(collector, MeterProvider(metric_readers=[reader]), window_s=10)
    assert bridge.metric_names == ["latency_seconds", "memory_bytes", "requests"]
    points = _points(reader)
    assert points["requests"] == [({"route": "/chat"}, 100.0)]
    ((attributes, memory),) = points["memory_bytes"]
    assert memory == pytest.approx(1000.0 + LATENCIES[-1])
    assert attributes == {"component_id": 'kraken "1"\\x'}
    assert points["latency_seconds_count"] == [({"route": "/chat"}, 100)]
    assert points["latency_seconds_sum"][0][1] == pytest.approx(LATENCIES.sum())
    quantiles = {a["quantile"]: v for a, v in points["latency_seconds"]}
    assert quantiles["0.95"] == pytest.approx(np.quantile(LATENCIES[90:], 0.95))


def test_sync_gives_a_metric_created_later_its_instruments(collector, reader):
    bridge = OtelBridge(collector, MeterProvider(metric_readers=[reader]))
    collector.gauge("queue_depth").set(7)
    assert "queue_depth" not in _points(reader)
    assert bridge.sync() == ["queue_depth"]
    assert bridge.sync() == []
    assert _points(reader)["queue_depth"] == [({}, 7.0)]


def test_the_bridge_reads_a_store_too(store, reader):
    OtelBridge(store, MeterProvider(metric_readers=[reader]))
    assert _points(reader)["requests_total"] == [({"route": "/chat"}, 100.0)]
