"""Recording and reading metrics: exact aggregates, threads, drain, drops, components."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.clock import ManualClock
from allele.observability.collector import (
    DROPPED_METRIC,
    ComponentMetricsCollector,
    MetricsCollector,
)
from allele.observability.types import ComponentType, HealthStatus, MetricType


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def collector(clock: ManualClock) -> MetricsCollector:
    return MetricsCollector(clock=clock, instance="test-1")


ME = (("instance", "test-1"),)  # every series carries the writer's identity


def test_percentiles_are_exact_against_numpy(collector: MetricsCollector) -> None:
    data = np.random.default_rng(7).lognormal(mean=-3, sigma=1.2, size=5000)
    handle = collector.histogram("latency_seconds", {"op": "chat"})
    for value in data:
        handle.observe(float(value))
    collector.fold()
    summary = collector.summary("latency_seconds", {"op": "chat"}, window_s=60)
    assert summary.count == 5000
    assert summary.p50 == pytest.approx(np.percentile(data, 50), rel=1e-12)
    assert summary.p95 == pytest.approx(np.percentile(data, 95), rel=1e-12)
    assert summary.p99 == pytest.approx(np.percentile(data, 99), rel=1e-12)
    assert summary.mean == pytest.approx(data.mean(), rel=1e-12)
    assert summary.sum == pytest.approx(data.sum(), rel=1e-12)
    assert (summary.min, summary.max) == (data.min(), data.max())


def test_handles_are_created_once_and_shared(collector: MetricsCollector) -> None:
    a = collector.counter("jobs_total", {"queue": "x"})
    assert collector.counter("jobs_total", {"queue": "x"}) is a
    assert collector.counter("jobs_total", {"queue": "y"}) is not a


def test_name_kind_and_label_errors_at_handle_creation(collector: MetricsCollector) -> None:
    with pytest.raises(ValidationError, match="invalid metric name 'bad-name'"):
        collector.counter("bad-name")
    with pytest.raises(ValidationError, match="invalid label name"):
        collector.gauge("ok", {"bad label": "x"})
    collector.counter("requests_total")
    with pytest.raises(ValidationError, match="already a counter; cannot also be a gauge"):
        collector.gauge("requests_total")
    with pytest.raises(ValidationError, match="no metric named 'never_recorded'"):
        collector.fold()
        collector.summary("never_recorded")


def test_series_cardinality_is_bounded_without_raising_into_the_workload(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    collector = MetricsCollector(clock=clock, max_series=3, instance="test-1")
    for i in range(3):
        collector.counter("c_total", {"id": i}).inc()
    with caplog.at_level(logging.WARNING, logger="allele.observability.collector"):
        over = collector.counter("c_total", {"id": 99})  # dropped, not raised
        over.inc()
        collector.histogram("h", {"id": 100}).observe(float("nan"))  # a bad value at the cap
        collector.fold()
        collector.fold()  # later folds keep working
    assert collector.dropped() == {"series_limit": 2}  # a refused series keeps no values
    assert len(collector.series_keys("c_total")) == 3
    assert "cap of 3 series" in caplog.text and caplog.text.count("cap of 3 series") == 1
    # The drop counter itself is exempt from the cap, and a bad value still counts.
    collector.gauge("c_gauge_at_cap").set(float("nan"))
    collector.fold()
    assert collector.dropped()["series_limit"] == 3
    [(_, drops)] = collector.query(DROPPED_METRIC, {"reason": "series_limit"})
    assert drops.last == 3.0


def test_a_component_timer_at_the_series_cap_never_raises_into_the_workload(
    clock: ManualClock,
) -> None:
    collector = MetricsCollector(clock=clock, max_series=2, instance="test-1")
    component = ComponentMetricsCollector(collector, "evo", ComponentType.EVOLUTION_ENGINE)
    collector.counter("filler_total")  # the heartbeat counter and this fill the cap
    with pytest.raises(KeyError, match="the workload's own"), component.timer("new_op"):
        raise KeyError("the workload's own")  # propagates unchanged, not replaced
    with component.timer("other_op"):
        pass
    collector.fold()
    assert collector.dropped()["series_limit"] >= 3  # latency, outcome and error series
    assert component.recording_errors == 0


def test_bad_values_are_dropped_and_counted_never_raised(collector: MetricsCollector) -> None:
    hist = collector.histogram("h")
    counter = collector.counter("c_total")
    for value in (1.0, float("nan"), float("inf"), "3", None, 2, np.float32(4.0)):
        hist.observe(value)  # type: ignore[arg-type]
    counter.inc()
    counter.inc(-5)
    counter.inc(float("nan"))
    counter.inc(2.5)
    collector.fold()
    summary = collector.summary("h", window_s=60)
    assert summary.count == 3 and summary.sum == 7.0
    assert collector.summary("c_total", window_s=60).last == 3.5
    assert collector.dropped() == {
        "nan": 2,
        "inf": 1,
        "not_a_number": 2,
        "negative_increment": 1,
    }
    drops = {dict(k.labels)["reason"]: s.last for k, s in collector.query(DROPPED_METRIC)}
    assert drops == {"nan": 2.0, "inf": 1.0, "not_a_number": 2.0, "negative_increment": 1.0}


def test_strict_mode_raises_at_the_call_site(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, strict=True)
    hist = collector.histogram("h")
    with pytest.raises(ValidationError, match="got nan"):
        hist.observe(float("nan"))
    with pytest.raises(ValidationError, match="counter increments must be finite numbers >= 0"):
        collector.counter("c_total").inc(-1)
    with pytest.raises(ValidationError, match="not_a_number"):
        collector.gauge("g").set("high")  # type: ignore[arg-type]
    hist.observe(0.5)
    collector.fold()
    assert collector.summary("h").count == 1


def test_threads_record_an_exact_total(collector: MetricsCollector) -> None:
    threads, per_thread = 8, 20_000
    collector.enable_drain()  # a consumer is attached: every observation is queued
    counter = collector.counter("work_total")
    hist = collector.histogram("work_seconds")
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            counter.inc()
            hist.observe(1.0)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    collector.fold()
    assert collector.summary("work_total").last == threads * per_thread
    observed = [b.values for b in collector.drain() if b.key.name == "work_seconds"]
    assert np.concatenate(observed).size == threads * per_thread


def test_drain_returns_every_point_exactly_once_under_concurrent_writes() -> None:
    collector = MetricsCollector(capacity=64)
    collector.enable_drain()  # the consumer attaches before the writer starts
    hist = collector.histogram("events")
    total = 200_000
    done = threading.Event()
    drained: list[np.ndarray] = []

    def writer() -> None:
        for i in range(total):
            hist.observe(i)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        drained.extend(b.values for b in collector.drain())
    thread.join()
    drained.extend(b.values for b in collector.drain())
    values = np.concatenate(drained)
    assert values.size == total
    assert np.array_equal(np.sort(values), np.arange(total, dtype=float))
    assert collector.drain() == []


def test_without_a_consumer_nothing_is_queued_and_memory_stays_bounded(
    clock: ManualClock,
) -> None:
    collector = MetricsCollector(clock=clock, capacity=100, max_pending=1000)
    hist = collector.histogram("h")
    for fold in range(50):  # 50 folds of 1000 points: 50x max_pending, nobody drains
        for i in range(1000):
            hist.observe(fold * 1000 + i)
        clock.advance(1.0)
        collector.fold()
    assert not collector.draining
    assert collector.pending_points() == 0
    assert "drain_backlog" not in collector.dropped()  # nothing queued, so nothing trimmed
    assert collector.summary("h", window_s=1e6).count == 100  # the ring: capacity points
    # A consumer attaching late gets what the ring retains, then everything new, once.
    (first,) = collector.drain()
    assert first.values.tolist() == list(range(49_900, 50_000))
    hist.observe(-1.0)
    (second,) = collector.drain()
    assert second.values.tolist() == [-1.0]
    assert collector.draining and collector.drain() == []


def test_enable_drain_is_idempotent_and_queues_from_then_on(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, capacity=4)
    gauge = collector.gauge("g")
    for value in range(10):
        gauge.set(value)
    collector.fold()  # retained: the newest 4
    collector.enable_drain()
    assert collector.pending_points() == 4  # the retained history
    gauge.set(10.0)
    collector.enable_drain()  # attaching again neither re-queues nor drops anything
    collector.fold()
    assert collector.pending_points() == 5
    (batch,) = collector.drain()
    assert batch.values.tolist() == [6.0, 7.0, 8.0, 9.0, 10.0]
    collector.fold()
    assert collector.pending_points() == 0


def test_drain_batches_carry_keys_and_cumulative_counters(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    counter = collector.counter("req_total", {"route": "a"})
    counter.inc()
    counter.inc(2)
    first = {b.key.name: b for b in collector.drain()}
    assert first["req_total"].values.tolist() == [3.0]
    assert first["req_total"].timestamps.tolist() == [clock.time()]
    assert first["req_total"].key.kind is MetricType.COUNTER
    assert first["req_total"].key.labels == (*ME, ("route", "a"))
    clock.advance(5)
    counter.inc()
    second = {b.key.name: b for b in collector.drain()}
    assert second["req_total"].values.tolist() == [4.0]
    assert second["req_total"].timestamps.tolist() == [clock.time()]


def test_windows_select_points_by_fold_time(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    hist = collector.histogram("h")
    hist.observe(100.0)
    collector.fold()
    clock.advance(120)
    hist.observe(1.0)
    hist.observe(3.0)
    collector.fold()
    last_minute = collector.summary("h", window_s=60)
    assert (last_minute.count, last_minute.mean, last_minute.max) == (2, 2.0, 3.0)
    assert collector.summary("h", window_s=300).count == 3
    assert collector.summary("h", window_s=60).rate == pytest.approx(2 / 60)


def test_counter_increase_and_rate_over_a_window(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    counter = collector.counter("ops_total")
    counter.inc(10)
    collector.fold()
    clock.advance(100)
    counter.inc(6)
    collector.fold()
    summary = collector.summary("ops_total", window_s=60)
    assert summary.increase == 6.0 and summary.last == 16.0
    assert summary.rate == pytest.approx(0.1)
    assert collector.summary("ops_total", window_s=1000).increase == 16.0


def test_ring_capacity_bounds_memory_and_marks_truncation(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, capacity=100)
    hist = collector.histogram("h")
    for i in range(250):
        hist.observe(float(i))
    collector.fold()
    summary = collector.summary("h", window_s=60)
    assert summary.count == 100 and summary.min == 150.0 and summary.truncated
    _, values = collector.points("h")
    assert values.tolist() == [float(i) for i in range(150, 250)]
    for i in range(30):  # wrap around the ring
        hist.observe(1000.0 + i)
    collector.fold()
    assert collector.points("h")[1][-1] == 1029.0
    assert collector.points("h")[1][0] == 180.0


def test_retention_cleanup_forgets_old_points(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, retention_s=60)
    gauge = collector.gauge("g")
    gauge.set(1)
    collector.fold()
    clock.advance(61)
    gauge.set(2)
    assert collector.cleanup() == 1
    collector.fold()
    assert collector.points("g")[1].tolist() == [2.0]


def test_snapshot_totals_cover_everything_ever_recorded(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, capacity=10, retention_s=60)
    hist = collector.histogram("h", {"op": "a"})
    requests = collector.counter("requests_total")
    gauge = collector.gauge("g")
    seen = []
    for i in range(25):
        hist.observe(float(i))
        requests.inc(2)
        gauge.set(float(i))
        collector.fold()
        clock.advance(1.0)
        collector.fold()
        seen.append(collector.snapshot("h", window_s=5)[0].count)
    assert seen == list(range(1, 26))  # the ring holds 10, the totals keep counting
    by_name = {s.key.name: s for s in collector.snapshot(window_s=5)}
    assert list(by_name) == ["g", "h", "requests_total"]  # sorted by name
    h = by_name["h"]
    assert (h.count, h.sum, h.last) == (25, float(sum(range(25))), 24.0)
    # The window: points folded at the last 5 ticks (now is 25 s after the first).
    assert h.window.count == 5 and h.window.p50 == pytest.approx(
        np.percentile([20, 21, 22, 23, 24], 50)
    )
    assert (by_name["requests_total"].sum, by_name["requests_total"].last) == (50.0, 50.0)
    assert by_name["requests_total"].count == 25
    # Retention forgets every point; the totals and a gauge's last value stay.
    clock.advance(1000)
    collector.cleanup()
    collector.fold()
    assert collector.points("h", {"op": "a"})[1].size == 0
    by_name = {s.key.name: s for s in collector.snapshot()}
    assert (by_name["h"].count, by_name["h"].window.count) == (25, 0)
    assert by_name["g"].last == 24.0
    assert collector.metric_names() == {
        "g": MetricType.GAUGE,
        "h": MetricType.HISTOGRAM,
        "requests_total": MetricType.COUNTER,
    }


def test_snapshot_counts_drops_of_the_same_fold(collector: MetricsCollector) -> None:
    collector.gauge("g").set(float("nan"))
    collector.fold()
    [drops] = collector.snapshot(DROPPED_METRIC)
    assert (drops.key.labels, drops.sum) == ((*ME, ("reason", "nan")), 1.0)
    assert collector.snapshot("g")[0].count == 0 and collector.snapshot("g")[0].last is None
    with pytest.raises(ValidationError, match="window_s=0"):
        collector.snapshot(window_s=0)


def test_gauge_last_and_query_pooling(collector: MetricsCollector) -> None:
    collector.gauge("temp", {"room": "a"}).set(20)
    collector.gauge("temp", {"room": "a"}).set(21)
    collector.gauge("temp", {"room": "b"}).set(30)
    collector.fold()
    per_room = {dict(k.labels)["room"]: s.last for k, s in collector.query("temp")}
    assert per_room == {"a": 21.0, "b": 30.0}
    [(key, pooled)] = collector.query("temp", pool=True)
    assert pooled.count == 3 and pooled.max == 30.0 and key.labels == ()
    assert collector.query("unknown_metric") == []


def test_timer_context_manager_and_decorators(collector: MetricsCollector) -> None:
    timer = collector.timer("step_seconds")
    with timer.time():
        pass

    @timer.time()
    def step(x: int) -> int:
        return x * 2

    @timer.time()
    async def astep() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert step(4) == 8
    assert asyncio.run(astep()) == "ok"
    collector.fold()
    summary = collector.summary("step_seconds")
    assert summary.count == 3 and summary.min is not None and summary.min >= 0


async def test_recording_from_many_coroutines(collector: MetricsCollector) -> None:
    counter = collector.counter("async_total")

    async def task() -> None:
        for _ in range(1000):
            counter.inc()
            await asyncio.sleep(0) if _ % 100 == 0 else None

    await asyncio.gather(*(task() for _ in range(20)))
    collector.fold()
    assert collector.summary("async_total").last == 20_000


# --- components -----------------------------------------------------------------------------------


def test_component_timer_records_latency_success_and_errors(
    collector: MetricsCollector,
) -> None:
    component = ComponentMetricsCollector(collector, "agent-1", ComponentType.NLP_AGENT)
    for _ in range(3):
        with component.timer("chat"):
            pass
    with pytest.raises(TimeoutError), component.timer("chat"):
        raise TimeoutError

    @component.timer("plan")
    def plan() -> int:
        return 1

    assert plan() == 1
    component.collector.fold()
    perf = component.performance(window_s=60)
    assert perf.operation_count == 5 and perf.error_count == 1
    assert perf.error_rate == pytest.approx(0.2)
    assert perf.latency_p95_s is not None and perf.latency_p95_s >= 0
    errors = collector.query("allele_component_errors_total", {"component_id": "agent-1"})
    assert [(dict(k.labels)["error_type"], s.last) for k, s in errors] == [("TimeoutError", 1.0)]


def test_component_latency_percentiles_and_resources(collector: MetricsCollector) -> None:
    component = ComponentMetricsCollector(collector, "k", ComponentType.KRAKEN_LNN)
    latencies = np.linspace(0.01, 1.0, 100)
    for value in latencies:
        component.record_latency(float(value), "process")
        component.record_success("process")
    component.record_resource_usage(cpu_percent=55.0, memory_bytes=1e6, reservoir_size=100)
    component.record_custom_metric("kraken_spectral_radius", 0.9)
    component.collector.fold()
    perf = component.performance(window_s=60)
    assert perf.latency_p99_s == pytest.approx(np.percentile(latencies, 99))
    assert (perf.cpu_percent, perf.memory_bytes) == (55.0, 1e6)
    assert collector.summary("allele_component_reservoir_size", component.labels).last == 100
    spectral = collector.summary("kraken_spectral_radius", component.labels)
    assert spectral.last == 0.9


def test_health_follows_heartbeat_age_and_error_rate(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    component = ComponentMetricsCollector(
        collector,
        "evo",
        ComponentType.EVOLUTION_ENGINE,
        heartbeat_timeout_s=30,
        health_window_s=60,
    )
    component.collector.fold()
    assert component.health() is HealthStatus.UNKNOWN
    component.heartbeat()
    component.collector.fold()
    assert component.health() is HealthStatus.HEALTHY
    clock.advance(31)
    component.collector.fold()
    assert component.health() is HealthStatus.DEGRADED
    clock.advance(60)
    component.collector.fold()
    assert component.health() is HealthStatus.UNHEALTHY
    component.heartbeat()
    for _ in range(19):
        component.record_success()
    component.record_error()
    component.collector.fold()
    assert component.health() is HealthStatus.DEGRADED  # 5% errors
    for _ in range(10):
        component.record_error()
    component.collector.fold()
    assert component.health() is HealthStatus.UNHEALTHY  # 11 / 30
    clock.advance(61)  # the errors leave the window
    component.heartbeat()
    component.collector.fold()
    assert component.health() is HealthStatus.HEALTHY


def test_component_snapshot_is_json_ready(collector: MetricsCollector) -> None:
    component = ComponentMetricsCollector(
        collector, "g", ComponentType.GENOME, metadata={"traits": 8}
    )
    component.heartbeat()
    component.collector.fold()
    snapshot = component.publish_health()
    data = snapshot.to_dict()
    assert data["component_type"] == "genome" and data["health"] == "healthy"
    assert data["metadata"] == {"traits": 8}
    collector.fold()
    assert collector.summary("allele_component_error_rate", component.labels).last == 0.0
    with pytest.raises(ValidationError, match="component_id"):
        ComponentMetricsCollector(collector, "", ComponentType.GENOME)


def test_bulk_recording_equals_one_call_per_value(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock)
    collector.gauge("g").set_many([1.0, 2.0, 3.0])
    collector.histogram("h").observe_many(v * 0.5 for v in range(4))
    collector.fold()
    assert collector.points("g")[1].tolist() == [1.0, 2.0, 3.0]
    assert collector.summary("h").sum == 3.0
    strict = MetricsCollector(clock=clock, strict=True)
    with pytest.raises(ValidationError, match="nan"):
        strict.gauge("g").set_many([1.0, float("nan")])
    strict.fold()
    assert strict.points("g")[1].size == 0  # a batch with a bad value is refused whole


def test_gauge_points_carry_the_time_they_were_set(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    gauge = collector.gauge("temperature")
    start = clock.time()
    gauge.set(1.0)
    clock.advance(0.25)
    gauge.set(2.0)
    clock.advance(0.5)
    gauge.set(3.0)
    clock.advance(10)  # folded well after: the points keep their own times
    collector.fold()
    ts, values = collector.points("temperature")
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert ts.tolist() == [start, start + 0.25, start + 0.75]
    (batch,) = [b for b in collector.drain() if b.key.name == "temperature"]
    assert batch.timestamps.tolist() == [start, start + 0.25, start + 0.75]


def test_gauge_timestamps_are_real_wall_time_with_the_system_clock() -> None:
    collector = MetricsCollector()
    gauge = collector.gauge("g")
    before = time.time()
    gauge.set(1.0)
    time.sleep(0.002)
    gauge.set(2.0)
    after = time.time()
    collector.fold()
    ts, _ = collector.points("g")
    assert before - 1e-3 <= ts[0] < ts[1] <= after + 1e-3


def test_counter_and_histogram_points_carry_the_fold_time(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    hist, counter = collector.histogram("h"), collector.counter("c_total")
    hist.observe(1.0)
    counter.inc()
    clock.advance(3)
    hist.observe(2.0)
    counter.inc()
    collector.fold()
    folded_at = clock.time()
    collector.fold()
    ts, values = collector.points("h")
    assert values.tolist() == [1.0, 2.0] and ts.tolist() == [folded_at, folded_at]
    assert collector.points("c_total")[0].tolist() == [folded_at]


def test_bulk_recording_at_explicit_timestamps(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    t0 = clock.time() - 100
    collector.gauge("g").set_many([1.0, 2.0, 3.0], [t0 + 2, t0 + 1, t0 + 3])
    collector.histogram("h").observe_many([0.5, 0.25], np.array([t0, t0 + 5]))
    collector.histogram("h").observe(9.0)  # no timestamp: the fold's
    collector.fold()
    ts, values = collector.points("g")
    assert ts.tolist() == [t0 + 1, t0 + 2, t0 + 3]  # put in time order
    assert values.tolist() == [2.0, 1.0, 3.0]
    ts, values = collector.points("h")
    assert ts.tolist() == [t0, t0 + 5, clock.time()]
    assert values.tolist() == [0.5, 0.25, 9.0]
    with pytest.raises(ValidationError, match="2 values but 1 timestamps"):
        collector.gauge("g").set_many([1.0, 2.0], [t0])
    with pytest.raises(ValidationError, match="timestamps must be epoch seconds"):
        collector.histogram("h").observe_many([1.0], ["yesterday"])


def test_bad_values_and_timestamps_in_timed_points_are_dropped_and_counted(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    t = clock.time()
    collector.gauge("g").set_many([1.0, float("nan"), 3.0, 4.0], [t, t, float("inf"), t + 1])
    collector.gauge("g").set("high")  # type: ignore[arg-type]
    collector.gauge("g").set("1.5")  # type: ignore[arg-type]  # numpy would parse it
    collector.gauge("g").set(5.0)
    collector.fold()
    ts, values = collector.points("g")
    assert values.tolist() == [1.0, 5.0, 4.0]  # in time order; equal times: bulk first
    assert ts.tolist() == [t, t, t + 1]
    assert collector.dropped() == {"nan": 1, "bad_timestamp": 1, "not_a_number": 2}


def test_many_timed_appends_between_folds_keep_every_point_and_its_time(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    # A fold validates all the timed appends of a series since the previous fold together:
    # each point keeps its own time and order, and a bad value in one append costs only itself.
    t0 = clock.time() - 1000
    gauge, timer = collector.gauge("g"), collector.timer("t")
    for i in range(50):
        gauge.set_many([float(i), float("nan")], [t0 + i, t0 + i + 0.5])
        timer.observe_many(np.array([0.1 * i]), [t0 + i])
    timer.observe_many(["slow"], [t0 + 60])  # type: ignore[list-item]
    collector.fold()
    ts, values = collector.points("g")
    assert values.tolist() == [float(i) for i in range(50)]
    assert ts.tolist() == [t0 + i for i in range(50)]
    ts, values = collector.points("t")
    assert values.tolist() == [0.1 * i for i in range(50)]
    assert ts.tolist() == [t0 + i for i in range(50)]
    assert collector.dropped() == {"nan": 50, "not_a_number": 1}
    drained = {b.key.name: b for b in collector.drain()}
    assert drained["g"].timestamps.tolist() == [t0 + i for i in range(50)]


def test_reads_never_fold_they_read_what_the_last_fold_left(collector: MetricsCollector) -> None:
    hist = collector.histogram("h")
    hist.observe(1.0)
    collector.fold()
    hist.observe(2.0)  # recorded, not yet folded
    assert collector.summary("h").count == 1
    assert collector.points("h")[1].tolist() == [1.0]
    assert [s.count for s in collector.snapshot("h")] == [1]
    assert collector.query("h")[0][1].count == 1
    collector.fold()
    assert collector.summary("h").count == 2


def test_bulk_arrays_are_recorded_whole_and_copied_at_the_call(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    # Numeric arrays are kept as arrays (the fold concatenates them without per-point work),
    # copied when recorded: the caller may overwrite its arrays before the fold.
    t0 = clock.time() - 100
    gauge = collector.gauge("g")
    values = np.array([1, 2, 3], dtype=np.int64)
    times = np.array([t0 + 1, t0 + 2, t0 + 3])
    gauge.set_many(values, times)
    gauge.set_many(np.array([4.0, np.nan, np.inf]), np.array([t0 + 4, t0 + 5, t0 + 6]))
    gauge.set_many(np.array([True]), [t0 + 7])
    values[:] = 99
    times[:] = 0.0
    collector.fold()
    ts, got = collector.points("g")
    assert got.tolist() == [1.0, 2.0, 3.0, 4.0, 1.0]
    assert ts.tolist() == [t0 + 1, t0 + 2, t0 + 3, t0 + 4, t0 + 7]
    assert collector.dropped() == {"nan": 1, "inf": 1}
    with pytest.raises(ValidationError, match="3 values but 2 timestamps"):
        gauge.set_many(np.array([1.0, 2.0, 3.0]), np.array([t0, t0]))


def test_a_clean_buffer_is_vouched_for_by_its_sum_and_a_dirty_one_still_checked(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    # The fold takes a buffer whose sum is finite (and, for a counter, whose minimum is not
    # negative) as clean; every other buffer goes the exact way, value by value.
    collector.enable_drain()
    hist = collector.histogram("h")
    for value in (3.0, 1.0, 2.0):
        hist.observe(value)
    counter = collector.counter("c_total")
    for step in (1.0, -5.0, 10.0):  # a finite sum (6) hiding a negative increment
        counter.inc(step)
    huge = collector.histogram("huge")
    huge.observe_many([1e308, 1e308])  # finite values whose sum overflows
    opposite = collector.histogram("opposite")
    opposite.observe_many([float("inf"), float("-inf"), 4.0])  # a NaN sum
    batches = {b.key.name: b for b in collector.drain()}
    h = batches["h"]
    assert h.values.tolist() == [3.0, 1.0, 2.0]
    assert h.timestamps.tolist() == [clock.time()] * 3
    assert h.stats is not None and (h.stats.sum, h.stats.min, h.stats.max) == (6.0, 1.0, 3.0)
    assert batches["c_total"].values.tolist() == [11.0]
    assert batches["huge"].values.tolist() == [1e308, 1e308]
    assert batches["opposite"].values.tolist() == [4.0]
    collector.fold()
    assert collector.dropped() == {"negative_increment": 1, "inf": 2}
    assert collector.summary("h", window_s=60).sum == 6.0


# --- validation at handle creation ----------------------------------------------------------------


def test_names_and_label_names_with_a_trailing_newline_are_refused(
    collector: MetricsCollector,
) -> None:
    with pytest.raises(ValidationError, match="invalid metric name"):
        collector.counter("requests_total\n")
    with pytest.raises(ValidationError, match="invalid label name"):
        collector.gauge("g", {"route\n": "a"})


def test_a_lone_surrogate_label_value_is_refused_when_the_handle_is_made(
    collector: MetricsCollector,
) -> None:
    with pytest.raises(ValidationError, match="not valid Unicode text"):
        collector.counter("c_total", {"op": "\ud800"})
    assert collector.series_keys() == []  # nothing half-made that a store would choke on


@pytest.mark.parametrize("label", ["quantile", "le", "instance"])
def test_reserved_label_names_are_refused(collector: MetricsCollector, label: str) -> None:
    with pytest.raises(ValidationError, match=f"'{label}'.*reserved"):
        collector.histogram("h", {label: "0.5"})


@pytest.mark.parametrize(
    ("first", "second", "exposed"),
    [
        (("counter", "x"), ("gauge", "x_total"), "x_total"),
        (("gauge", "x_total"), ("counter", "x"), "x_total"),
        (("counter", "x"), ("counter", "x_total"), "x_total"),
        (("histogram", "y"), ("gauge", "y_sum"), "y_sum"),
        (("timer", "y"), ("gauge", "y_count"), "y_count"),
        (("gauge", "y_bucket"), ("distribution", "y"), "y_bucket"),
    ],
)
def test_names_whose_exposed_samples_collide_are_refused(
    collector: MetricsCollector, first: tuple[str, str], second: tuple[str, str], exposed: str
) -> None:
    getattr(collector, first[0])(first[1])
    with pytest.raises(ValidationError, match=f"exposed as '{exposed}'.*'{first[1]}'"):
        getattr(collector, second[0])(second[1])
    getattr(collector, first[0])(first[1], {"more": "labels"})  # the same metric is fine


def test_every_series_carries_the_writers_instance(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import socket

    monkeypatch.delenv("ALLELE_INSTANCE", raising=False)
    default = MetricsCollector(clock=clock)
    default.counter("c_total").inc()
    [key] = default.series_keys()
    assert dict(key.labels) == {"instance": f"{socket.gethostname()}:{os.getpid()}"}
    monkeypatch.setenv("ALLELE_INSTANCE", "web-2")
    named = MetricsCollector(clock=clock)
    named.gauge("g", {"a": "1"}).set(1.0)
    named.fold()
    [key] = named.series_keys()
    assert key.labels == (("a", "1"), ("instance", "web-2"))
    assert named.summary("g", {"a": "1"}).last == 1.0  # readers may leave the instance out
    with pytest.raises(ValidationError, match="instance must be a non-empty string"):
        MetricsCollector(instance=" ")


# --- time order -------------------------------------------------------------------------------


def test_retention_forgets_points_in_time_order_not_fold_order(
    clock: ManualClock,
) -> None:
    collector = MetricsCollector(clock=clock, capacity=3, retention_s=100, instance="test-1")
    gauge = collector.gauge("g")
    now = clock.time()
    gauge.set_many([1.0, 2.0], [now - 10, now - 5])  # fresh points, folded first
    collector.fold()
    gauge.set_many([9.0], [now - 500])  # a stale point arriving late
    collector.fold()
    ts, values = collector.points("g")
    assert ts.tolist() == [now - 500, now - 10, now - 5]  # in time order
    assert values.tolist() == [9.0, 1.0, 2.0]
    assert collector.cleanup() == 1  # the stale one, not the oldest folded
    assert collector.points("g")[1].tolist() == [1.0, 2.0]
    gauge.set_many([3.0, 0.5], [now - 1, now - 20])
    collector.fold()
    # At capacity the oldest in time go: the fresh points stay.
    assert collector.points("g")[1].tolist() == [1.0, 2.0, 3.0]


def test_a_summarys_last_is_the_last_in_time(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    gauge = collector.gauge("g")
    now = clock.time()
    gauge.set_many([5.0], [now - 1])
    collector.fold()
    gauge.set_many([7.0], [now - 30])  # older, folded later
    collector.fold()
    assert collector.summary("g", window_s=60).last == 5.0
    assert collector.snapshot("g")[0].last == 5.0


# --- staleness --------------------------------------------------------------------------------


def test_snapshots_say_when_a_series_went_stale(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, stale_after_s=60, instance="test-1")
    gauge = collector.gauge("g", {"component_id": "a"})
    other = collector.gauge("g", {"component_id": "b"})
    gauge.set(1.0)
    other.set(1.0)
    collector.fold()
    folded_at = clock.time()
    [a, b] = collector.snapshot("g")
    assert (a.stale, a.updated_at) == (False, folded_at)
    clock.advance(61)
    other.set(2.0)
    collector.fold()
    [a, b] = collector.snapshot("g")
    assert a.stale and a.updated_at == folded_at and not b.stale
    # A writer that says it is done marks its series stale at once, until a new point.
    assert collector.mark_stale({"component_id": "b"}) == 1
    assert [s.stale for s in collector.snapshot("g")] == [True, True]
    other.set(3.0)
    collector.fold()
    assert [s.stale for s in collector.snapshot("g")] == [True, False]
