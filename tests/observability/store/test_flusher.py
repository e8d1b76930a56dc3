"""The flusher: batches from a source reach the store once; faults never reach the program."""

from __future__ import annotations

import logging
import signal
import sqlite3

import pytest
from sqlalchemy import event

from allele.errors import ValidationError
from allele.observability.store import open_store
from allele.observability.store.flusher import Flusher
from allele.observability.types import MetricType

from .conftest import FakeCollector, key

T0 = 1_700_000_000.0


class FakeAlertManager:
    """A fake of AlertManager.drain_changes: hands over queued alert changes once."""

    def __init__(self) -> None:
        self.changes: list[dict] = []

    def drain_changes(self) -> list[dict]:
        taken, self.changes = self.changes, []
        return taken


class BrokenCollector:
    def drain(self):
        raise RuntimeError("collector exploded")


def _record(source: FakeCollector, n: int, start: int = 0) -> None:
    k = key()
    for i in range(start, start + n):
        source.record(k, T0 + i, float(i))


def test_flush_moves_points_alerts_and_components_once(sqlite_uri):
    store, source, alerts = open_store(sqlite_uri), FakeCollector(), FakeAlertManager()
    flusher = Flusher(
        store,
        source,
        alert_manager=alerts,
        components=lambda: [{"component_id": "k1", "ops": 3}],
        install_signal_handlers=False,
    )
    _record(source, 5)
    alerts.changes = [{"alert_id": "a", "state": "firing"}, {"alert_id": "a", "state": "resolved"}]
    stats = flusher.flush()
    assert (stats.points_written, stats.alerts_written, stats.components_written) == (5, 1, 1)
    flusher.flush()
    assert store.query_series("latency_s").values.tolist() == [0, 1, 2, 3, 4]
    assert [(a.alert_id, a.state) for a in store.load_alerts()] == [("a", "resolved")]
    assert [c.to_dict() for c in store.load_components()] == [{"component_id": "k1", "ops": 3}]


def test_a_component_snapshot_handed_out_again_is_not_written_again(sqlite_uri):
    store = open_store(sqlite_uri)
    current = {"k1": {"component_id": "k1", "ops": 1}, "k2": {"component_id": "k2", "ops": 1}}
    flusher = Flusher(
        store,
        FakeCollector(),
        components=lambda: list(current.values()),
        install_signal_handlers=False,
    )
    assert flusher.flush().components_written == 2
    assert flusher.flush().components_written == 2  # the same objects: nothing written
    current["k2"] = {"component_id": "k2", "ops": 7}  # a new snapshot of one component
    assert flusher.flush().components_written == 3
    assert [c.to_dict() for c in store.load_components()] == [
        {"component_id": "k1", "ops": 1},
        {"component_id": "k2", "ops": 7},
    ]


def test_stop_flushes_what_the_background_thread_has_not(sqlite_uri):
    store, source = open_store(sqlite_uri), FakeCollector()
    flusher = Flusher(store, source, interval_s=3600, install_signal_handlers=False).start()
    assert flusher.running
    _record(source, 100)
    stats = flusher.stop()
    assert not flusher.running
    assert stats.points_written == 100
    assert len(store.query_series("latency_s")) == 100


def test_background_thread_flushes_every_interval(sqlite_uri):
    store, source = open_store(sqlite_uri), FakeCollector()
    flushed = []
    original = store.write_batches

    def spy(batches):
        written = original(batches)
        flushed.append(written)
        return written

    store.write_batches = spy  # type: ignore[method-assign]
    _record(source, 10)
    with Flusher(store, source, interval_s=0.01, install_signal_handlers=False):
        import time

        deadline = time.monotonic() + 30
        while not flushed and time.monotonic() < deadline:
            time.sleep(0.01)
    assert flushed[0] == 10


def test_start_installs_and_stop_restores_signal_handlers(sqlite_uri):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    flusher = Flusher(open_store(sqlite_uri), FakeCollector(), interval_s=3600).start()
    assert signal.getsignal(signal.SIGTERM) == flusher._on_signal
    flusher.stop()
    assert {s: signal.getsignal(s) for s in before} == before


def test_sigint_handler_flushes_then_raises_keyboard_interrupt(sqlite_uri):
    store, source = open_store(sqlite_uri), FakeCollector()
    flusher = Flusher(store, source, interval_s=3600).start()
    _record(source, 7)
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert len(store.query_series("latency_s")) == 7
    finally:
        flusher.stop()


