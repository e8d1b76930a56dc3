"""Histograms with buckets, HELP texts, staleness and several writers in one store."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from allele.errors import ValidationError
from allele.observability import buckets
from allele.observability.clock import ManualClock
from allele.observability.collector import MetricsCollector
from allele.observability.export.prometheus import exposition
from allele.observability.store import open_store
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

T0 = 1_700_000_000.0


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_a_live_histogram_has_cumulative_buckets_that_match_its_count():
    collector = MetricsCollector(clock=ManualClock(start=T0))
    timer = collector.timer("job_seconds", {"queue": "a"})
    values = [0.0001, 0.0002, 0.003, 0.003, 0.07, 0.5, 2.0, 3e6]
    for value in values:
        timer.observe(value)
    collector.fold()  # exposition reads what the last fold left
    text = exposition(collector)
    assert "# TYPE job_seconds histogram" in text
    # Every live series carries the writer's ``instance``: leave it out of the keys.
    got = {
        (name, tuple(p for p in labels if p[0] != "instance")): value
        for (name, labels), value in _samples(text).items()
    }
    le = {float(dict(k[1])["le"]): v for k, v in got.items() if k[0] == "job_seconds_bucket"}
    assert len(le) == len(buckets.BOUNDS) + 1
    for bound, count in le.items():
        assert count == sum(v <= bound for v in values), bound
    assert got[("job_seconds_count", (("queue", "a"),))] == len(values)
    assert got[("job_seconds_sum", (("queue", "a"),))] == pytest.approx(sum(values))


def test_stored_bucket_counts_grow_with_every_write_and_survive_retention(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    key = SeriesKey("job_seconds", (("instance", "w1"),), MetricType.TIMER)
    now = time.time()
    first = np.array([0.001, 0.02, 0.02, 5.0])
    second = np.array([0.3, 0.3])
    store.write_batches([SeriesBatch(key, now - 100 + np.arange(4.0), first)])
    store.write_batches([SeriesBatch(key, now - 10 + np.arange(2.0), second)])
    expected = buckets.count(np.concatenate([first, second]))
    np.testing.assert_array_equal(store.bucket_counts(key), expected)
    store.delete_older_than(now - 50)  # retention drops the first write's points ...
    np.testing.assert_array_equal(store.bucket_counts(key), expected)  # ... not the counts
    (stats,) = store.latest("job_seconds")
    np.testing.assert_array_equal(stats.buckets, expected)
    got = _samples(exposition(store))
    assert got[("job_seconds_count", (("instance", "w1"),))] == 6
    assert got[("job_seconds_bucket", (("instance", "w1"), ("le", "+Inf")))] == 6
    store.close()


def test_histogram_quantile_of_our_buckets_matches_prometheus_interpolation():
    counts = buckets.count(np.array([0.2] * 50 + [0.4] * 50))
    # 100 values, all in the (0.1, 0.25] and (0.25, 0.5] buckets: the median is at the top
    # of the first one, the 75th percentile halfway up the second.
    assert buckets.quantile(counts, 0.5) == pytest.approx(0.25)
    assert buckets.quantile(counts, 0.75) == pytest.approx(0.375)


def test_summaries_stay_available_and_a_bad_format_is_refused():
    collector = MetricsCollector(clock=ManualClock(start=T0))
    collector.timer("job_seconds").observe(0.5)
    assert "# TYPE job_seconds summary" in exposition(collector, distributions="summary")
    with pytest.raises(ValidationError, match="distributions='bars' must be one of"):
        exposition(collector, distributions="bars")


def test_help_says_what_the_metric_is():
    collector = MetricsCollector(clock=ManualClock(start=T0))
    collector.gauge("allele_process_rss_bytes").set(1.0)
    collector.counter("my_requests").inc()
    collector.fold()
    text = exposition(collector)
    assert "# HELP allele_process_rss_bytes Resident memory of the monitored process, bytes" in (
        text
    )
    assert "# HELP my_requests_total Running total of my_requests" in text


def _writer(store: Any, instance: str, last: float, total: float) -> None:
    key = SeriesKey("jobs_total", (("instance", instance),), MetricType.COUNTER)
    ts = last - np.arange(5.0)[::-1]
    store.write_batches([SeriesBatch(key, ts, total - np.arange(5.0)[::-1])])


def test_a_stopped_writers_series_are_left_out_or_stamped(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = time.time()
    _writer(store, "alive", now - 2, 10.0)
    _writer(store, "dead", now - 3600, 7.0)
    live = _samples(exposition(store))
    assert set(live) == {("jobs_total", (("instance", "alive"),))}
    stamped = exposition(store, include_stale=True)
    (line,) = [x for x in stamped.splitlines() if 'instance="dead"' in x]
    assert line.endswith(f" 7.0 {round((now - 3600) * 1000)}")  # its last point's time, ms
    store.close()


def test_writers_that_differ_by_instance_keep_their_own_totals(tmp_path):
    """Two processes writing one store: each instance's counter is its own series, never
    going down, and the exposition shows both (Prometheus's sum() gives the true total)."""
    store = open_store(f"sqlite:///{tmp_path / 'i.db'}")
    now = time.time()
    for step in range(10):  # interleaved writes, as two flushers make them
        for instance, per_step in (("host:1", 3.0), ("host:2", 5.0)):
            key = SeriesKey("jobs_total", (("instance", instance),), MetricType.COUNTER)
            total = per_step * (step + 1)
            store.write_batches([SeriesBatch(key, np.array([now - 10 + step]), np.array([total]))])
    for instance, per_step in (("host:1", 3.0), ("host:2", 5.0)):
        values = store.query_series("jobs_total", {"instance": instance}).values
        assert np.all(np.diff(values) > 0) and values[-1] == 10 * per_step
    got = _samples(exposition(store))
    totals = {dict(k[1])["instance"]: v for k, v in got.items()}
    assert totals == {"host:1": 30.0, "host:2": 50.0}
    assert sum(totals.values()) == 80.0
    store.close()


def test_a_histogram_quantile_window_reads_exactly_its_own_series(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    now = time.time()
    plain = SeriesKey("job_seconds", (("queue", "a"),), MetricType.TIMER)
    other = SeriesKey("job_seconds", (("instance", "x"), ("queue", "a")), MetricType.TIMER)
    store.write_batches(
        [
            SeriesBatch(plain, now - 5 + np.arange(5.0), np.full(5, 1.0)),
            SeriesBatch(other, now - 5 + np.arange(5.0), np.full(5, 100.0)),
        ]
    )
    got = _samples(exposition(store, distributions="summary"))
    # Before, the {queue="a"} series' quantiles also took the points of {instance, queue}.
    assert got[("job_seconds", (("quantile", "0.99"), ("queue", "a")))] == 1.0
    store.close()
