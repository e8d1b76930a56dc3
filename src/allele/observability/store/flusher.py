"""The flusher: moves collected points, alert changes and component snapshots into a store.

A daemon thread wakes every ``interval_s`` and writes everything gathered since the previous
flush in one batch, so the monitored program never waits on the database.

Durability, stated exactly:

* ``stop()``, ``KeyboardInterrupt`` (SIGINT), SIGTERM and a normal interpreter exit (atexit)
  flush everything recorded up to that moment. The signal handlers flush, then hand the signal
  to whatever handler was installed before (the default SIGINT handler raises
  ``KeyboardInterrupt``; the default SIGTERM action ends the process).
* A crash (SIGKILL, power loss, ``os._exit``) loses what was recorded after the last flush
  began: at most one flush interval, plus the duration of a write in progress.
* A locked database is retried with exponential backoff within a flush and again at the next
  flush; meanwhile points wait in a buffer bounded by ``max_pending_points``. When the buffer
  overflows, the oldest points are dropped and counted in ``stats.points_dropped``.
* A write the database refuses for good (full disk, broken schema) drops that batch, counts the
  drop and logs an error naming the store; the monitored program keeps running.

Compaction: every ``compact_interval_s`` (default 10 minutes) the background thread, right after
a flush, merges the small chunks that ended more than ``compact_after_s`` ago (default one hour)
with ``Store.compact`` -- at most ``compact_max_chunks`` chunk rows per run, so a run is short
and a backlog (a day of one-point chunks) is worked off over a few runs. Compaction keeps every
point exactly (see ``repository.compaction``); a failed run is logged and counted, the next one
tries again. ``compact_interval_s=None`` turns it off.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, Protocol

import numpy as np

from allele.errors import StoreError, ValidationError
from allele.observability.store.faults import StoreLockedError
from allele.observability.store.repository.compaction import COMPACT_MAX_CHUNKS, Compaction
from allele.observability.store.repository.store import Store
from allele.observability.types import SeriesBatch

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PointSource(Protocol):
    """Anything that hands over the points recorded since its previous ``drain()``."""

    def drain(self) -> list[SeriesBatch]: ...


class AlertSource(Protocol):
    """Anything that hands over the alerts whose state changed since the previous call."""

    def drain_changes(self) -> list[Any]: ...


ComponentSource = Callable[[], Iterable[Any]]


@dataclass(frozen=True, slots=True)
class FlushStats:
    """Counters of a flusher since it was created."""

    flushes: int = 0
    points_written: int = 0
    alerts_written: int = 0
    components_written: int = 0
    points_dropped: int = 0
    failed_writes: int = 0
    pending_points: int = 0
    last_error: str | None = None
    compactions: int = 0
    chunks_compacted: int = 0
    failed_compactions: int = 0


class Flusher:
    """Writes ``collector`` (and optionally alert and component) data to ``store`` in batches.

    >>> flusher = Flusher(store, collector, interval_s=1.0).start()   # doctest: +SKIP
    >>> ...                                                             # record as usual
    >>> flusher.stop()                                                  # flushes the rest

    ``components`` is a callable returning the current component snapshots (objects with
    ``to_dict()`` or dicts); they are upserted at every flush.

    Creating a flusher attaches it to ``collector`` as the consumer of its points (it calls
    ``collector.enable_drain()`` when the collector has one): a ``MetricsCollector`` queues
    points for draining only from then on (see its module docstring).
    """

    def __init__(
        self,
        store: Store,
        collector: PointSource,
        alert_manager: AlertSource | None = None,
        components: ComponentSource | None = None,
        interval_s: float = 1.0,
        *,
        max_pending_points: int = 1_000_000,
        retry_attempts: int = 3,
        retry_backoff_s: float = 0.05,
        install_signal_handlers: bool = True,
        compact_interval_s: float | None = 600.0,
        compact_after_s: float = 3600.0,
        compact_max_chunks: int = COMPACT_MAX_CHUNKS,
    ) -> None:
        if not (isinstance(interval_s, int | float) and 0 < interval_s < float("inf")):
            raise ValidationError(f"interval_s={interval_s!r} must be a positive number of seconds")
        if not isinstance(max_pending_points, int) or max_pending_points < 1:
            raise ValidationError(f"max_pending_points={max_pending_points!r} must be >= 1")
        if not isinstance(retry_attempts, int) or retry_attempts < 0:
            raise ValidationError(f"retry_attempts={retry_attempts!r} must be >= 0")
        if not retry_backoff_s >= 0:
            raise ValidationError(f"retry_backoff_s={retry_backoff_s!r} must be >= 0")
        if compact_interval_s is not None and not (
            isinstance(compact_interval_s, int | float) and 0 < compact_interval_s < float("inf")
        ):
            raise ValidationError(
                f"compact_interval_s={compact_interval_s!r} must be a positive number of seconds "
                "or None (no compaction)"
            )
        if not (isinstance(compact_after_s, int | float) and 0 <= compact_after_s < float("inf")):
            raise ValidationError(f"compact_after_s={compact_after_s!r} must be seconds >= 0")
        if not isinstance(compact_max_chunks, int) or compact_max_chunks < 2:
            raise ValidationError(f"compact_max_chunks={compact_max_chunks!r} must be >= 2")
        self._compact_interval = compact_interval_s
        self._compact_after = float(compact_after_s)
        self._compact_max_chunks = compact_max_chunks
        self._store = store
        self._collector = collector
        self._alert_manager = alert_manager
        self._components = components
        self._interval = float(interval_s)
        self._max_pending = max_pending_points
        self._retries = retry_attempts
        self._backoff = float(retry_backoff_s)
        self._install_signals = install_signal_handlers
        # Re-entrant: a signal handler may run flush() on a thread that is already flushing.
        self._lock = threading.RLock()
        self._flushing = False
        self._pending: list[SeriesBatch] = []
        self._pending_points = 0
        self._pending_alerts: dict[str, dict[str, Any]] = {}
        self._pending_components: list[Any] = []
        # The snapshot object last written per component id: a source that hands out the same
        # object again (the engine between two collections) is not written again.
        self._written_components: dict[str | None, Any] = {}
        self._stats = FlushStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous_handlers: dict[int, Any] = {}
        enable_drain = getattr(collector, "enable_drain", None)
        if callable(enable_drain):
            enable_drain()

    @property
    def interval_s(self) -> float:
        """Seconds between background flushes."""
        return self._interval

    @property
    def stats(self) -> FlushStats:
        """A snapshot of the flusher's counters."""
        with self._lock:
            return replace(self._stats, pending_points=self._pending_points)

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Flusher:
        """Start the background thread and the signal and atexit hooks; returns ``self``."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="allele-flusher", daemon=True)
        self._thread.start()
        if self._install_signals and threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        atexit.register(self._at_exit)
        return self

    def stop(self, timeout: float | None = None) -> FlushStats:
        """Stop the thread, restore the signal handlers and flush what remains."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._restore_signal_handlers()
        atexit.unregister(self._at_exit)
        return self.flush()

    def __enter__(self) -> Flusher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        every = self._compact_interval
        next_compaction = float("inf") if every is None else time.monotonic() + every
        while not self._stop.wait(self._interval):
            self.flush()
            if every is not None and time.monotonic() >= next_compaction:
                self.compact()
                next_compaction = time.monotonic() + every

    def compact(self) -> Compaction | None:
        """Merge the store's small chunks older than ``compact_after_s`` now (at most
        ``compact_max_chunks`` rows); never raises. Returns what was done, None on failure."""
        try:
            done = self._store.compact(
                time.time() - self._compact_after, max_chunks=self._compact_max_chunks
            )
        except Exception as exc:  # the next run tries again; monitoring carries on
            log.warning("compacting the store's chunks failed: %s", exc)
            with self._lock:
                self._stats = replace(
                    self._stats,
                    failed_compactions=self._stats.failed_compactions + 1,
                    last_error=str(exc),
                )
            return None
        with self._lock:
            self._stats = replace(
                self._stats,
                compactions=self._stats.compactions + 1,
                chunks_compacted=self._stats.chunks_compacted + done.chunks_merged,
            )
        return done

    def _at_exit(self) -> None:
        self.stop()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.flush()
        previous = self._previous_handlers.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # The default action (end the process) is not a Python callable: restore it and
            # deliver the signal again so the process ends exactly as it would have.
            self._restore_signal_handlers()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous_handlers.items():
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous_handlers.clear()

    # -- flushing -------------------------------------------------------------------------

    def flush(self) -> FlushStats:
        """Write everything gathered so far now; never raises. Returns the counters."""
        with self._lock:
            if self._flushing:
                # Re-entered from a signal handler on the flushing thread: the outer flush
                # is already writing.
                return self.stats
            self._flushing = True
            try:
                self._gather()
                self._write_points()
                self._write_alerts()
                self._write_components()
                self._stats = replace(self._stats, flushes=self._stats.flushes + 1)
            except Exception as exc:  # monitoring must never take the program down
                log.exception("flushing observability data failed")
                self._stats = replace(self._stats, last_error=repr(exc))
            finally:
                self._flushing = False
            return self.stats

    def _gather(self) -> None:
        try:
            batches = self._collector.drain()
        except Exception:
            log.exception("draining the metrics collector failed")
            batches = []
        for batch in batches:
            if len(batch.values):
                self._pending.append(batch)
                self._pending_points += len(batch.values)
        if self._alert_manager is not None:
            try:
                changed = self._alert_manager.drain_changes()
            except Exception:
                log.exception("draining alert changes failed")
                changed = []
            for alert in changed:
                payload = alert.to_dict() if hasattr(alert, "to_dict") else dict(alert)
                # Only the latest state of an alert needs writing.
                self._pending_alerts[str(payload.get("alert_id"))] = payload
        if self._components is not None:
            try:
                self._pending_components = list(self._components())
            except Exception:
                log.exception("reading component snapshots failed")

    def _write_points(self) -> None:
        if not self._pending:
            return
        written = self._with_retry("points", lambda: self._store.write_batches(self._pending))
        if written is not None:
            self._pending.clear()
            self._pending_points = 0
            self._stats = replace(self._stats, points_written=self._stats.points_written + written)
        self._bound_pending()

    def _write_alerts(self) -> None:
        if not self._pending_alerts:
            return
        alerts = list(self._pending_alerts.values())
        written = self._with_retry("alerts", lambda: self._store.save_alerts(alerts))
        if written is not None:
            self._pending_alerts.clear()
            self._stats = replace(self._stats, alerts_written=self._stats.alerts_written + written)

    def _write_components(self) -> None:
        if not self._pending_components:
            return
        done = self._written_components
        snapshot = [
            item for item in self._pending_components if done.get(_component_id(item)) is not item
        ]
        if not snapshot:
            self._pending_components = []
            return
        written = self._with_retry("components", lambda: self._store.upsert_components(snapshot))
        if written is not None:
            for item in snapshot:
                done[_component_id(item)] = item
            self._pending_components = []
            self._stats = replace(
                self._stats, components_written=self._stats.components_written + written
            )

    def _with_retry(self, what: str, write: Callable[[], int]) -> int | None:
        """``write()``'s result; ``None`` when the data stays pending (locked) or was dropped."""
        for attempt in range(self._retries + 1):
            try:
                return write()
            except StoreLockedError as exc:
                self._failed(exc)
                if attempt < self._retries:
                    time.sleep(self._backoff * 2**attempt)
            except (StoreError, ValidationError) as exc:
                self._failed(exc)
                self._drop(what, exc)
                return None
        log.warning(
            "the store is locked; keeping %d pending point(s) for the next flush (%s)",
            self._pending_points,
            self._stats.last_error,
        )
        return None

    def _failed(self, exc: Exception) -> None:
        self._stats = replace(
            self._stats, failed_writes=self._stats.failed_writes + 1, last_error=str(exc)
        )

    def _drop(self, what: str, exc: Exception) -> None:
        if what == "points":
            dropped = self._pending_points
            self._pending.clear()
            self._pending_points = 0
            self._stats = replace(self._stats, points_dropped=self._stats.points_dropped + dropped)
            log.error("dropped %d point(s): %s", dropped, exc)
        elif what == "alerts":
            log.error("dropped %d alert change(s): %s", len(self._pending_alerts), exc)
            self._pending_alerts.clear()
        else:
            log.error("dropped %d component snapshot(s): %s", len(self._pending_components), exc)
            self._pending_components = []

    def _bound_pending(self) -> None:
        excess = self._pending_points - self._max_pending
        if excess <= 0:
            return
        dropped = 0
        while excess > 0:
            oldest = self._pending[0]
            size = len(oldest.values)
            if size <= excess:
                self._pending.pop(0)
                cut = size
            else:
                # Keep the newest points of a partly dropped batch.
                self._pending[0] = SeriesBatch(
                    oldest.key,
                    np.asarray(oldest.timestamps)[excess:],
                    np.asarray(oldest.values)[excess:],
                )
                cut = excess
            excess -= cut
            dropped += cut
        self._pending_points -= dropped
        self._stats = replace(self._stats, points_dropped=self._stats.points_dropped + dropped)
        log.error(
            "the pending buffer is full (%d points max); dropped the %d oldest point(s)",
            self._max_pending,
            dropped,
        )


def _component_id(item: Any) -> str | None:
    """The id of a component snapshot (an object with ``component_id`` or a mapping)."""
    found = getattr(item, "component_id", None)
    if found is None and isinstance(item, Mapping):
        found = item.get("component_id")
    return None if found is None else str(found)
