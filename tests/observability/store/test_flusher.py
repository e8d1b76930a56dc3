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
    assert [(a["alert_id"], a["state"]) for a in store.load_alerts()] == [("a", "resolved")]
    assert store.load_components() == [{"component_id": "k1", "ops": 3}]


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
    assert store.load_components() == [
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
    flusher = Flusher(
        store, source, retry_attempts=2, retry_backoff_s=0.001, install_signal_handlers=False
    )
    blocker = sqlite3.connect(sqlite_uri.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    _record(source, 50)
    stats = flusher.flush()
    assert stats.points_written == 0 and stats.points_dropped == 0
    assert stats.pending_points == 50
    assert stats.failed_writes == 3  # the first try and two retries
    assert "locked" in stats.last_error
    assert "keeping 50 pending point(s)" in caplog.text
    _record(source, 50, start=50)
    blocker.execute("ROLLBACK")
    blocker.close()
    stats = flusher.flush()
    assert stats.points_written == 100 and stats.pending_points == 0
    assert store.query_series("latency_s").values.tolist() == list(range(100))


def test_buffer_is_bounded_while_locked_and_drops_the_oldest(sqlite_uri, caplog):
    store, source = open_store(sqlite_uri, busy_timeout_ms=10), FakeCollector()
    flusher = Flusher(
        store, source, max_pending_points=120, retry_attempts=0, install_signal_handlers=False
    )
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


def test_full_database_drops_the_batch_with_a_clear_error(sqlite_uri, caplog):
    store, source = open_store(sqlite_uri), FakeCollector()

    @event.listens_for(store.engine, "connect")
    def _small(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + 2}")

    store.engine.dispose()
    flusher = Flusher(store, source, retry_backoff_s=0, install_signal_handlers=False)
    k = key("big", MetricType.GAUGE)
    for i in range(20_000):
        source.record(k, T0 + i, float(i))
    with caplog.at_level(logging.ERROR):
        stats = flusher.flush()
    assert stats.points_dropped == 20_000 and stats.points_written == 0
    assert stats.failed_writes == 1  # not retried: a full database stays full
    assert "dropped 20000 point(s)" in caplog.text and "is full" in caplog.text
    assert len(store.query_series("big")) == 0


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
        ({"retry_attempts": -1}, "retry_attempts=-1"),
    ],
)
def test_bad_settings_are_rejected(sqlite_uri, kwargs, fragment):
    with pytest.raises(ValidationError, match=fragment):
        Flusher(open_store(sqlite_uri), FakeCollector(), **kwargs)
