"""The OpenTelemetry bridge, read with the SDK's InMemoryMetricReader."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from allele.observability.clock import ManualClock
from allele.observability.collector import MetricsCollector
from allele.observability.config import ObservabilitySettings
from allele.observability.engine import ObservabilityEngine
from allele.observability.export.otel import OtelBridge
from allele.observability.export.samples import collector_samples

from .conftest import LATENCIES, T0


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    data = reader.get_metrics_data()
    found: dict[str, list] = {}
    if data is None:  # the SDK reports no data at all before the first instrument
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points: list[Any] = list(metric.data.data_points)  # numbers only here
                # Every collector series carries its writer's ``instance`` label: left out.
                found[metric.name] = [
                    ({k: v for k, v in (p.attributes or {}).items() if k != "instance"}, p.value)
                    for p in points
                ]
    return found


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def engine() -> Iterator[ObservabilityEngine]:
    """An engine that is never started: the test ticks it (no background thread)."""
    engine = ObservabilityEngine(
        ObservabilitySettings(store_uri="none"), clock=ManualClock(start=T0), notifiers=[]
    )
    yield engine
    engine.close()


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
    collector.fold()
    assert "queue_depth" not in _points(reader)
    assert bridge.sync() == ["queue_depth"]
    assert bridge.sync() == []
    assert _points(reader)["queue_depth"] == [({}, 7.0)]


def test_the_bridge_reads_a_store_too(store, reader):
    # The fixture's points are from 2023: their writer is long gone, so asked for explicitly.
    OtelBridge(store, MeterProvider(metric_readers=[reader]), include_stale=True)
    assert _points(reader)["requests_total"] == [({"route": "/chat"}, 100.0)]


def test_a_metric_created_later_is_observed_from_the_next_collection(engine, reader):
    bridge = OtelBridge(engine, MeterProvider(metric_readers=[reader]))
    engine.collector.gauge("queue_depth").set(7)
    # The collection neither deadlocks nor creates instruments from inside its callbacks ...
    assert "queue_depth" not in _points(reader)
    # ... the engine's next tick does, outside any collection.
    engine.tick()
    assert bridge.metric_names == ["queue_depth"]
    assert _points(reader)["queue_depth"] == [({}, 7.0)]
    # A new label set of a known name needs no new instrument.
    engine.collector.gauge("queue_depth", {"queue": "b"}).set(3)
    engine.tick()
    assert sorted(_points(reader)["queue_depth"], key=lambda p: p[1]) == [
        ({"queue": "b"}, 3.0),
        ({}, 7.0),
    ]
    bridge.close()
    engine.collector.gauge("after_close").set(1)
    engine.tick()
    assert "after_close" not in _points(reader)


def test_sync_called_during_a_collection_defers_instead_of_deadlocking(collector, reader):
    """A sample source that calls sync() runs inside the SDK's collection lock."""
    bridge: OtelBridge | None = None

    def samples(name: str | None = None) -> list:
        if bridge is not None and name is not None:
            assert bridge.sync() == []  # inside a callback: nothing created
        return collector_samples(collector, name)

    bridge = OtelBridge(samples, MeterProvider(metric_readers=[reader]))
    collector.gauge("queue_depth").set(7)
    collector.fold()
    found: dict[str, list] = {}
    worker = threading.Thread(target=lambda: found.update(_points(reader)), daemon=True)
    worker.start()
    worker.join(timeout=60)  # a deadlock would leave the worker blocked forever
    assert not worker.is_alive(), "the collection deadlocked"
    assert found["requests"] == [({"route": "/chat"}, 100.0)] and "queue_depth" not in found
    assert bridge.sync() == ["queue_depth"]  # outside a collection it registers
    assert _points(reader)["queue_depth"] == [({}, 7.0)]


def test_count_and_sum_are_totals_since_start_and_count_is_a_monotonic_counter(reader):
    clock = ManualClock(start=T0)
    collector = MetricsCollector(clock=clock, capacity=10)
    latency = collector.timer("latency_seconds")
    OtelBridge(collector, MeterProvider(metric_readers=[reader]))
    counts = []
    for value in range(1, 31):
        latency.observe(float(value))
        collector.fold()  # the engine's tick
        clock.advance(1.0)
        if value % 10 == 0:
            counts.append(_points(reader)["latency_seconds_count"][0][1])
    assert counts == [10, 20, 30]
    assert _points(reader)["latency_seconds_sum"][0][1] == pytest.approx(sum(range(1, 31)))
    data = reader.get_metrics_data()
    kinds = {
        m.name: m.data for r in data.resource_metrics for sc in r.scope_metrics for m in sc.metrics
    }
    assert kinds["latency_seconds_count"].is_monotonic
    assert not kinds["latency_seconds_sum"].is_monotonic
