"""The flusher with the real MetricsCollector, AlertManager and component collectors."""

from __future__ import annotations

import numpy as np

from allele.observability.alerts import AlertManager
from allele.observability.clock import ManualClock
from allele.observability.collector import ComponentMetricsCollector, MetricsCollector
from allele.observability.store import open_store
from allele.observability.store.flusher import Flusher
from allele.observability.types import (
    AlertRule,
    AlertState,
    ComponentType,
    MetricType,
)


def test_points_alerts_and_components_from_the_real_collector_reach_the_store(sqlite_uri):
    clock = ManualClock(start=1_700_000_000.0)
    collector = MetricsCollector(clock=clock)
    manager = AlertManager(collector, notifiers=[])
    manager.add_rule(
        AlertRule(
            name="slow",
            metric="request_seconds",
            operator="gt",
            threshold=0.5,
            aggregation="p95",
            window_s=60,
        )
    )
    component = ComponentMetricsCollector(collector, "kraken-1", ComponentType.KRAKEN_LNN)
    store = open_store(sqlite_uri)
    flusher = Flusher(
        store,
        collector,
        alert_manager=manager,
        components=lambda: [component.get_metrics()],
        install_signal_handlers=False,
    )

    latency = collector.histogram("request_seconds", {"route": "/chat"})
    requests = collector.counter("requests_total", {"route": "/chat"})
    for value in (0.1, 0.2, 0.9):
        latency.observe(value)
        requests.inc()
    clock.advance(1.0)
    component.heartbeat()
    collector.fold()  # the engine's tick
    manager.evaluate()
    flusher.flush()
    requests.inc(2)
    clock.advance(1.0)
    flusher.flush()

    stored = store.query_series("request_seconds", {"route": "/chat"})
    np.testing.assert_allclose(stored.values, [0.1, 0.2, 0.9])
    # Counters are drained as cumulative totals: one point per fold that changed them.
    assert store.query_series("requests_total").values.tolist() == [3.0, 5.0]
    kinds = {k.name: k.kind for k in store.list_series()}
    assert kinds["request_seconds"] is MetricType.HISTOGRAM
    assert kinds["requests_total"] is MetricType.COUNTER

    (saved,) = store.load_alerts()
    alert = saved.to_alert()
    assert (alert.rule_name, alert.state) == ("slow", AlertState.FIRING)
    assert alert == manager.get(alert.alert_id)

    (snapshot,) = store.load_components()
    restored = snapshot.to_metrics()
    assert restored.component_id == "kraken-1"
    assert restored.component_type is ComponentType.KRAKEN_LNN


def test_a_flusher_drains_every_point_of_concurrent_writers_exactly_once(sqlite_uri):
    import threading

    collector = MetricsCollector(capacity=16)  # far fewer than recorded: the queue matters
    store = open_store(sqlite_uri)
    flusher = Flusher(store, collector, install_signal_handlers=False)
    assert collector.draining  # attached when created
    hist = collector.histogram("events")
    per_thread, threads = 20_000, 3

    def writer(offset: int) -> None:
        for i in range(per_thread):
            hist.observe(offset + i)

    pool = [threading.Thread(target=writer, args=(t * per_thread,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    while any(thread.is_alive() for thread in pool):
        flusher.flush()
    for thread in pool:
        thread.join()
    stats = flusher.stop()
    stored = store.query_series("events").values
    assert stats.points_written == stored.size == per_thread * threads
    np.testing.assert_array_equal(np.sort(stored), np.arange(per_thread * threads, dtype=float))
    assert collector.pending_points() == 0
    store.close()
