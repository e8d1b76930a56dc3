"""``ComponentMetricsCollector``: one component's recorder (operations, errors, resources,
heartbeats) and its health."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from allele.errors import ValidationError
from allele.observability.clock import utc_datetime
from allele.observability.collector.handles import CounterHandle, HistogramHandle
from allele.observability.collector.health import judge_health, performance
from allele.observability.collector.registry import MetricsCollector
from allele.observability.metric_names import (
    ERROR_RATE_METRIC,
    ERRORS_METRIC,
    HEARTBEAT_AGE_METRIC,
    HEARTBEATS_METRIC,
    LATENCY_METRIC,
    OPERATIONS_METRIC,
    RESOURCE_METRICS,
)
from allele.observability.types import (
    ComponentMetrics,
    ComponentType,
    HealthStatus,
    MetricType,
    PerformanceMetrics,
)

_F = TypeVar("_F", bound=Callable[..., Any])

logger = logging.getLogger("allele.observability.collector")


class _OperationTiming:
    """Times a block or each call of a function; records its latency and success, or its
    error (labelled with the exception's class name) when it raises. Recording never raises
    into the timed code, and the timed code's own exception propagates unchanged."""

    __slots__ = ("_component", "_operation", "_start")

    def __init__(self, component: ComponentMetricsCollector, operation: str) -> None:
        self._component = component
        self._operation = operation
        self._start = 0.0

    def __enter__(self) -> _OperationTiming:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._component._finish(self._operation, time.perf_counter() - self._start, exc_type)

    def __call__(self, fn: _F) -> _F:
        component, operation = self._component, self._operation
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    component._finish(operation, time.perf_counter() - start, type(exc))
                    raise
                component._finish(operation, time.perf_counter() - start, None)
                return result

            return timed_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                component._finish(operation, time.perf_counter() - start, type(exc))
                raise
            component._finish(operation, time.perf_counter() - start, None)
            return result

        return timed  # type: ignore[return-value]


class ComponentMetricsCollector:
    """Records one component's operations, errors, resources and heartbeats, and judges its
    health. Get one from ``ObservabilityEngine.register_component(component_id, ComponentType)``.

    Every series it writes carries the labels ``component_id`` and ``component_type`` (plus
    ``operation`` where it applies), so alert rules and readers can select a component.
    Reads (``performance``, ``health``, ``get_metrics``) see the state the last fold left.

    A batch workload that sends no heartbeats between its runs says so with ``idle()`` when a
    run ends: until its next heartbeat, its heartbeat age is neither judged nor published (so
    no heartbeat-stale alert fires for a component that is simply waiting for work).

    >>> component = ComponentMetricsCollector(MetricsCollector(instance="docs"), "evo-1",
    ...                                       ComponentType.EVOLUTION_ENGINE)
    >>> with component.timer("generation"):
    ...     pass                      # records latency and a success
    >>> component.record_error("generation", "TimeoutError")
    >>> component.heartbeat()
    >>> component.collector.fold()    # the engine's tick
    >>> component.get_metrics().performance.error_rate
    0.5
    """

    def __init__(
        self,
        collector: MetricsCollector,
        component_id: str,
        component_type: ComponentType,
        *,
        metadata: Mapping[str, Any] | None = None,
        heartbeat_timeout_s: float = 60.0,
        degraded_error_rate: float = 0.05,
        unhealthy_error_rate: float = 0.25,
        health_window_s: float = 300.0,
    ) -> None:
        if not isinstance(component_id, str) or not component_id:
            raise ValidationError(f"component_id must be a non-empty string, got {component_id!r}")
        self.collector = collector
        self.component_id = component_id
        self.component_type = ComponentType(component_type)
        self.metadata = dict(metadata or {})
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.degraded_error_rate = degraded_error_rate
        self.unhealthy_error_rate = unhealthy_error_rate
        self.health_window_s = health_window_s
        self.labels = {"component_id": component_id, "component_type": self.component_type.value}
        self.registered_at = collector.clock.time()
        self._registered_mono = collector.clock.monotonic()
        self._last_heartbeat: float | None = None  # wall
        self._last_heartbeat_mono: float | None = None
        self.idle_since: float | None = None  # wall time of idle(), until the next heartbeat
        self.recording_errors = 0  # exceptions caught while recording (never raised)
        self._latency: dict[str, HistogramHandle] = {}
        self._success: dict[str, CounterHandle] = {}
        self._failure: dict[str, CounterHandle] = {}
        self._errors: dict[tuple[str, str], CounterHandle] = {}
        self._heartbeats = collector.counter(HEARTBEATS_METRIC, self.labels)

    def _with(self, **extra: str) -> dict[str, str]:
        return {**self.labels, **extra}

    def record_latency(self, seconds: float, operation: str = "default") -> None:
        """Record how long one ``operation`` took, in seconds."""
        handle = self._latency.get(operation)
        if handle is None:
            handle = self.collector.timer(LATENCY_METRIC, self._with(operation=operation))
            self._latency[operation] = handle
        handle.observe(seconds)

    def record_success(self, operation: str = "default") -> None:
        """Count one successful ``operation``."""
        handle = self._success.get(operation)
        if handle is None:
            handle = self.collector.counter(
                OPERATIONS_METRIC, self._with(operation=operation, outcome="success")
            )
            self._success[operation] = handle
        handle.inc()

    def record_error(self, operation: str = "default", error_type: str = "error") -> None:
        """Count one failed ``operation``, labelled with ``error_type`` (e.g. an exception name)."""
        handle = self._failure.get(operation)
        if handle is None:
            handle = self.collector.counter(
                OPERATIONS_METRIC, self._with(operation=operation, outcome="error")
            )
            self._failure[operation] = handle
        handle.inc()
        typed = self._errors.get((operation, error_type))
        if typed is None:
            typed = self.collector.counter(
                ERRORS_METRIC, self._with(operation=operation, error_type=error_type)
            )
            self._errors[(operation, error_type)] = typed
        typed.inc()

    def record_resource_usage(
        self,
        cpu_percent: float | None = None,
        memory_bytes: float | None = None,
        gpu_memory_bytes: float | None = None,
        **other: float,
    ) -> None:
        """Record resource gauges; extra keywords become ``allele_component_<name>`` gauges."""
        given = {
            "cpu_percent": cpu_percent,
            "memory_bytes": memory_bytes,
            "gpu_memory_bytes": gpu_memory_bytes,
        }
        for field_name, value in given.items():
            if value is not None:
                self.collector.gauge(RESOURCE_METRICS[field_name], self.labels).set(value)
        for name, value in other.items():
            self.collector.gauge(f"allele_component_{name}", self.labels).set(value)

    def record_custom_metric(
        self,
        name: str,
        value: float,
        kind: MetricType = MetricType.GAUGE,
        labels: Mapping[str, object] | None = None,
    ) -> None:
        """Record ``value`` into metric ``name`` of ``kind``, with the component's labels added."""
        self.collector.record(name, value, kind, {**(labels or {}), **self.labels})

    def heartbeat(self) -> None:
        """Say the component is alive now (this also ends an ``idle()`` spell)."""
        self._last_heartbeat = self.collector.clock.time()
        self._last_heartbeat_mono = self.collector.clock.monotonic()
        self.idle_since = None
        self._heartbeats.inc()

    def idle(self) -> None:
        """Say the component sends no heartbeats until its next run (a batch workload between
        runs): its heartbeat age is not judged or published until the next ``heartbeat()``."""
        self.idle_since = self.collector.clock.time()

    def timer(self, operation: str = "default") -> _OperationTiming:
        """Return a context manager / decorator timing ``operation``: it records the latency,
        and a success or (when the block raises) an error named for the exception class."""
        return _OperationTiming(self, operation)

    def _finish(self, operation: str, seconds: float, exc_type: type[BaseException] | None) -> None:
        try:
            self.record_latency(seconds, operation)
            if exc_type is None:
                self.record_success(operation)
            else:
                self.record_error(operation, exc_type.__name__)
        except Exception:  # monitoring never raises into the workload it times
            self.recording_errors += 1
            if self.recording_errors == 1:
                logger.warning(
                    "recording operation %r of component %s failed; the workload continues "
                    "(further failures are counted in recording_errors)",
                    operation,
                    self.component_id,
                    exc_info=True,
                )

    # reading -------------------------------------------------------------------------------------

    def heartbeat_age_s(self) -> float | None:
        """Return seconds since the last heartbeat (monotonic), or None if there was none."""
        if self._last_heartbeat_mono is None:
            return None
        return max(0.0, self.collector.clock.monotonic() - self._last_heartbeat_mono)

    def _judged_age(self) -> float | None:
        """The heartbeat age health is judged by: None while idle (none expected)."""
        return None if self.idle_since is not None else self.heartbeat_age_s()

    def performance(self, window_s: float | None = None) -> PerformanceMetrics:
        """Return latency percentiles, throughput, error rate and resources over the window."""
        window = float(window_s or self.health_window_s)
        age = max(self.collector.clock.monotonic() - self._registered_mono, 1e-9)
        return performance(self.collector, self.labels, window, age)

    def health(self, performance: PerformanceMetrics | None = None) -> HealthStatus:
        """Return the health (see ``health.judge_health``)."""
        return judge_health(
            performance or self.performance(),
            self._judged_age(),
            heartbeat_timeout_s=self.heartbeat_timeout_s,
            degraded_error_rate=self.degraded_error_rate,
            unhealthy_error_rate=self.unhealthy_error_rate,
        )

    def stale(self) -> bool:
        """Whether the component stopped reporting: heartbeats were expected (not idle) and
        the last one is older than 3x ``heartbeat_timeout_s``."""
        age = self._judged_age()
        return age is not None and age > 3 * self.heartbeat_timeout_s

    def get_metrics(self, window_s: float | None = None) -> ComponentMetrics:
        """Return a snapshot: identity, health, heartbeat, staleness and performance."""
        perf = self.performance(window_s)
        return ComponentMetrics(
            component_id=self.component_id,
            component_type=self.component_type,
            health=self.health(perf),
            performance=perf,
            timestamp=utc_datetime(self.collector.clock.time()),
            registered_at=utc_datetime(self.registered_at),
            last_heartbeat=(
                None if self._last_heartbeat is None else utc_datetime(self._last_heartbeat)
            ),
            heartbeat_age_s=self.heartbeat_age_s(),
            metadata=dict(self.metadata),
            stale=self.stale(),
            idle=self.idle_since is not None,
        )

    def publish_health(self) -> ComponentMetrics:
        """Record the error rate and (unless idle) the heartbeat age as gauges, for alert
        rules; return the snapshot they came from."""
        snapshot = self.get_metrics()
        self.collector.gauge(ERROR_RATE_METRIC, self.labels).set(snapshot.performance.error_rate)
        age = snapshot.heartbeat_age_s
        if age is not None and not snapshot.idle:
            self.collector.gauge(HEARTBEAT_AGE_METRIC, self.labels).set(age)
        return snapshot
