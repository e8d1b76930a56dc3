"""Compaction on SQLite and PostgreSQL: fewer chunks, exactly the same points, totals and order."""

from __future__ import annotations

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.store import Store, open_store
from allele.observability.store.flusher import Flusher
from allele.observability.store.repository.compaction import Group, plan_groups
from allele.observability.types import MetricType, SeriesBatch

from .conftest import FakeCollector, key

T0 = 1_700_000_000.0


def write_one_point_chunks(store: Store, k, ts, values) -> None:
    """One write (one chunk) per point, as a 1 s flush of a 1 s series does."""
    for t, v in zip(ts, values, strict=True):
        store.write_batches([SeriesBatch(k, np.array([t]), np.array([v]))])


def everything(store: Store):
    """Every read a caller can make, to compare before and after compaction."""
    reads = {}
    for k in store.list_series():
        labels = dict(k.labels)
        whole = store.query_series(k.name, labels)
        window = store.query_series(k.name, labels, T0 + 100.5, T0 + 180)
        reads[k] = (
            whole.timestamps.tobytes(),
            whole.values.tobytes(),
            window.timestamps.tobytes(),
            window.values.tobytes(),
            store.aggregate(k.name, T0, T0 + 1e6, labels),
        )
    return reads, store.latest()


def test_compaction_merges_small_chunks_and_reads_stay_identical(store):
    rng = np.random.default_rng(0)
    gauge, timer = key("cpu", MetricType.GAUGE, host="a"), key("lat_s", MetricType.TIMER)
    ts = T0 + np.arange(300, dtype=float)
    write_one_point_chunks(store, gauge, ts, rng.random(300))
    # Ties across chunks (two points at one instant written apart) and an out-of-order write.
    write_one_point_chunks(store, timer, ts[:50], rng.random(50))
    store.write_batches([SeriesBatch(timer, ts[10:13], np.array([7.0, 8.0, 9.0]))])
    store.write_batches([SeriesBatch(timer, np.array([T0 - 5.0]), np.array([-1.0]))])
    before = everything(store)
    chunks_before = store.chunk_count()
    assert chunks_before == 300 + 50 + 2

    done = store.compact(older_than=T0 + 1e6, min_points=64, max_points=128)

    assert everything(store) == before  # same arrays, aggregates, totals and latest points
    # gauge: 300 one-point chunks -> 128 + 128 + 44; timer: 52 chunks -> one.
    assert store.chunk_count("cpu") == 3 and store.chunk_count("lat_s") == 1
    assert (done.chunks_merged, done.chunks_written, done.points) == (352, 4, 354)
    assert done.series == 2 and done.complete
    # Nothing left to merge: full chunks are never rewritten, lone small ones stay.
    assert store.compact(older_than=T0 + 1e6, min_points=64, max_points=128).chunks_merged == 0


def test_recent_and_large_chunks_are_left_alone(store):
    k = key("g", MetricType.GAUGE)
    write_one_point_chunks(store, k, T0 + np.arange(10.0), np.arange(10.0))
    store.write_batches([SeriesBatch(k, T0 + 10 + np.arange(100.0), np.arange(100.0))])
    write_one_point_chunks(store, k, T0 + 110 + np.arange(10.0), np.arange(10.0))
    before = everything(store)
    # Horizon at T0 + 115: chunks ending at or after it stay; the 100-point chunk is large.
    done = store.compact(older_than=T0 + 115, min_points=50)
    assert everything(store) == before
    # 10 small -> 1, the large one, then 5 small old ones -> 1, then 5 recent ones: 8 chunks.
    assert store.chunk_count() == 1 + 1 + 1 + 5
    assert done.chunks_merged == 15 and done.chunks_written == 2


def test_compaction_work_per_call_is_bounded(store):
    k = key("g", MetricType.GAUGE)
    write_one_point_chunks(store, k, T0 + np.arange(30.0), np.arange(30.0))
    before = everything(store)
    first = store.compact(max_chunks=12)
    assert not first.complete and first.chunks_merged <= 12
    while not store.compact(max_chunks=12).complete:
        pass
    assert store.chunk_count() == 1
    assert everything(store) == before


def test_compaction_arguments_are_checked(store):
    with pytest.raises(ValidationError, match="max_points=1 must be an integer in"):
        store.compact(max_points=1)
    with pytest.raises(ValidationError, match="min_points=99 must be an integer in"):
        store.compact(min_points=99, max_points=50)
    with pytest.raises(ValidationError, match="max_chunks"):
        store.compact(max_chunks=0)
    assert store.compact().chunks_merged == 0  # an empty store


def test_plan_groups_splits_at_large_recent_and_full_groups():
    chunks = [(1, 1, 0.0), (2, 1, 1.0), (3, 500, 2.0), (4, 1, 3.0), (5, 3, 4.0), (6, 2, 5.0)]
    groups, cut = plan_groups(chunks, horizon=10.0, min_points=100, max_points=4, budget=100)
    assert groups == [Group(1, 2, 2, 2), Group(4, 5, 2, 4)] and not cut  # 6 alone stays
    groups, _ = plan_groups(chunks, horizon=4.5, min_points=100, max_points=100, budget=100)
    assert groups == [Group(1, 2, 2, 2), Group(4, 5, 2, 4)]
    groups, cut = plan_groups(chunks, horizon=10.0, min_points=100, max_points=100, budget=3)
    assert groups == [Group(1, 2, 2, 2)] and cut


def test_the_flusher_compacts_old_chunks_in_the_background(sqlite_uri):
    store = open_store(sqlite_uri)
    source = FakeCollector()
    k = key()
    for i in range(40):  # 40 flushes of one old point each: 40 chunks
        source.record(k, T0 + i, float(i))
        Flusher(store, source, install_signal_handlers=False).flush()
    assert store.chunk_count() == 40
    before = everything(store)
    flusher = Flusher(
        store,
        source,
        interval_s=0.01,
        compact_interval_s=0.01,
        compact_after_s=60.0,
        install_signal_handlers=False,
    ).start()
    try:
        for _ in range(500):
            if flusher.stats.compactions:
                break
            flusher._stop.wait(0.01)
    finally:
        stats = flusher.stop()
    assert stats.compactions >= 1 and stats.chunks_compacted == 40
    assert store.chunk_count() == 1 and everything(store) == before
    with pytest.raises(ValidationError, match="compact_interval_s"):
        Flusher(store, source, compact_interval_s=0)
    store.close()


def test_a_failed_compaction_is_counted_and_never_raised(sqlite_uri):
    store = open_store(sqlite_uri)
    flusher = Flusher(store, FakeCollector(), install_signal_handlers=False)
    store.close()

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    store.compact = broken  # type: ignore[method-assign]
    assert flusher.compact() is None
    assert flusher.stats.failed_compactions == 1 and "disk on fire" in flusher.stats.last_error
