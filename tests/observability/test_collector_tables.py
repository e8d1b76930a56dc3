"""Many series at once (record_table), the ring's pieces, and drained batches vouched for."""

from __future__ import annotations

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.clock import ManualClock
from allele.observability.collector import MetricsCollector
from allele.observability.store import open_store
from allele.observability.types import BatchStats, MetricType

T0 = 1_800_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0 + 1000)


def _pair(clock: ManualClock) -> tuple[MetricsCollector, MetricsCollector]:
    return MetricsCollector(clock=clock), MetricsCollector(clock=clock)


def test_a_table_records_what_set_many_per_row_records(clock: ManualClock) -> None:
    by_table, by_rows = _pair(clock)
    rng = np.random.default_rng(1)
    times = T0 + np.arange(50.0)
    table = rng.normal(size=(3, 50))
    table[2] = np.abs(table[2])  # the timer row: seconds
    for collector in (by_table, by_rows):
        collector.enable_drain()
    handles = [by_table.gauge("a"), by_table.gauge("b", {"x": "1"}), by_table.timer("t")]
    by_table.record_table(handles, times, table)
    by_rows.gauge("a").set_many(table[0], times)
    by_rows.gauge("b", {"x": "1"}).set_many(table[1], times)
    by_rows.timer("t").observe_many(table[2], times)
    for name, labels in (("a", None), ("b", {"x": "1"}), ("t", None)):
        ts_t, v_t = by_table.points(name, labels)
        ts_r, v_r = by_rows.points(name, labels)
        np.testing.assert_array_equal(ts_t, ts_r)
        np.testing.assert_array_equal(v_t, v_r)
        assert by_table.summary(name, labels, window_s=5000) == by_rows.summary(
            name, labels, window_s=5000
        )
    drained = {batch.key.name: batch for batch in by_table.drain()}
    assert drained["a"].stats == BatchStats(
        float(table[0].sum()), float(table[0].min()), float(table[0].max())
    )
    assert drained["t"].stats is not None and drained["t"].stats.max == float(table[2].max())


def test_a_table_is_copied_unless_handed_over(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, instance="t")
    gauge = collector.gauge("g")
    times, table = T0 + np.arange(3.0), np.array([[1.0, 2.0, 3.0]])
    collector.record_table([gauge], times, table)
    table[:] = 99.0
    times[:] = 0.0
    collector.fold()
    ts, values = collector.points("g")
    assert values.tolist() == [1.0, 2.0, 3.0] and ts.tolist() == [T0, T0 + 1, T0 + 2]


def test_a_table_with_bad_values_or_disorder_goes_point_by_point(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, instance="t")
    collector.enable_drain()
    a, b = collector.gauge("a"), collector.gauge("b")
    times = np.array([T0 + 2, T0 + 1, T0 + 3])  # out of order
    table = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, np.inf]])
    collector.record_table([a, b], times, table)
    collector.fold()
    ts, values = collector.points("a")
    assert ts.tolist() == [T0 + 2, T0 + 3] and values.tolist() == [1.0, 3.0]
    ts, values = collector.points("b")
    assert ts.tolist() == [T0 + 1, T0 + 2] and values.tolist() == [5.0, 4.0]
    assert collector.dropped() == {"nan": 1, "inf": 1}
    batches = {batch.key.name: batch for batch in collector.drain()}
    assert batches["b"].stats == BatchStats(9.0, 4.0, 5.0)  # checked and sorted by the fold


def test_tables_of_the_same_series_are_joined_by_one_fold(clock: ManualClock) -> None:
    """Many runs' tables (one a run) folded at once: every point lands once, in time order; a
    table out of order with the others still sorts."""
    collector = MetricsCollector(clock=clock, instance="t")
    collector.enable_drain()
    a, b = collector.gauge("a"), collector.timer("b")
    other = collector.gauge("c")
    runs = [T0 + 10 * i + np.arange(3.0) for i in range(5)]
    for i, times in enumerate(runs):
        collector.record_table([a, b], times, np.array([[i, i, i], [0.5, 0.5, 0.5 + i]]))
    collector.record_table([other], [T0], [[7.0]])  # another monitor's table between runs
    collector.record_table([a, b], [T0 - 5.0], [[-1.0], [0.1]])  # earlier than every run
    collector.fold()
    ts, values = collector.points("a")
    assert ts.tolist() == [T0 - 5.0, *np.concatenate(runs).tolist()]
    assert values.tolist() == [-1.0, *[float(i) for i in range(5) for _ in range(3)]]
    assert collector.points("c")[1].tolist() == [7.0]
    assert collector.summary("b", window_s=5000).count == 16
    batches = {batch.key.name: batch for batch in collector.drain()}
    assert sum(batch.values.size for batch in collector.drain()) == 0
    assert sorted(batches["a"].values.tolist()) == sorted(values.tolist())  # each point once


