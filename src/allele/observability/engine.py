"""The observability engine: background sampling, the component registry, health, alerts and
persistence, behind one object -- and the process-wide instance.

>>> from allele.observability.engine import get_observability_engine
>>> from allele.observability.types import ComponentType
>>> engine = get_observability_engine()                                  # doctest: +SKIP
>>> engine.start()                                                       # doctest: +SKIP
>>> evo = engine.register_component("evo-1", ComponentType.EVOLUTION_ENGINE)  # doctest: +SKIP
>>> with evo.timer("generation"):                                        # doctest: +SKIP
...     run_one_generation()
>>> evo.heartbeat()                                                      # doctest: +SKIP
>>> engine.get_component_metrics("evo-1").health                         # doctest: +SKIP
<HealthStatus.HEALTHY: 'healthy'>
>>> engine.get_active_alerts()                                           # doctest: +SKIP
[]
>>> engine.stop()                                                        # doctest: +SKIP

What runs in the background (one daemon thread, started by ``start()``):

* every tick (1 s, or the collection interval if shorter), in this order: the recorders
  (``add_recorder``: monitors that keep cheap raw records on the workload's thread) push what
  they hold into their handles; on a collection tick (every ``collection_interval`` seconds)
  the process, the machine and the GPUs are sampled (``allele_system_*``, ``allele_process_*``
  and ``allele_gpu_*`` series) and each component's error rate and heartbeat age published as
  gauges; then the collector folds -- once per tick, the only periodic fold; then, on a
  collection tick, the alert rules are evaluated over the folded state; last the tick
  listeners run (``add_tick_listener``; e.g. the OpenTelemetry bridge's ``sync``). Reads
  (queries, health, snapshots, exposition) never fold: they see the state the last tick left.
  Gauge points and points recorded with explicit timestamps keep the time they carry; counter
  increments and histogram / timer observations take the fold's time, so theirs are accurate
  to about one tick (see ``allele.observability.collector``);
* every minute: forget points older than the retention period.

With a store URI (``ALLELE_STORE_URI``, default ``sqlite:///allele.db``; set it to ``none`` to
keep everything in memory) ``start()`` also starts the store's ``Flusher``, which drains points,
alert changes and component snapshots into the database. A store that cannot be reached yet
(locked, down, full) is opened by the flusher in the background while points wait; one that
cannot be used at all (a bad URI, a missing driver) is logged and monitoring stays in memory.
Every way of starting (``start``, ``astart``, the context managers) writes everything on
SIGTERM, SIGINT and a clean exit; ``stop()`` and ``get_status()`` answer within about a second
whatever the store does (see ``store.flusher``). URIs are shown with their password masked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from allele.observability.alerts import AlertManager
from allele.observability.clock import Clock, SystemClock, utc_datetime
from allele.observability.collector import ComponentMetricsCollector, MetricsCollector
from allele.observability.component_registry import ComponentRegistry
from allele.observability.config import (
    ObservabilitySettings,
    SettingsWatcher,
    add_settings_listener,
    default_alert_rules,
    get_settings,
    remove_settings_listener,
    set_settings,
)
from allele.observability.metric_names import (
    GPU_MEMORY_USED,
    GPU_UTILIZATION,
    PROCESS_CPU_PERCENT,
    PROCESS_RSS,
    PROCESS_THREADS,
    SYSTEM_CPU_PERCENT,
    SYSTEM_DISK_PERCENT,
    SYSTEM_DISK_READ,
    SYSTEM_DISK_WRITE,
    SYSTEM_MEMORY_PERCENT,
    SYSTEM_MEMORY_USED,
    SYSTEM_NET_RECV,
    SYSTEM_NET_SENT,
)
from allele.observability.notify import ConsoleNotifier, LogNotifier, Notifier, WebhookNotifier
from allele.observability.persistence import NOTIFY_STOP_S as NOTIFY_STOP_S  # re-exported
from allele.observability.persistence import STORE_BUSY_TIMEOUT_MS as STORE_BUSY_TIMEOUT_MS
from allele.observability.persistence import EnginePersistence
from allele.observability.system import SystemSampler
from allele.observability.types import (
    Alert,
    AlertState,
    ComponentMetrics,
    ComponentType,
    HealthStatus,
    SystemMetrics,
)

logger = logging.getLogger("allele.observability.engine")

CLEANUP_INTERVAL_S = 60.0
#: How long ``stop()`` waits for the engine's thread; the flusher bounds its own final write
#: (``Flusher(shutdown_timeout_s=...)``), and notifications get ``NOTIFY_STOP_S``.
STOP_JOIN_S = 1.0


class ObservabilityEngine(ComponentRegistry, EnginePersistence):
    """Watches the process and its registered components; owns the collector and the alerts.

    Construct with ``settings`` (default: ``get_settings()``), or use the process-wide
    ``get_observability_engine()``. ``clock`` is for tests (``ManualClock``); ``sampler``
    replaces the psutil sampler; ``notifiers`` replaces the notifiers built from the settings
    (log, plus console if ``ALLELE_CONSOLE_ALERTS``, plus webhook if ``ALLELE_WEBHOOK_URL``;
    with ``ALLELE_ALERT_ROUTES`` a ``Router`` on that routes file replaces the log).

    Attributes a caller may use directly: ``collector`` (a ``MetricsCollector``: create handles
    on it for custom metrics) and ``alerts`` (the ``AlertManager``: add rules, read history).
    """

    def __init__(
        self,
        settings: ObservabilitySettings | None = None,
        *,
        clock: Clock | None = None,
        sampler: SystemSampler | None = None,
        notifiers: list[Notifier] | None = None,
        follow_global_settings: bool = False,
    ) -> None:
        self.settings = settings or get_settings()
        self.clock: Clock = clock or SystemClock()
        config = self.settings.monitoring_config()
        self.collector = MetricsCollector(
            clock=self.clock,
            capacity=config.series_capacity,
            retention_s=config.retention_hours * 3600.0,
            strict=config.strict,
            instance=config.instance,
        )
        self._own_notifiers = notifiers is None
        self.alerts = AlertManager(
            self.collector,
            clock=self.clock,
            notifiers=self._build_notifiers() if notifiers is None else notifiers,
            enabled=config.alerting_enabled,
        )
        self.alerts.add_rules(default_alert_rules(ComponentType.SYSTEM, self.settings))
        # Created now, not at the first sample: construction primes the CPU counters, so the
        # first sample after ``start()`` already measures a real interval.
        self._sampler = sampler if sampler is not None else SystemSampler()
        self._lock = threading.RLock()  # the component registry
        # Serialises start() and stop(). Separate from ``_lock`` because stop() waits for the
        # background thread, which takes ``_lock`` while it collects: one lock would make
        # stop() wait out its join timeout whenever it lands mid-collection.
        self._lifecycle = threading.Lock()
        self._components: dict[str, ComponentMetricsCollector] = {}
        # Each component's snapshot from the latest collection (see component_snapshots).
        self._snapshots: dict[str, ComponentMetrics] = {}
        self._latest_system: SystemMetrics | None = None
        self._last_io: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started_at: float | None = None
        self._flusher: Any = None
        self._store: Any = None
        self._store_uri: str | None = None
        self._persistence = "disabled"
        self._last_flush_stats: Any = None
        self._watcher: SettingsWatcher | None = None
        self._follow_global = follow_global_settings
        self._errors = 0
        self.cleanup_interval_s = CLEANUP_INTERVAL_S
        self._tick_listeners: tuple[Callable[[], object], ...] = ()
        # Pushed on every tick before the fold (see add_recorder); weak for bound methods.
        self._recorders: tuple[Callable[[], Callable[[], object] | None], ...] = ()
        if follow_global_settings:
            add_settings_listener(self._on_global_settings)

    # lifecycle ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ObservabilityEngine:
        """Start background sampling (and persistence and settings reload when configured);
        does nothing if already running or if ``ALLELE_MONITORING_ENABLED`` is false."""
        with self._lifecycle:
            if self.running:
                return self
            if not self.settings.monitoring_enabled:
                logger.info("monitoring is disabled (ALLELE_MONITORING_ENABLED=false)")
                return self
            self._started_at = self.clock.time()
            self.collect_once()
            # A fresh event per run: a previous run's thread still winding down keeps its own
            # (set) event and cannot be revived by this start.
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="allele-observability", daemon=True
            )
            self._thread.start()
            self._start_persistence()
            if self.settings.settings_file is not None:
                self._watcher = SettingsWatcher(
                    self.settings.settings_file, apply=self._reloaded
                ).start()
        return self

    def stop(self, *, keep_store: bool = False) -> None:
        """Stop sampling, flush persistence and pending webhook notifications.

        ``keep_store=True`` pauses instead: the flusher's thread stops after a final flush, but
        the store stays open and the flusher (with the store's statements and series ids
        already resolved) is kept, so the next ``start()`` resumes persisting at once instead
        of opening the store again (``close()`` or a plain ``stop()`` closes it).
        """
        with self._lifecycle:
            self._stop.set()
            thread, self._thread = self._thread, None
            if thread is not None:
                # The engine's thread never waits on the store; a collection in progress
                # (sampling, alert rules) is short. Bounded all the same: stop answers in time.
                thread.join(timeout=STOP_JOIN_S)
            self.tick()  # what the recorders hold reaches the collector before the last flush
            if self._watcher is not None:
                self._watcher.stop()
                self._watcher = None
            if self._flusher is not None:
                self._refresh_snapshots()  # the final flush writes the state at the stop
            # Before the store closes: undelivered webhook events are kept in it.
            self._stop_notifiers()
            if keep_store:
                self._pause_persistence()
            else:
                self._stop_persistence()

    def close(self) -> None:
        """Stop, and release notifiers, the GPU library and the settings subscription."""
        self.stop()
        if self._own_notifiers:
            self.alerts.close()
        self._sampler.close()
        if self._follow_global:
            remove_settings_listener(self._on_global_settings)

    async def astart(self) -> ObservabilityEngine:
        """``start()`` without blocking the event loop; the SIGTERM / SIGINT handlers that
        write everything on a signal are installed from the loop's thread (the main thread,
        usually), since ``start()`` runs on a worker thread where Python cannot install them."""
        await asyncio.to_thread(self.start)
        self.install_signal_handlers()
        return self

    def install_signal_handlers(self) -> bool:
        """Have SIGTERM and SIGINT write everything recorded to the store before the process
        ends (``start()`` does it when called on the main thread). Returns whether handlers
        are installed: False off the main thread or without persistence."""
        flusher = self._flusher
        return flusher is not None and flusher.install_signal_handlers()

    async def astop(self) -> None:
        """``stop()`` without blocking the event loop; the signal handlers ``astart``
        installed are removed from the loop's thread."""
        flusher = self._flusher
        await asyncio.to_thread(self.stop)
        if flusher is not None and self._flusher is not flusher:
            flusher.restore_signal_handlers()

    def __enter__(self) -> ObservabilityEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> ObservabilityEngine:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    def _run(self, stop: threading.Event) -> None:
        interval = self.settings.collection_interval
        tick = min(1.0, interval)
        next_collect = time.monotonic() + interval
        next_cleanup = time.monotonic() + self.cleanup_interval_s
        while not stop.wait(tick):
            now = time.monotonic()
            collect = now >= next_collect
            self.tick(collect=collect)
            if collect:
                interval = self.settings.collection_interval  # may change on reload
                next_collect = now + interval
                tick = min(1.0, interval)
            if now >= next_cleanup:
                try:
                    self.collector.cleanup()
                except Exception:  # the monitor must outlive its own bugs
                    self._errors += 1
                    logger.exception("observability cleanup failed")
                next_cleanup = now + self.cleanup_interval_s

    def add_recorder(self, push: Callable[[], object]) -> None:
        """Have ``push()`` called on every tick, before the fold: for a monitor that keeps
        cheap raw records of its own on the workload's thread (a list append per operation)
        and turns them into points in bulk, through its handles. The same tick's fold takes
        them in. ``push`` runs on the engine's thread holding no lock of the engine or the
        collector; its exceptions are logged and counted, never raised. A bound method is
        held weakly (a finished workload's monitor goes with it); adding it twice is a no-op.
        """
        ref: Callable[[], Callable[[], object] | None]
        if inspect.ismethod(push):
            ref = weakref.WeakMethod(push)
        else:

            def ref() -> Callable[[], object]:
                return push

        if any(found() == push for found in self._recorders):
            return
        # Replaced, never mutated: the tick iterates the tuple it read without a lock.
        self._recorders = (*self._recorders, ref)

    def remove_recorder(self, push: Callable[[], object]) -> None:
        """Stop calling ``push`` on ticks (and forget recorders whose object is gone)."""
        self._recorders = tuple(
            ref for ref in self._recorders if (found := ref()) is not None and found != push
        )

    def add_tick_listener(self, listener: Callable[[], object]) -> None:
        """Have ``listener()`` called on every tick, right after the fold.

        It runs on the engine's thread holding no lock of the engine or the collector, so it
        may read the collector or wait on other locks (``OtelBridge.sync`` registers new
        instruments this way, outside any OpenTelemetry collection). Its exceptions are logged
        and counted in the status, never raised. Adding the same listener twice is a no-op.
        """
        if listener not in self._tick_listeners:
            # Replaced, never mutated: the tick iterates the tuple it read without a lock.
            self._tick_listeners = (*self._tick_listeners, listener)

    def remove_tick_listener(self, listener: Callable[[], object]) -> None:
        """Stop calling ``listener`` on ticks (nothing happens if it was not added)."""
        self._tick_listeners = tuple(f for f in self._tick_listeners if f != listener)

    def tick(self, *, collect: bool = False) -> SystemMetrics | None:
        """One tick, as the background thread does every second (callers without the thread
        may tick themselves): the recorders push, then -- with ``collect`` -- the system is
        sampled and component health published, then the collector folds once, then -- with
        ``collect`` -- the alert rules are evaluated, then the tick listeners run. Returns
        the system sample of a collection (None otherwise, or if sampling failed; failures
        are logged and counted, never raised)."""
        self._push_recorders()
        sample = self._collect() if collect else None
        try:
            self.collector.fold()
        except Exception:  # the monitor must outlive its own bugs
            self._errors += 1
            logger.exception("observability fold failed")
        if collect:
            try:
                self.alerts.evaluate()
            except Exception:
                self._errors += 1
                logger.exception("alert evaluation failed")
        self._notify_tick_listeners()
        return sample

    def collect_once(self) -> SystemMetrics | None:
        """A collection tick now (see ``tick``): sample the system, publish component health,
        fold, evaluate alerts; return the system sample (None if sampling failed)."""
        return self.tick(collect=True)

    def _push_recorders(self) -> None:
        for ref in self._recorders:
            push = ref()
            if push is None:
                continue
            try:
                push()
            except Exception:
                self._errors += 1
                logger.exception("observability recorder %r failed", push)

    def _notify_tick_listeners(self) -> None:
        for listener in self._tick_listeners:
            try:
                listener()
            except Exception:
                self._errors += 1
                logger.exception("observability tick listener %r failed", listener)

    def _collect(self) -> SystemMetrics | None:
        sample = None
        try:
            sample = self._sample_system()
        except Exception:
            self._errors += 1
            logger.exception("system sampling failed")
        for component in self._component_list():
            try:
                snapshot = component.publish_health()
                self._snapshots[component.component_id] = snapshot
                if snapshot.stale:  # its values are old until it reports again
                    self.collector.mark_stale(component.labels)
            except Exception:
                self._errors += 1
                logger.exception("health of component %s failed", component.component_id)
        return sample

    # system ------------------------------------------------------------------------------------

    def _sample_system(self) -> SystemMetrics:
        sample = self._sampler.sample()
        c = self.collector
        c.gauge(SYSTEM_CPU_PERCENT).set(sample.cpu_percent)
        c.gauge(SYSTEM_MEMORY_PERCENT).set(sample.memory_percent)
        c.gauge(SYSTEM_MEMORY_USED).set(sample.memory_used_bytes)
        if sample.disk_percent is not None:
            c.gauge(SYSTEM_DISK_PERCENT).set(sample.disk_percent)
        c.gauge(PROCESS_CPU_PERCENT).set(sample.process_cpu_percent)
        c.gauge(PROCESS_RSS).set(sample.process_rss_bytes)
        c.gauge(PROCESS_THREADS).set(sample.process_threads)
        for name, value in (
            (SYSTEM_DISK_READ, sample.disk_read_bytes),
            (SYSTEM_DISK_WRITE, sample.disk_write_bytes),
            (SYSTEM_NET_SENT, sample.net_sent_bytes),
            (SYSTEM_NET_RECV, sample.net_recv_bytes),
        ):
            if value is not None:
                # psutil reports totals since boot; the counter grows by the difference.
                previous = self._last_io.get(name)
                if previous is not None and value >= previous:
                    c.counter(name).inc(value - previous)
                self._last_io[name] = value
        for device in sample.gpu.devices:
            labels = {"gpu": str(device.index), "name": device.name}
            c.gauge(GPU_MEMORY_USED, labels).set(device.memory_used_bytes)
            if device.utilization_percent is not None:
                c.gauge(GPU_UTILIZATION, labels).set(device.utilization_percent)
        self._latest_system = sample
        return sample

    def get_system_metrics(self) -> SystemMetrics:
        """Return the latest system sample (taking one now if there is none yet)."""
        sample = self._latest_system
        if sample is None:
            sample = self._sample_system()
        return sample

    # alerts ------------------------------------------------------------------------------------

    def get_active_alerts(
        self, *, include_pending: bool = False, component_id: str | None = None
    ) -> list[Alert]:
        """Return the firing alerts (and pending ones if asked), most severe first."""
        return self.alerts.active_alerts(include_pending=include_pending, component_id=component_id)

    def get_alert_history(self, limit: int | None = None) -> list[Alert]:
        """Return alerts that fired and ended, newest first."""
        return self.alerts.history(limit)

    def acknowledge_alert(self, alert_id: str, by: str, comment: str | None = None) -> Alert:
        """Acknowledge an active alert (who and why); return it."""
        return self.alerts.acknowledge(alert_id, by, comment)

    def resolve_alert(self, alert_id: str, by: str, comment: str | None = None) -> Alert:
        """Resolve an active alert by hand (who and why); return it."""
        return self.alerts.resolve(alert_id, by, comment)

    # status ------------------------------------------------------------------------------------

    def get_status(self) -> dict[str, Any]:
        """Return a JSON-ready overview: running state, uptime, components by health, alert
        counts, dropped values, series count, persistence and GPU availability."""
        health: dict[str, int] = {h.value: 0 for h in HealthStatus}
        components = self.get_all_component_metrics()
        for snapshot in components.values():
            health[snapshot.health.value] += 1
        active = self.alerts.active_alerts(include_pending=True)
        sample = self._latest_system
        flusher_stats = None
        # FlushStats are read without waiting for a write in progress: the status answers
        # at once whatever the store does (locked, unreachable).
        stats = self._last_flush_stats if self._flusher is None else self._flusher.stats
        if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
            flusher_stats = dataclasses.asdict(stats)
        return {
            "running": self.running,
            "monitoring_enabled": self.settings.monitoring_enabled,
            "alerting_enabled": self.alerts.enabled,
            "started_at": None
            if self._started_at is None
            else utc_datetime(self._started_at).isoformat(),
            "uptime_s": None if self._started_at is None else self.clock.time() - self._started_at,
            "collection_interval_s": self.settings.collection_interval,
            "components": {"total": len(components), "by_health": health},
            "alerts": {
                "firing": sum(a.state is AlertState.FIRING for a in active),
                "pending": sum(a.state is AlertState.PENDING for a in active),
                "recovering": sum(a.state is AlertState.RECOVERING for a in active),
                "rules": len(self.alerts.rules()),
                "notification_errors": self.alerts.notification_errors,
                "webhook": self._webhook_stats(),
            },
            "series": len(self.collector.series_keys()),
            "dropped": self.collector.dropped(),
            "persistence": self._persistence,
            "flusher": flusher_stats,
            "gpu": None if sample is None else sample.gpu.to_dict(),
            "background_errors": self._errors,
        }

    # settings ----------------------------------------------------------------------------------

    def _build_notifiers(self) -> list[Notifier]:
        notifiers: list[Notifier] = [LogNotifier()]
        if self.settings.alert_routes is not None:
            # The routes' receivers (log among them) replace the one line per alert event.
            from allele.observability.routing import router_from_file

            notifiers = [router_from_file(self.settings.alert_routes, clock=self.clock)]
        if self.settings.console_alerts:
            notifiers.append(ConsoleNotifier())
        if self.settings.webhook_url:
            notifiers.append(WebhookNotifier(self.settings.webhook_url))
        return notifiers

    def _reloaded(self, settings: ObservabilitySettings) -> None:
        if self._follow_global:
            set_settings(settings)  # the listener applies it
        else:
            self.apply_settings(settings)

    def _on_global_settings(self, old: ObservabilitySettings, new: ObservabilitySettings) -> None:
        self.apply_settings(new)

    def apply_settings(self, settings: ObservabilitySettings) -> None:
        """Apply new settings while running: collection interval, retention, alerting on/off,
        console and webhook notifications take effect at once; store, flush interval, capacity
        and strict mode are logged as needing a restart."""
        old, self.settings = self.settings, settings
        self.alerts.enabled = settings.alerting_enabled
        self.collector.retention_s = settings.retention_hours * 3600.0
        if self._own_notifiers and (
            old.webhook_url != settings.webhook_url
            or old.console_alerts != settings.console_alerts
            or old.alert_routes != settings.alert_routes
        ):
            previous = self.alerts.notifiers
            self.alerts.notifiers = self._build_notifiers()
            for notifier in previous:
                if isinstance(notifier, WebhookNotifier):
                    notifier.close(timeout_s=1.0)
                elif hasattr(notifier, "attach_store"):  # a router: its receivers' senders
                    notifier.close()
        restart = [
            name
            for name in ("store_uri", "flush_interval", "series_capacity", "strict_metrics")
            if getattr(old, name) != getattr(settings, name)
        ]
        if restart:
            logger.warning("settings %s change on the next engine restart", ", ".join(restart))


# --- the process-wide engine --------------------------------------------------------------------

_engine: ObservabilityEngine | None = None
_engine_lock = threading.Lock()


def get_observability_engine() -> ObservabilityEngine:
    """Return the process-wide engine (created on first use from ``get_settings()``; the same
    instance from every thread). It follows settings reloads. Call ``start()`` to sample."""
    engine = _engine
    if engine is not None:
        return engine
    return _create_engine()


def _create_engine() -> ObservabilityEngine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = ObservabilityEngine(follow_global_settings=True)
        return _engine


def reset_observability_engine() -> None:
    """Stop and forget the process-wide engine (for tests)."""
    global _engine
    with _engine_lock:
        engine, _engine = _engine, None
    if engine is not None:
        engine.close()
