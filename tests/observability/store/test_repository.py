"""The repository on SQLite and PostgreSQL: points, aggregates, alerts, components, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.observability.store.repository.base import labels_from_text, labels_to_text
from allele.observability.types import (
    Aggregation,
    Alert,
    AlertSeverity,
    AlertState,
    ComponentMetrics,
    ComponentType,
    HealthStatus,
    MetricType,
    Operator,
    PerformanceMetrics,
    SeriesBatch,
)

from .conftest import key

T0 = 1_700_000_000.0


def batch(k, ts, values):
    return SeriesBatch(k, np.asarray(ts, dtype=float), np.asarray(values, dtype=float))


def test_points_round_trip_in_time_order(store):
    k = key(component="kraken")
    assert store.write_batches([batch(k, [T0 + 2, T0, T0 + 1], [3.0, 1.0, 2.0])]) == 3
    got = store.query_series("latency_s")
    np.testing.assert_array_equal(got.timestamps, [T0, T0 + 1, T0 + 2])
    np.testing.assert_array_equal(got.values, [1.0, 2.0, 3.0])
    assert store.list_series() == [k]


def test_windows_are_half_open_and_accept_aware_datetimes(store):
    k = key()
    store.write_batches([batch(k, T0 + np.arange(10), np.arange(10))])
    got = store.query_series("latency_s", start=T0 + 2, end=T0 + 5)
    np.testing.assert_array_equal(got.values, [2.0, 3.0, 4.0])
    start = datetime.fromtimestamp(T0 + 8, tz=UTC)
    np.testing.assert_array_equal(store.query_series("latency_s", start=start).values, [8, 9])
    with pytest.raises(ValidationError, match="naive datetime"):
        store.query_series("latency_s", start=datetime(2024, 1, 1))


def test_label_filter_selects_series_carrying_all_given_pairs(store):
    a = key(component="kraken", host="h1")
    b = key(component="agent", host="h1")
    store.write_batches([batch(a, [T0], [1.0]), batch(b, [T0 + 1], [2.0])])
    assert store.query_series("latency_s", {"component": "kraken"}).values.tolist() == [1.0]
    assert store.query_series("latency_s", [("host", "h1")]).values.tolist() == [1.0, 2.0]
    assert len(store.query_series("latency_s", {"host": "h2"})) == 0
    assert len(store.query_series("no_such_metric")) == 0


def test_same_name_with_other_labels_or_kind_is_another_series(store):
    store.write_batches(
        [
            batch(key("x", MetricType.GAUGE), [T0], [1.0]),
            batch(key("x", MetricType.COUNTER), [T0], [2.0]),
            batch(key("x", MetricType.GAUGE, a="1"), [T0], [3.0]),
        ]
    )
    store.write_batches([batch(key("x", MetricType.GAUGE), [T0 + 1], [4.0])])
    assert len(store.list_series("x")) == 3
    assert sorted(store.query_series("x").values.tolist()) == [1.0, 2.0, 3.0, 4.0]


def test_series_written_by_another_store_object_are_reused(store):
    from allele.observability.store import open_store

    k = key()
    store.write_batches([batch(k, [T0], [1.0])])
    other = open_store(store.uri)
    other.write_batches([batch(k, [T0 + 1], [2.0])])
    other.close()
    assert store.list_series() == [k]
    assert store.query_series("latency_s").values.tolist() == [1.0, 2.0]


def test_a_fresh_store_resolves_many_new_and_existing_series_in_one_write(store):
    from allele.observability.store import open_store

    keys = [key(f"m{i}", MetricType.GAUGE, shard=str(i % 3)) for i in range(620)]
    store.write_batches([batch(k, [T0], [float(i)]) for i, k in enumerate(keys[::2])])
    other = open_store(store.uri)  # knows none of them: some exist, some are new
    other.write_batches([batch(k, [T0 + 1], [float(i)]) for i, k in enumerate(keys)])
    other.close()
    assert sorted(store.list_series(), key=str) == sorted(keys, key=str)
    assert store.query_series("m0").values.tolist() == [0.0, 0.0]
    assert store.query_series("m619").values.tolist() == [619.0]
    stats = {s.key: s for s in store.series_stats()}
    assert stats[keys[2]].count == 2 and stats[keys[3]].count == 1


def test_aggregate_matches_numpy_on_the_window(store):
    rng = np.random.default_rng(7)
    values = rng.lognormal(size=1000)
    store.write_batches([batch(key(), T0 + np.arange(1000), values)])
    agg = store.aggregate("latency_s", T0 + 100, T0 + 600)
    window = values[100:600]
    assert agg.count == 500
    assert agg.sum == pytest.approx(window.sum())
    assert agg.min == window.min() and agg.max == window.max()
    assert agg.mean == pytest.approx(window.mean())
    assert agg.p50 == pytest.approx(np.percentile(window, 50))
    assert agg.p95 == pytest.approx(np.percentile(window, 95))
    assert agg.p99 == pytest.approx(np.percentile(window, 99))
    assert agg.to_dict()["count"] == 500


def test_aggregate_of_an_empty_window_has_no_statistics(store):
    agg = store.aggregate("latency_s", T0, T0 + 10)
    assert agg.count == 0 and agg.p99 is None and agg.mean is None
    with pytest.raises(ValidationError, match="before start"):
        store.aggregate("latency_s", T0 + 10, T0)


def test_nan_points_are_skipped_and_mismatched_batches_rejected(store, caplog):
    k = key()
    written = store.write_batches([batch(k, [T0, T0 + 1, np.inf], [1.0, np.nan, 2.0])])
    assert written == 1
    assert "skipping 2 point(s)" in caplog.text
    assert store.query_series("latency_s").values.tolist() == [1.0]
    with pytest.raises(ValidationError, match="2 timestamps but 1 values"):
        store.write_batches([batch(k, [T0, T0 + 1], [1.0])])
    assert store.write_batches([]) == 0


def test_series_stats_give_totals_and_the_latest_point(store):
    a, b = key("requests", MetricType.COUNTER), key("memory_mb", MetricType.GAUGE)
    store.write_batches(
        [batch(a, [T0, T0 + 1, T0 + 2], [1, 1, 3]), batch(b, [T0, T0 + 5], [10, 7])]
    )
    stats = {s.key.name: s for s in store.series_stats()}
    assert stats["requests"].count == 3 and stats["requests"].sum == 5.0
    assert stats["memory_mb"].last_value == 7.0 and stats["memory_mb"].last_ts == T0 + 5
    assert [s.key.name for s in store.series_stats("requests")] == ["requests"]


def test_iter_series_yields_each_series_with_its_window(store):
    a, b = key(component="a"), key(component="b")
    store.write_batches([batch(a, [T0, T0 + 10], [1, 2]), batch(b, [T0 + 10], [3])])
    got = {k: p.values.tolist() for k, p in store.iter_series(start=T0 + 5)}
    assert got == {a: [2.0], b: [3.0]}


def test_delete_older_than_removes_old_points_and_resolved_alerts(store):
    store.write_batches([batch(key(), T0 + np.arange(10), np.arange(10))])
    store.save_alerts(
        [
            {"alert_id": "old", "state": "resolved", "resolved_at": T0 + 1},
            {"alert_id": "open", "state": "active", "updated_at": T0 + 1},
        ]
    )
    deleted = store.delete_older_than(T0 + 4)
    assert (deleted.points, deleted.alerts) == (4, 1)
    assert store.query_series("latency_s").values.tolist() == [4, 5, 6, 7, 8, 9]
    assert [a.alert_id for a in store.load_alerts()] == ["open"]


def _alert(alert_id: str = "a1", **changes) -> Alert:
    fired = datetime(2024, 5, 1, 12, tzinfo=UTC)
    fields = {
        "alert_id": alert_id,
        "rule_name": "slow_kraken",
        "metric": "latency_s",
        "severity": AlertSeverity.WARNING,
        "state": AlertState.FIRING,
        "value": 0.9,
        "threshold": 0.5,
        "operator": Operator.GT,
        "aggregation": Aggregation.P95,
        "labels": {"component_id": "kraken-1"},
        "message": "p95 latency 0.9 > 0.5",
        "started_at": fired,
        "updated_at": fired,
        "fired_at": fired,
    }
    fields.update(changes)
    return Alert(**fields)


def test_alerts_round_trip_through_alert_from_dict(store):
    alert = _alert()
    assert store.save_alerts([alert]) == 1
    (loaded,) = store.load_alerts()
    assert loaded.to_alert() == alert
    assert (loaded.alert_id, loaded.state) == (alert.alert_id, alert.state.value)


def test_alerts_upsert_by_id_and_filter_by_state(store):
    store.save_alerts([_alert("a1"), _alert("a2", severity=AlertSeverity.CRITICAL)])
    resolved_at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    store.save_alerts([_alert("a1", state=AlertState.RESOLVED, resolved_at=resolved_at)])
    assert {a.alert_id: a.state for a in store.load_alerts()} == {
        "a1": "resolved",
        "a2": "firing",
    }
    assert [a.alert_id for a in store.load_alerts(state="firing")] == ["a2"]
    assert store.get_alert("a1").payload["resolved_at"] == resolved_at.isoformat()
    with pytest.raises(ValidationError, match="no 'alert_id'"):
        store.save_alerts([{"state": "firing"}])


def test_acknowledge_and_resolve_record_who_when_and_why(store):
    store.save_alerts([_alert()])
    at = datetime(2024, 5, 1, 13, tzinfo=UTC)
    acked = store.acknowledge_alert("a1", by="ana", comment="looking", at=at).to_alert()
    assert acked.state is AlertState.FIRING and acked.acknowledged
    assert (acked.acknowledged_by, acked.acknowledgement_comment) == ("ana", "looking")
    assert acked.acknowledged_at == at
    # A later save from the running alert manager keeps the acknowledgement made elsewhere.
    store.save_alerts([_alert(value=1.5)])
    again = store.get_alert("a1").to_alert()
    assert (again.acknowledged_by, again.acknowledged_at, again.value) == ("ana", at, 1.5)
    later = at + timedelta(minutes=5)
    resolved = store.resolve_alert("a1", by="bo", comment="fixed", at=later).to_alert()
    assert resolved.state is AlertState.RESOLVED and resolved.resolved_at == later
    assert (resolved.resolved_by, resolved.resolution_comment) == ("bo", "fixed")
    assert [a.alert_id for a in store.load_alerts("resolved")] == ["a1"]
    with pytest.raises(ValidationError, match="cannot acknowledge alert 'a1': it was resolved"):
        store.acknowledge_alert("a1", by="ana")
    with pytest.raises(ValidationError, match="alert_id='nope'"):
        store.acknowledge_alert("nope", by="ana")
    with pytest.raises(ValidationError, match="must name who"):
        store.resolve_alert("a1", by=" ")


class _Component:
    def __init__(self, component_id: str, ops: int) -> None:
        self.component_id, self.ops = component_id, ops

    def to_dict(self) -> dict:
        return {"component_id": self.component_id, "component_type": "kraken_lnn", "ops": self.ops}


def test_components_are_upserted_by_id(store):
    assert store.upsert_components([_Component("k1", 1), _Component("k2", 5)]) == 2
    store.upsert_components([_Component("k1", 9)])
    assert [c.to_dict() for c in store.load_components()] == [
        {"component_id": "k1", "component_type": "kraken_lnn", "ops": 9},
        {"component_id": "k2", "component_type": "kraken_lnn", "ops": 5},
    ]
    with pytest.raises(ValidationError, match="no 'component_id'"):
        store.upsert_components([{"ops": 1}])


def test_label_text_is_canonical():
    text = labels_to_text((("b", "2"), ("a", "1")))
    assert text == '{"a":"1","b":"2"}'
    assert labels_from_text(text) == (("a", "1"), ("b", "2"))


def test_component_metrics_round_trip_through_from_dict(store):
    snapshot = ComponentMetrics(
        component_id="evo-1",
        component_type=ComponentType.EVOLUTION_ENGINE,
        health=HealthStatus.HEALTHY,
        performance=PerformanceMetrics(window_s=60.0, operation_count=4, latency_p95_s=0.2),
        timestamp=datetime(2024, 5, 1, 12, tzinfo=UTC),
    )
    store.upsert_components([snapshot])
    (loaded,) = store.load_components()
    assert loaded.to_metrics() == snapshot
    assert (loaded.component_id, loaded.health) == ("evo-1", "healthy")
    assert loaded.updated_at == snapshot.timestamp.timestamp()


# -- chunks --------------------------------------------------------------------------------------


def _chunk_rows(store, **where):
    import sqlalchemy as sa

    from allele.observability.store.schema import chunks

    stmt = sa.select(chunks).order_by(chunks.c.chunk_id)
    for column, value in where.items():
        stmt = stmt.where(chunks.c[column] == value)
    with store.engine.connect() as conn:
        return conn.execute(stmt).mappings().all()


def test_a_write_stores_one_chunk_per_series_in_documented_blobs(store):
    a, b = key(component="a"), key(component="b")
    store.write_batches(
        [
            batch(a, [T0 + 1, T0 + 2], [5.0, 1.0]),
            batch(b, [T0], [7.0]),
            batch(a, [T0, T0 + 3], [2.0, 4.0]),  # the same series again: merged, time-ordered
        ]
    )
    rows = _chunk_rows(store)
    assert len(rows) == 2
    chunk_a = next(r for r in rows if r["n"] == 4)
    # The blobs are little-endian float64 whatever the platform: readable without the store.
    assert np.frombuffer(chunk_a["ts_blob"], "<f8").tolist() == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert np.frombuffer(chunk_a["value_blob"], "<f8").tolist() == [2.0, 5.0, 1.0, 4.0]
    assert (chunk_a["t_min"], chunk_a["t_max"]) == (T0, T0 + 3)
    assert (chunk_a["v_sum"], chunk_a["v_min"], chunk_a["v_max"], chunk_a["v_last"]) == (
        12.0,
        1.0,
        5.0,
        4.0,
    )
    assert store.query_series("latency_s", {"component": "a"}).values.tolist() == [2, 5, 1, 4]


def test_long_batches_are_split_into_bounded_chunks():
    from allele.observability.store.repository.chunks import pack, unpack

    ts, values = T0 + np.arange(10.0), np.arange(10.0) * 2
    rows = list(pack(3, ts, values, max_points=4))
    assert [row[3] for row in rows] == [4, 4, 2]
    assert [(row[1], row[2]) for row in rows] == [(T0, T0 + 3), (T0 + 4, T0 + 7), (T0 + 8, T0 + 9)]
    np.testing.assert_array_equal(unpack([row[9] for row in rows]), values)


def test_windows_cut_chunks_and_merge_writes_in_time_order(store):
    k = key()
    store.write_batches([batch(k, T0 + 10 + np.arange(10), 10 + np.arange(10))])
    store.write_batches([batch(k, T0 + np.arange(10), np.arange(10))])  # older, written later
    store.write_batches([batch(key(component="x"), [T0 + 4.5], [99.0])])
    got = store.query_series("latency_s", start=T0 + 4, end=T0 + 13)
    assert got.values.tolist() == [4, 99, 5, 6, 7, 8, 9, 10, 11, 12]
    assert np.all(np.diff(got.timestamps) >= 0)
    assert store.query_series("latency_s", {"component": "x"}, end=T0 + 4.5).values.size == 0


def test_latest_reads_the_newest_point_of_each_series(store):
    a, b = key("g", MetricType.GAUGE, host="a"), key("g", MetricType.GAUGE, host="b")
    store.write_batches([batch(a, [T0, T0 + 5], [1.0, 2.0]), batch(b, [T0 + 1], [10.0])])
    # Two points at one instant in one batch, then a later write ending at the same instant:
    # the point written last wins.
    store.write_batches([batch(b, [T0 + 3, T0 + 3], [30.0, 31.0])])
    store.write_batches([batch(b, [T0 + 2, T0 + 3], [20.0, 32.0])])
    store.write_batches([batch(a, [T0 + 4], [0.5])])  # older than a's newest: not the latest
    latest = {s.key: s for s in store.latest("g")}
    assert (latest[a].last_ts, latest[a].last_value, latest[a].count) == (T0 + 5, 2.0, 3)
    assert (latest[b].last_ts, latest[b].last_value, latest[b].count) == (T0 + 3, 32.0, 5)
    assert [s.key for s in store.latest(labels={"host": "b"})] == [b]
    assert store.latest("no_such_metric") == []


def test_cumulative_totals_never_go_down_after_retention(store):
    from allele.observability.export.prometheus import exposition

    k = key("latency_seconds", MetricType.TIMER)
    store.write_batches([batch(k, T0 + np.arange(10), np.ones(10))])
    store.write_batches([batch(k, T0 + 10 + np.arange(5), np.full(5, 2.0))])

    def scraped() -> tuple[float, float]:
        # Points from 2023: a stale writer, exposed with timestamps ("name value ms").
        text = exposition(store, include_stale=True)
        lines = dict(line.split(" ")[:2] for line in text.splitlines() if line[0] != "#")
        return float(lines["latency_seconds_count"]), float(lines["latency_seconds_sum"])

    assert scraped() == (15.0, 20.0)
    deleted = store.delete_older_than(T0 + 12)
    assert deleted.points == 12
    assert store.query_series("latency_seconds").values.tolist() == [2.0, 2.0, 2.0]
    (stats,) = store.series_stats()
    assert (stats.count, stats.sum, stats.last_ts) == (15, 20.0, T0 + 14)
    assert scraped() == (15.0, 20.0)
    store.write_batches([batch(k, [T0 + 20], [3.0])])
    assert scraped() == (16.0, 23.0)


def test_retention_rewrites_a_chunk_that_straddles_the_cutoff(store):
    k = key()
    store.write_batches([batch(k, T0 + np.arange(10), np.arange(10))])
    store.write_batches([batch(k, T0 + 20 + np.arange(3), [20, 21, 22])])
    assert store.delete_older_than(T0 + 6.5).points == 7
    first, second = _chunk_rows(store)
    assert (first["t_min"], first["t_max"], first["n"]) == (T0 + 7, T0 + 9, 3)
    assert (first["v_sum"], first["v_min"], first["v_max"], first["v_last"]) == (24, 7, 9, 9)
    assert np.frombuffer(first["value_blob"], "<f8").tolist() == [7, 8, 9]
    assert second["n"] == 3
    assert store.delete_older_than(T0 + 100).points == 6
    assert _chunk_rows(store) == [] and store.latest() == []


def test_one_write_orders_each_series_alone_and_keeps_every_total(store):
    # Series in time order and out of it, side by side in one write: each is checked on its
    # own (the first point of a series may be older than the last of the one before it).
    a, b, c = key("a", MetricType.GAUGE), key("b", MetricType.GAUGE), key("c", MetricType.GAUGE)
    stamps_c = T0 + np.arange(250.0)
    written = store.write_batches(
        [
            batch(a, [T0 + 5, T0 + 6], [1.0, 2.0]),
            batch(b, [T0 + 1, T0 + 3, T0 + 2], [10.0, 30.0, 20.0]),
            batch(c, stamps_c, np.arange(250.0) * 0.1),
        ]
    )
    assert written == 255
    assert store.query_series("a").timestamps.tolist() == [T0 + 5, T0 + 6]
    got = store.query_series("b")
    assert got.timestamps.tolist() == [T0 + 1, T0 + 2, T0 + 3]
    assert got.values.tolist() == [10.0, 20.0, 30.0]
    assert store.query_series("c").values.tolist() == (np.arange(250.0) * 0.1).tolist()
    stats = {s.key.name: s for s in store.series_stats()}
    assert stats["b"].count == 3 and stats["b"].sum == 60.0
    assert stats["c"].count == 250 and stats["c"].sum == float((np.arange(250.0) * 0.1).sum())
