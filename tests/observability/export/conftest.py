"""Fixtures for the export tests: a live collector on a manual clock and a filled SQLite store."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from allele.observability.clock import ManualClock
from allele.observability.collector import MetricsCollector
from allele.observability.store import Store, open_store
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

T0 = 1_700_000_000.0
LATENCIES = np.linspace(0.01, 1.0, 100)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
def collector(clock) -> MetricsCollector:
    """Requests (counter), memory (gauge) and latency (timer) recorded over 100 s."""
    collector = MetricsCollector(clock=clock)
    requests = collector.counter("requests", {"route": "/chat"})
    memory = collector.gauge("memory_bytes", {"component_id": 'kraken "1"\\x'})
    latency = collector.timer("latency_seconds", {"route": "/chat"})
    for value in LATENCIES:
        requests.inc()
        latency.observe(float(value))
        memory.set(1000.0 + float(value))
        collector.fold()
        clock.advance(1.0)
    return collector


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    """A store holding a counter (cumulative), a gauge and a timer over 100 s."""
    store = open_store(f"sqlite:///{tmp_path / 'export.db'}")
    ts = T0 + np.arange(100, dtype=float)
    store.write_batches(
        [
            SeriesBatch(
                SeriesKey("requests_total", (("route", "/chat"),), MetricType.COUNTER),
                ts,
                np.arange(1, 101, dtype=float),
            ),
            SeriesBatch(
                SeriesKey("memory_bytes", (("host", "a\nb"),), MetricType.GAUGE),
                ts,
                1000.0 + np.arange(100, dtype=float),
            ),
            SeriesBatch(
                SeriesKey("latency_seconds", (("route", "/chat"),), MetricType.TIMER),
                ts,
                LATENCIES,
            ),
        ]
    )
    store.save_alerts(
        [
            {
                "alert_id": "a1",
                "rule_name": "slow",
                "state": "firing",
                "severity": "warning",
                "labels": {"route": "/chat"},
                "value": 0.9,
            },
            {"alert_id": "a2", "rule_name": "errors", "state": "resolved", "value": 0.3},
        ]
    )
    yield store
    store.close()