def test_locked_database_keeps_the_batch_and_retries(sqlite_uri, caplog):
    store, source = open_store(sqlite_uri, busy_timeout_ms=10), FakeCollector()
    flusher = Flusher(store, source, install_signal_handlers=False)
    blocker = sqlite3.connect(sqlite_uri.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    _record(source, 50)
    stats = flusher.flush()
    assert stats.points_written == 0 and stats.points_dropped == 0
    assert stats.pending_points == 50 and stats.retrying
    assert stats.failed_writes == 1  # one attempt per flush: retries are the thread's job
    assert "locked" in stats.last_error
    assert "keeping 50 pending point(s)" in caplog.text
    _record(source, 50, start=50)
    blocker.execute("ROLLBACK")
    blocker.close()
    stats = flusher.flush()
    assert stats.points_written == 100 and stats.pending_points == 0 and not stats.retrying
    assert store.query_series("latency_s").values.tolist() == list(range(100))


def test_buffer_is_bounded_while_locked_and_drops_the_oldest(sqlite_uri, caplog):
    store, source = open_store(sqlite_uri, busy_timeout_ms=10), FakeCollector()
    flusher = Flusher(store, source, max_pending_points=120, install_signal_handlers=False)
    blocker = sqlite3.connect(sqlite_uri.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for start in (0, 100, 200):
        _record(source, 100, start=start)
        flusher.flush()
    assert flusher.stats.points_dropped == 180
    assert "dropped the 80 oldest point(s)" in caplog.text
    blocker.execute("ROLLBACK")
    blocker.close()
    stats = flusher.flush()
    assert stats.points_written == 120
    assert store.query_series("latency_s").values.tolist() == list(range(180, 300))


def test_full_database_keeps_the_points_until_there_is_room(sqlite_uri, caplog):
    store, source = open_store(sqlite_uri), FakeCollector()
    limit = {"pages": 2}

    @event.listens_for(store.engine, "connect")
    def _small(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + limit['pages']}")

    store.engine.dispose()
    flusher = Flusher(store, source, install_signal_handlers=False)
    k = key("big", MetricType.GAUGE)
    for i in range(20_000):
        source.record(k, T0 + i, float(i))
    with caplog.at_level(logging.WARNING):
        stats = flusher.flush()
    assert stats.points_dropped == 0 and stats.points_written == 0
    assert stats.pending_points == 20_000 and stats.retrying
    assert "is full" in caplog.text and "keeping 20000 pending point(s)" in caplog.text
    assert len(store.query_series("big")) == 0
    limit["pages"] = 10_000  # space is freed
    store.engine.dispose()
    stats = flusher.flush()
    assert stats.points_written == 20_000 and stats.pending_points == 0
    assert store.query_series("big").values.tolist() == [float(i) for i in range(20_000)]


def test_a_series_the_store_refuses_is_set_aside_once_and_never_blocks_the_others(
    sqlite_uri, caplog
):
    store, source = open_store(sqlite_uri), FakeCollector()
    flusher = Flusher(store, source, install_signal_handlers=False)
    poison = key("latency_s", MetricType.TIMER, op="\ud800")
    good = [key("latency_s", MetricType.TIMER, op=f"op{i}") for i in range(5)]
    for round_ in range(3):
        for k in [*good[:2], poison, *good[2:]]:
            source.record(k, T0 + round_, float(round_))
        with caplog.at_level(logging.ERROR):
            stats = flusher.flush()
    assert stats.points_written == 15 and stats.points_set_aside == 3
    assert stats.pending_points == 0
    assert caplog.text.count("refuses series") == 1  # logged once, not at every flush
    assert [b.key for b in flusher.set_aside()] == [poison] * 3
    for k in good:
        assert store.query_series("latency_s", dict(k.labels)).values.tolist() == [0, 1, 2]


def test_an_unreachable_store_is_opened_later_and_loses_nothing(sqlite_uri):
    from allele.observability.store.faults import StoreUnavailableError

    attempts = {"n": 0}

    def opener():
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise StoreUnavailableError("connection refused (a fake outage)")
        return open_store(sqlite_uri)

    source = FakeCollector()
    flusher = Flusher(opener, source, install_signal_handlers=False)
    _record(source, 10)
    assert flusher.flush().pending_points == 10 and flusher.store is None
    _record(source, 10, start=10)
    assert flusher.flush().pending_points == 20
    stats = flusher.flush()
    assert stats.points_written == 20 and stats.pending_points == 0 and attempts["n"] == 3
    assert flusher.store is not None
    assert flusher.store.query_series("latency_s").values.tolist() == list(range(20))


def test_a_stop_on_a_locked_store_answers_in_time_and_spools_for_the_next_start(
    sqlite_uri, tmp_path
):
    store, source = open_store(sqlite_uri, busy_timeout_ms=50), FakeCollector()
    spool = tmp_path / "spool"
    flusher = Flusher(store, source, spool_dir=spool, install_signal_handlers=False).start()
    blocker = sqlite3.connect(sqlite_uri.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    _record(source, 40)
    stats = flusher.stop()
    assert stats.points_spooled == 40 and stats.points_unsaved == 0
    assert len(list(spool.iterdir())) == 1
    blocker.execute("ROLLBACK")
    blocker.close()
    again = Flusher(store, FakeCollector(), spool_dir=spool, install_signal_handlers=False)
    stats = again.flush()
    assert stats.points_unspooled == 40 and stats.points_written == 40
    assert store.query_series("latency_s").values.tolist() == list(range(40))
    assert list(spool.iterdir()) == []


def test_a_failing_collector_is_logged_and_the_flush_goes_on(sqlite_uri, caplog):
    store = open_store(sqlite_uri)
    flusher = Flusher(
        store,
        BrokenCollector(),
        components=lambda: [{"component_id": "c"}],
        install_signal_handlers=False,
    )
    stats = flusher.flush()
    assert "draining the metrics collector failed" in caplog.text
    assert stats.components_written == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"interval_s": 0}, "interval_s=0"),
        ({"max_pending_points": 0}, "max_pending_points=0"),
        ({"interval_s": 1e-300}, r"interval_s=1e-300 must be a finite number of seconds >= 0.01"),
        ({"retry_backoff_s": float("nan")}, "retry_backoff_s=nan"),
        ({"shutdown_timeout_s": 0}, "shutdown_timeout_s=0"),
    ],
)
def test_bad_settings_are_rejected(sqlite_uri, kwargs, fragment):
    with pytest.raises(ValidationError, match=fragment):
        Flusher(open_store(sqlite_uri), FakeCollector(), **kwargs)
