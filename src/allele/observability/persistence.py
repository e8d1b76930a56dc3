"""The engine's persistence: opening the store, its ``Flusher`` (started, paused, stopped),
and the webhooks' outbox in the store (undelivered events kept at a stop, resumed at a start).

``ObservabilityEngine`` is built from this mixin; the engine's ``__init__`` owns the state it
uses (``_flusher``, ``_store``, ``_store_uri``, ``_persistence``, ``_last_flush_stats``).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from allele.observability.alerts import AlertManager
from allele.observability.collector import MetricsCollector
from allele.observability.config import ObservabilitySettings
from allele.observability.notify import WebhookNotifier
from allele.observability.redact import mask_secrets as safe_uri
from allele.observability.types import ComponentMetrics, SeriesBatch

# The engine's logger: these are the engine's messages.
logger = logging.getLogger("allele.observability.engine")

#: How long a stop gives queued notifications before leaving them in the store.
NOTIFY_STOP_S = 0.5
#: SQLite busy timeout of the engine's store: a write waits this long for another process's
#: lock, then the flusher keeps the points pending and retries in the background.
STORE_BUSY_TIMEOUT_MS = 250


class EnginePersistence:
    """The store and flusher behind an engine, and the webhooks that keep their outbox there."""

    # Set by ObservabilityEngine.__init__.
    settings: ObservabilitySettings
    collector: MetricsCollector
    alerts: AlertManager
    _flusher: Any
    _store: Any
    _store_uri: str | None
    _persistence: str
    _last_flush_stats: Any
    # Defined by ObservabilityEngine.
    component_snapshots: Callable[[], list[ComponentMetrics]]
    _push_recorders: Callable[[], None]

    def _webhook_stats(self) -> dict[str, int] | None:
        """Delivery counts summed over the webhook notifiers (None without a webhook)."""
        totals: dict[str, int] | None = None
        for notifier in self.alerts.notifiers:
            if isinstance(notifier, WebhookNotifier):
                totals = totals or {}
                for name, count in notifier.stats().items():
                    totals[name] = totals.get(name, 0) + count
        return totals

    def _start_persistence(self) -> None:
        uri = self.settings.store_uri
        if self._flusher is not None:  # kept open by stop(keep_store=True)
            if uri == self._store_uri:
                self._flusher.start()
                self._persistence = f"active: {safe_uri(uri)}"
                self._resume_notifications()
                return
            self._stop_persistence()  # the store URI changed meanwhile: open the new one
        if not uri:
            self._persistence = "disabled"
            return
        try:
            from allele.observability.store import open_store
            from allele.observability.store.faults import TransientStoreError
            from allele.observability.store.flusher import Flusher
            from allele.observability.store.spool import spool_dir_for
        except ImportError as exc:
            self._persistence = f"unavailable: {exc}"
            logger.warning("persistence unavailable (%s); keeping metrics in memory", exc)
            return
        shown = safe_uri(uri)

        def opener() -> Any:
            return open_store(uri, busy_timeout_ms=STORE_BUSY_TIMEOUT_MS)

        try:
            target: Any = opener()
            self._store = target
        except TransientStoreError as exc:
            # Not reachable yet (a database still starting, an outage): the flusher opens it
            # in the background with backoff while points wait.
            target = opener
            logger.warning(
                "the store %s cannot be reached yet (%s); retrying", shown, safe_uri(str(exc))
            )
        except Exception as exc:
            self._persistence = f"unavailable: {safe_uri(str(exc))}"
            logger.warning(
                "cannot persist to %s (%s); keeping metrics in memory", shown, safe_uri(str(exc))
            )
            return
        try:
            self._flusher = Flusher(
                target,
                _PushedPoints(self),
                alert_manager=self.alerts,
                components=self.component_snapshots,
                interval_s=self.settings.flush_interval,
                spool_dir=spool_dir_for(uri),
            )
            self._flusher.start()
            self._store_uri = uri
            for notifier in self.alerts.notifiers:  # the router keeps silences and its log there
                attach = getattr(notifier, "attach_store", None)
                if callable(attach):
                    attach(self._store)
        except Exception as exc:
            self._flusher = None
            self._close_store()
            self._persistence = f"unavailable: {safe_uri(str(exc))}"
            logger.warning(
                "cannot persist to %s (%s); keeping metrics in memory", shown, safe_uri(str(exc))
            )
            return
        self._persistence = f"active: {shown}"
        self._resume_notifications()

    def _webhooks(self) -> list[WebhookNotifier]:
        return [n for n in self.alerts.notifiers if isinstance(n, WebhookNotifier)]

    def _resume_notifications(self) -> None:
        """Give the webhooks the store as their outbox and queue what a previous stop left."""
        store = self._current_store()
        if store is None:
            return
        for notifier in self._webhooks():
            notifier.outbox = store
            notifier.resume()

    def _current_store(self) -> Any:
        flusher = self._flusher
        store = getattr(flusher, "store", None) if flusher is not None else None
        return store if store is not None else self._store

    def _stop_notifiers(self) -> None:
        """Deliver queued webhook events for a moment, then leave the rest in the store."""
        store = self._current_store()
        for notifier in self.alerts.notifiers:
            if isinstance(notifier, WebhookNotifier):
                if store is not None and notifier.outbox is None:
                    notifier.outbox = store
                notifier.suspend(NOTIFY_STOP_S)
            else:
                flush = getattr(notifier, "flush", None)
                if callable(flush):
                    flush(NOTIFY_STOP_S)

    def flush(self) -> Any:
        """Write everything recorded so far to the store now, what the recorders hold
        included (as every write of the flusher does); returns the flusher's ``FlushStats``,
        or None without persistence."""
        flusher = self._flusher
        return None if flusher is None else flusher.flush()

    def _pause_persistence(self) -> None:
        if self._flusher is None:
            return
        try:
            # Ends its thread after writing everything recorded so far.
            self._last_flush_stats = self._flusher.stop()
        except Exception:
            logger.exception("stopping the flusher failed")
        if self._persistence.startswith("active"):
            self._persistence = f"paused: {safe_uri(self._store_uri or '')}"

    def _stop_persistence(self) -> None:
        if self._flusher is not None:
            try:
                self._last_flush_stats = self._flusher.stop()
            except Exception:
                logger.exception("stopping the flusher failed")
            if self._store is None:
                self._store = self._flusher.store  # opened by the flusher in the background
            self._flusher = None
        self._close_store()
        if self._persistence.startswith(("active", "paused")):
            self._persistence = "stopped"

    def _close_store(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                logger.exception("closing the store failed")
            self._store = None
            self._store_uri = None


class _PushedPoints:
    """What the engine's flusher drains: the recorders push first, so that every write -- the
    periodic one, and the last one on stop, SIGTERM, SIGINT or exit -- holds everything
    recorded up to it, what monitors keep on the workload's thread included."""

    def __init__(self, engine: EnginePersistence) -> None:
        self._engine = weakref.ref(engine)
        self._collector = engine.collector

    def enable_drain(self) -> None:
        self._collector.enable_drain()

    def drain(self) -> list[SeriesBatch]:
        engine = self._engine()
        if engine is not None:
            engine._push_recorders()
        return self._collector.drain()
