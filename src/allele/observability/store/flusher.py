"""The flusher: moves collected points, alert changes and component snapshots into a store.

A daemon thread wakes every ``interval_s`` and writes everything gathered since the previous
flush in one batch, so the monitored program never waits on the database.

Durability, stated exactly:

* ``stop()``, ``KeyboardInterrupt`` (SIGINT), SIGTERM and a normal interpreter exit (atexit)
  write everything recorded up to that moment. The signal handlers flush, then hand the signal
  to whatever handler was installed before (the default SIGINT handler raises
  ``KeyboardInterrupt``; the default SIGTERM action ends the process). A stop takes at most
  ``shutdown_timeout_s`` (1 s) whatever the store does: what it cannot write by then goes to
  the spool (``store.spool``), which the next flusher on the same store writes first; the
  stop's ``FlushStats`` says how many points were spooled and how many could not be kept.
* A crash (SIGKILL, power loss, ``os._exit``) loses what was recorded after the last flush
  began: at most one flush interval, plus the duration of a write in progress.
* Transient failures -- a locked database, a database that cannot be reached (a restart, a
  network outage, or not up yet when the program starts), a full disk -- keep the points
  pending and are retried from the background thread with exponential backoff
  (``retry_backoff_s`` doubled per failure, at most ``max_backoff_s``); nothing is dropped
  unless the pending points pass ``max_pending_points``, then the oldest are dropped and
  counted in ``stats.points_dropped``. No flush waits on the database while holding what
  ``stats`` reads, so a status read answers at once whatever the store does.
* A batch the store refuses for good (a label or value its driver cannot encode) is found by
  splitting the write in halves, set aside (``set_aside()``), counted in
  ``stats.points_set_aside`` and logged once per series; every other series is written.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import numpy as np

from allele.errors import ValidationError
from allele.observability.intervals import (
    MIN_FLUSH_INTERVAL_S,
    MIN_POLL_S,
    MIN_TIMEOUT_S,
    check_seconds,
)
from allele.observability.store.faults import mask_secrets
from allele.observability.store.flush_writes import SET_ASIDE_KEEP as SET_ASIDE_KEEP  # re-exported
from allele.observability.store.flush_writes import StoreWrites
from allele.observability.store.repository.compaction import COMPACT_MAX_CHUNKS, Compaction
from allele.observability.store.repository.store import Store
from allele.observability.store.spool import Spool
from allele.observability.types import SeriesBatch, SeriesKey

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PointSource(Protocol):
    """Anything that hands over the points recorded since its previous ``drain()``."""

    def drain(self) -> list[SeriesBatch]: ...


class AlertSource(Protocol):
    """Anything that hands over the alerts whose state changed since the previous call."""

    def drain_changes(self) -> list[Any]: ...


ComponentSource = Callable[[], Iterable[Any]]
StoreOpener = Callable[[], Store]


@dataclass(frozen=True, slots=True)
class FlushStats:
    """Counters of a flusher since it was created.

    ``points_dropped`` counts points lost to the pending cap; ``points_set_aside`` points of
    batches the store refused for good; ``points_spooled`` points a stop could not write and
    left in the spool for the next start; ``points_unsaved`` points a stop could neither write
    nor spool (lost). ``retrying`` is true while a transient failure is being retried.
    """

    flushes: int = 0
    points_written: int = 0
    alerts_written: int = 0
    components_written: int = 0
    points_dropped: int = 0
    points_set_aside: int = 0
    points_spooled: int = 0
    points_unspooled: int = 0
    points_unsaved: int = 0
    failed_writes: int = 0
    pending_points: int = 0
    retrying: bool = False
    last_error: str | None = None
    compactions: int = 0
    chunks_compacted: int = 0
    failed_compactions: int = 0


class Flusher(StoreWrites):
    """Writes ``collector`` (and optionally alert and component) data to ``store`` in batches.

    >>> flusher = Flusher(store, collector, interval_s=1.0).start()   # doctest: +SKIP
    >>> ...                                                             # record as usual
    >>> flusher.stop()                                                  # flushes the rest

    ``store`` is a ``Store`` or a function that opens one: a store that cannot be reached yet
    is opened in the background, with backoff, while points wait. ``components`` is a callable
    returning the current component snapshots (objects with ``to_dict()`` or dicts); they are
    upserted at every flush. ``spool_dir`` is where a stop leaves what it could not write (see
    ``store.spool``); None keeps no spool.

    Creating a flusher attaches it to ``collector`` as the consumer of its points (it calls
    ``collector.enable_drain()`` when the collector has one): a ``MetricsCollector`` queues
    points for draining only from then on (see its module docstring).
    """

    def __init__(
        self,
        store: Store | StoreOpener,
        collector: PointSource,
        alert_manager: AlertSource | None = None,
        components: ComponentSource | None = None,
        interval_s: float = 1.0,
        *,
        max_pending_points: int = 1_000_000,
        retry_backoff_s: float = 0.25,
        max_backoff_s: float = 5.0,
        shutdown_timeout_s: float = 1.0,
        spool_dir: str | Path | None = None,
        install_signal_handlers: bool = True,
        compact_interval_s: float | None = 600.0,
        compact_after_s: float = 3600.0,
        compact_max_chunks: int = COMPACT_MAX_CHUNKS,
    ) -> None:
        self._interval = check_seconds(interval_s, "interval_s", minimum=MIN_FLUSH_INTERVAL_S)
        if isinstance(max_pending_points, bool) or not isinstance(max_pending_points, int):
            raise ValidationError(f"max_pending_points={max_pending_points!r} must be >= 1")
        if max_pending_points < 1:
            raise ValidationError(f"max_pending_points={max_pending_points!r} must be >= 1")
        self._backoff = check_seconds(retry_backoff_s, "retry_backoff_s", minimum=MIN_POLL_S)
        self._max_backoff = check_seconds(max_backoff_s, "max_backoff_s", minimum=self._backoff)
        self._shutdown_timeout = check_seconds(
            shutdown_timeout_s, "shutdown_timeout_s", minimum=MIN_TIMEOUT_S
        )
        if compact_interval_s is not None:
            check_seconds(compact_interval_s, "compact_interval_s", minimum=MIN_FLUSH_INTERVAL_S)
        check_seconds(compact_after_s, "compact_after_s", minimum=0.0)
        if not isinstance(compact_max_chunks, int) or compact_max_chunks < 2:
            raise ValidationError(f"compact_max_chunks={compact_max_chunks!r} must be >= 2")
        self._compact_interval = compact_interval_s
        self._compact_after = float(compact_after_s)
        self._compact_max_chunks = compact_max_chunks
        if isinstance(store, Store):
            self._store: Store | None = store
            self._opener: StoreOpener | None = None
        elif callable(store):
            self._store, self._opener = None, store
        else:
            raise ValidationError(f"store={store!r} must be a Store or a function opening one")
        self._collector = collector
        self._alert_manager = alert_manager
        self._components = components
        self._max_pending = max_pending_points
        self._spool = None if spool_dir is None else Spool(spool_dir)
        self._spooled: list[Path] = []  # claimed spool files whose points are pending
        self._spool_taken = False
        self._install_signals = install_signal_handlers
        # Serialises flushes. Re-entrant: a signal handler may run on a thread that is already
        # flushing. Nothing that only reads (``stats``) takes it.
        self._lock = threading.RLock()
        self._flushing = False
        self._pending: list[SeriesBatch] = []
        self._pending_points = 0
        self._pending_alerts: dict[str, dict[str, Any]] = {}
        self._pending_components: list[Any] = []
        # The snapshot object last written per component id: a source that hands out the same
        # object again (the engine between two collections) is not written again.
        self._written_components: dict[str | None, Any] = {}
        self._poisoned: set[SeriesKey] = set()
        self._set_aside: list[SeriesBatch] = []
        self._failures = 0  # consecutive transient failures
        self._retry_at = 0.0  # monotonic time before which no write is tried again
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
    def store(self) -> Store | None:
        """The store written to (None while one that could not be reached yet is retried)."""
        return self._store

    @property
    def stats(self) -> FlushStats:
        """A snapshot of the flusher's counters; never waits for a flush in progress."""
        return replace(
            self._stats, pending_points=self._pending_points, retrying=self._failures > 0
        )

    def set_aside(self) -> list[SeriesBatch]:
        """The latest batches the store refused for good (at most ``SET_ASIDE_KEEP``)."""
        return list(self._set_aside)

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Flusher:
        """Start the background thread and the signal and atexit hooks; returns ``self``.

        Signal handlers can only be installed from the main thread: a caller starting the
        flusher elsewhere (``asyncio.to_thread``) calls ``install_signal_handlers()`` from the
        main thread afterwards."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="allele-flusher", daemon=True)
        self._thread.start()
        if self._install_signals:
            self.install_signal_handlers()
        atexit.register(self._at_exit)
        return self

    def install_signal_handlers(self) -> bool:
        """Flush on SIGTERM and SIGINT from now on; returns False off the main thread (where
        Python cannot install handlers) and True when installed (or already installed)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in _SIGNALS:
            current = signal.getsignal(signum)
            if current != self._on_signal:
                self._previous_handlers[signum] = current
                signal.signal(signum, self._on_signal)
        return True

    def stop(self, timeout: float | None = None) -> FlushStats:
        """Stop the thread, restore the signal handlers and write what remains, within
        ``timeout`` seconds (default ``shutdown_timeout_s``); what cannot be written in time
        goes to the spool. Returns the counters (``points_spooled``, ``points_unsaved``)."""
        budget = self._shutdown_timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + budget
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        self._restore_signal_handlers()
        atexit.unregister(self._at_exit)
        self._final_flush(deadline)
        return self.stats

    def __enter__(self) -> Flusher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        every = self._compact_interval
        next_compaction = float("inf") if every is None else time.monotonic() + every
        next_flush = time.monotonic() + self._interval
        while True:
            now = time.monotonic()
            wake = next_flush
            if self._failures:
                wake = min(wake, self._retry_at)
            if self._stop.wait(max(0.0, wake - now)):
                return
            self.flush()
            if time.monotonic() >= next_flush:
                next_flush = time.monotonic() + self._interval
            if every is not None and time.monotonic() >= next_compaction and not self._failures:
                self.compact()
                next_compaction = time.monotonic() + every

    def compact(self) -> Compaction | None:
        """Merge the store's small chunks older than ``compact_after_s`` now (at most
        ``compact_max_chunks`` rows); never raises. Returns what was done, None on failure."""
        store = self._store
        if store is None:
            return None
        try:
            done = store.compact(
                time.time() - self._compact_after, max_chunks=self._compact_max_chunks
            )
        except Exception as exc:  # the next run tries again; monitoring carries on
            log.warning("compacting the store's chunks failed: %s", mask_secrets(str(exc)))
            self._stats = replace(
                self._stats,
                failed_compactions=self._stats.failed_compactions + 1,
                last_error=mask_secrets(str(exc)),
            )
            return None
        self._stats = replace(
            self._stats,
            compactions=self._stats.compactions + 1,
            chunks_compacted=self._stats.chunks_compacted + done.chunks_merged,
        )
        return done

    def _at_exit(self) -> None:
        self.stop()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous_handlers.get(signum, signal.SIG_DFL)
        ends = not callable(previous) and previous != signal.SIG_IGN
        # A signal that ends the process gets the stop's bounded write and the spool; one
        # that lets the program go on (KeyboardInterrupt may be caught) only flushes.
        self._final_flush(time.monotonic() + self._shutdown_timeout, spool=ends)
        if callable(previous):
            previous(signum, frame)
        elif ends:
            # The default action (end the process) is not a Python callable: restore it and
            # deliver the signal again so the process ends exactly as it would have.
            self._restore_signal_handlers()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def restore_signal_handlers(self) -> None:
        """Give SIGTERM and SIGINT back to the handlers they had before ``start`` (a no-op off
        the main thread: a stop run elsewhere, by ``asyncio.to_thread``, calls it after)."""
        self._restore_signal_handlers()

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous_handlers.items():
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous_handlers.clear()

    # -- flushing -------------------------------------------------------------------------

    def flush(self) -> FlushStats:
        """Write everything gathered so far now (one attempt: a transient failure keeps it
        pending for the background retry); never raises. Returns the counters."""
        with self._lock:
            self._flush_locked(force=True)
        return self.stats

    def _flush_locked(self, force: bool) -> None:
        if self._flushing:
            # Re-entered from a signal handler on the flushing thread: the outer flush is
            # already writing.
            return
        self._flushing = True
        try:
            self._gather()
            if force or time.monotonic() >= self._retry_at:
                self._write_all()
            self._stats = replace(self._stats, flushes=self._stats.flushes + 1)
        except Exception as exc:  # monitoring must never take the program down
            log.exception("flushing observability data failed")
            self._stats = replace(self._stats, last_error=mask_secrets(repr(exc)))
        finally:
            self._flushing = False

    def _final_flush(self, deadline: float, spool: bool = True) -> None:
        """Write what remains by ``deadline``; spool what could not be written (``spool``).

        The write runs on a helper thread that the caller waits for until the deadline: a
        flush in progress on the background thread, or a database that makes the write wait,
        cannot hold the caller past it."""
        finished = threading.Event()

        def work() -> None:
            try:
                if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    return
                try:
                    self._flush_locked(force=True)
                    if spool and (self._pending or self._failures):
                        self._spool_pending()
                finally:
                    self._lock.release()
            finally:
                finished.set()

        helper = threading.Thread(target=work, name="allele-flusher-stop", daemon=True)
        helper.start()
        if not finished.wait(max(0.0, deadline - time.monotonic())):
            left = self._pending_points
            self._stats = replace(self._stats, points_unsaved=self._stats.points_unsaved + left)
            log.error(
                "stopping the flusher: the store did not answer within the shutdown timeout; "
                "%d pending point(s) were neither written nor spooled",
                left,
            )

    def _spool_pending(self) -> None:
        if not self._pending:
            return
        points = self._pending_points
        if self._spool is None:
            self._stats = replace(self._stats, points_unsaved=self._stats.points_unsaved + points)
            log.error("stopping: %d point(s) could not be written and no spool is set", points)
            return
        try:
            saved = self._spool.save(self._pending)
        except OSError as exc:
            self._stats = replace(self._stats, points_unsaved=self._stats.points_unsaved + points)
            log.error(
                "stopping: %d point(s) could not be written nor spooled to %s: %s",
                points,
                self._spool.directory,
                exc,
            )
            return
        self._pending.clear()
        self._pending_points = 0
        # The spool files this run had taken are now in the new file (or written).
        for path in self._spooled:
            Spool.done(path)
        self._spooled.clear()
        self._stats = replace(self._stats, points_spooled=self._stats.points_spooled + saved)
        log.warning(
            "stopping: the store could not take %d point(s) (%s); they are spooled in %s for "
            "the next start",
            saved,
            self._stats.last_error,
            self._spool.directory,
        )

    def _gather(self) -> None:
        if self._spool is not None and not self._spool_taken:
            self._spool_taken = True
            for path, batches in self._spool.take():
                self._spooled.append(path)
                self._add_pending(batches)
                self._stats = replace(
                    self._stats,
                    points_unspooled=self._stats.points_unspooled
                    + sum(len(b.values) for b in batches),
                )
        try:
            batches = self._collector.drain()
        except Exception:
            log.exception("draining the metrics collector failed")
            batches = []
        self._add_pending(batches)
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
        self._bound_pending()

    def _add_pending(self, batches: Iterable[SeriesBatch]) -> None:
        for batch in batches:
            if len(batch.values):
                self._pending.append(batch)
                self._pending_points += len(batch.values)

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