def test_record_table_refuses_what_it_cannot_record(clock: ManualClock) -> None:
    collector, other = _pair(clock)
    gauge = collector.gauge("g")
    with pytest.raises(ValidationError, match="one row of values per handle"):
        collector.record_table([gauge], [T0, T0 + 1], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValidationError, match="handles of this collector"):
        collector.record_table([collector.counter("c")], [T0], [[1.0]])
    with pytest.raises(ValidationError, match="handles of this collector"):
        collector.record_table([other.gauge("g")], [T0], [[1.0]])
    with pytest.raises(ValidationError, match="numeric"):
        collector.record_table([gauge], [T0], [["x"]])
    strict = MetricsCollector(clock=clock, strict=True)
    with pytest.raises(ValidationError, match=r"'s'.*nan"):
        strict.record_table([strict.gauge("s")], [T0, T0 + 1], [[1.0, np.nan]])
    collector.record_table([gauge], [], np.empty((1, 0)))  # nothing to record
    collector.fold()
    assert collector.points("g")[1].size == 0


def test_the_ring_keeps_the_newest_points_across_many_pieces(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, capacity=100)
    gauge = collector.gauge("g")
    expected: list[float] = []
    for piece in range(150):  # more pieces than the ring keeps apart: they get joined
        values = [float(piece * 3 + i) for i in range(piece % 4)]
        times = [T0 + v for v in values]
        gauge.set_many(values, times)
        collector.fold()
        expected.extend(values)
        collector.fold()
        ts, got = collector.points("g")
        assert got.tolist() == expected[-100:] and ts.tolist() == [T0 + v for v in got]
    big = np.arange(1000.0, 1250.0)
    collector.record_table([gauge], T0 + big, big[None, :])
    collector.fold()
    assert collector.points("g")[1].tolist() == big[-100:].tolist()
    assert collector.summary("g", window_s=1e6).truncated


def test_pieces_out_of_time_order_are_drained_unvouched(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock, instance="t")
    collector.enable_drain()
    gauge = collector.gauge("g")
    gauge.set_many([1.0, 2.0], [T0 + 10, T0 + 11])
    collector.fold()
    gauge.set_many([3.0], [T0 + 12])
    collector.fold()
    (batch,) = collector.drain()
    assert batch.stats == BatchStats(6.0, 1.0, 3.0)
    gauge.set_many([4.0], [T0 + 20])
    collector.fold()
    gauge.set_many([5.0], [T0 + 15])  # older than the previous fold's point
    collector.fold()
    (batch,) = collector.drain()
    assert batch.values.tolist() == [4.0, 5.0] and batch.stats is None


def test_the_store_writes_vouched_batches_exactly(clock: ManualClock, tmp_path) -> None:
    collector = MetricsCollector(clock=clock, instance="t")
    collector.enable_drain()
    gauges = [collector.gauge("g", {"i": str(i)}) for i in range(3)]
    times = T0 + np.arange(1000.0) / 10
    table = np.random.default_rng(2).normal(size=(3, 1000))
    collector.record_table(gauges, times, table)
    collector.counter("c").inc(5)
    batches = collector.drain()
    assert all(batch.stats is not None for batch in batches)
    with open_store(f"sqlite:///{tmp_path / 'v.db'}") as store:
        assert store.write_batches(batches) == 3001
        for i in range(3):
            points = store.query_series("g", {"i": str(i)}, start=T0 - 1, end=T0 + 1000)
            np.testing.assert_array_equal(points.timestamps, times)
            np.testing.assert_array_equal(points.values, table[i])
        assert store.query_series("c", start=T0, end=T0 + 2000).values.tolist() == [5.0]
        # The written totals are the vouched sums (one UPDATE for every series).
        totals = {(s.key.name, s.key.labels): (s.count, s.sum) for s in store.latest()}
        for i in range(3):
            count, total = totals[("g", (("i", str(i)), ("instance", "t")))]
            assert count == 1000 and total == pytest.approx(float(table[i].sum()), abs=1e-9)
        assert totals[("c", (("instance", "t"),))] == (1, 5.0)
        assert collector.kind_of("c") is MetricType.COUNTER
