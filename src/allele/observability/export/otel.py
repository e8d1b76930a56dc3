"""An OpenTelemetry metrics bridge: observable instruments reading our current samples.

Each metric name of the source gets observable instruments on an OTel ``Meter`` once; their
callbacks read the source's samples (see ``export.samples``) at each collection and observe
every label set of that name, so a new label set of a known name shows up at once:

* counter -> ``ObservableCounter`` ``<name>`` (the cumulative total);
* gauge -> ``ObservableGauge`` ``<name>`` (the latest value);
* histogram, timer, distribution -> ``ObservableGauge`` ``<name>`` with a ``quantile`` attribute
  (0.5, 0.95, 0.99 over the window), ``ObservableCounter`` ``<name>_count`` and
  ``ObservableUpDownCounter`` ``<name>_sum`` (everything recorded: a collector's totals since it
  started; the sum is not monotonic because observations may be negative).

Series labels become attributes.

New metric names need instruments, and **instruments are never created inside a callback**:
the SDK collects while holding a non-reentrant lock that registering an instrument takes too,
so creating one from a callback deadlocks the collection. ``sync()`` creates them from outside:
the bridge calls it on every engine tick when its source is an ``ObservabilityEngine`` (so a
new name is observed from the first collection after the next tick, about a second), and
callers with a bare collector or store call it themselves (e.g. before each export). A
``sync()`` that finds itself inside one of the bridge's callbacks defers instead of deadlocking.
Needs the ``otel`` extra (opentelemetry-sdk for a MeterProvider).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

from allele.errors import require
from allele.observability.export.samples import DISTRIBUTIONS, Sample, sample_source
from allele.observability.types import MetricType

logger = logging.getLogger(__name__)

NameReader = Callable[[], dict[str, MetricType]]


def _name_reader(source: Any, read: Callable[[str | None], list[Sample]]) -> NameReader:
    """A cheap way to list the source's metric names and kinds (no aggregation)."""
    if hasattr(source, "metric_names") and hasattr(source, "snapshot"):
        collector_names: NameReader = source.metric_names
        return collector_names
    if hasattr(source, "list_series") and hasattr(source, "series_stats"):
        return lambda: {k.name: k.kind for k in source.list_series()}
    return lambda: {s.key.name: s.key.kind for s in read(None)}


class OtelBridge:
    """Publishes a collector's, an engine's or a store's current values through an OTel ``Meter``.

    ``source`` is a ``MetricsCollector``, an ``ObservabilityEngine`` (its collector, with
    ``sync()`` on every tick until ``close()``), a ``Store`` or a function ``name -> samples``.

    >>> from opentelemetry.sdk.metrics import MeterProvider             # doctest: +SKIP
    >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    >>> reader = InMemoryMetricReader()
    >>> bridge = OtelBridge(engine, MeterProvider(metric_readers=[reader]))
    >>> reader.get_metrics_data()   # our metrics, as OTel data points
    >>> bridge.close()              # no more syncing on engine ticks
    """

    def __init__(
        self,
        source: Any,
        meter_provider: Any = None,
        *,
        window_s: float = 600.0,
        meter_name: str = "allele",
        include_stale: bool = False,
    ) -> None:
        metrics = require("opentelemetry.metrics", "otel")
        provider = meter_provider or metrics.get_meter_provider()  # type: ignore[attr-defined]
        engine = source if hasattr(source, "add_tick_listener") else None
        if engine is not None:
            source = engine.collector
        # A store's series of writers that stopped are left out, as from the exposition.
        self._read = sample_source(source, window_s, include_stale=include_stale)
        self._names = _name_reader(source, self._read)
        self._meter = provider.get_meter(meter_name)
        self._observation = metrics.Observation  # type: ignore[attr-defined]
        self._instruments: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._in_callback = threading.local()
        self._engine = engine
        self.sync()
        if engine is not None:
            engine.add_tick_listener(self.sync)

    @property
    def metric_names(self) -> list[str]:
        """The metric names that have instruments so far."""
        return sorted(self._instruments)

    def sync(self) -> list[str]:
        """Create instruments for metric names not seen before; returns the new names.

        Call it from outside OpenTelemetry collections (the engine tick does). Called from
        inside one of this bridge's callbacks it creates nothing and returns ``[]``: the names
        wait for the next ``sync()``.
        """
        if getattr(self._in_callback, "active", False):
            logger.debug("OtelBridge.sync() inside a collection callback deferred")
            return []
        kinds = self._names()
        # Creating an instrument may wait for a collection in progress to release the SDK lock;
        # the callbacks never take self._lock, so that wait always ends.
        with self._lock:
            new = [n for n in sorted(kinds) if n not in self._instruments]
            for name in new:
                self._instruments[name] = self._create(name, kinds[name])
        return new

    def close(self) -> None:
        """Stop syncing on the engine's ticks (instruments stay with their meter provider)."""
        if self._engine is not None:
            self._engine.remove_tick_listener(self.sync)
            self._engine = None

    def __enter__(self) -> OtelBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self, name: str, kind: MetricType) -> list[Any]:
        unit = "s" if kind is MetricType.TIMER else ""
        meter = self._meter
        if kind is MetricType.COUNTER:
            return [
                meter.create_observable_counter(
                    name, callbacks=[self._callback(name, _value)], unit=unit
                )
            ]
        if kind is MetricType.GAUGE:
            return [
                meter.create_observable_gauge(
                    name, callbacks=[self._callback(name, _value)], unit=unit
                )
            ]
        return [
            meter.create_observable_gauge(
                name,
                callbacks=[self._callback(name, _quantiles)],
                unit=unit,
                description=f"quantiles of {name}",
            ),
            meter.create_observable_counter(
                f"{name}_count", callbacks=[self._callback(name, _count)]
            ),
            meter.create_observable_up_down_counter(
                f"{name}_sum", callbacks=[self._callback(name, _sum)], unit=unit
            ),
        ]

    def _callback(
        self, name: str, values: Callable[[Sample], Iterable[tuple[float, dict[str, str]]]]
    ) -> Callable[[Any], list[Any]]:
        def observe(_options: Any) -> list[Any]:
            # Runs under the SDK's collection lock: read only, never create instruments.
            self._in_callback.active = True
            try:
                found = []
                for sample in self._read(name):
                    attributes = dict(sample.key.labels)
                    for value, extra in values(sample):
                        if not math.isnan(value):
                            found.append(self._observation(value, {**attributes, **extra}))
                return found
            finally:
                self._in_callback.active = False

        return observe


def _value(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    if sample.key.kind in DISTRIBUTIONS or sample.value is None:
        return []
    return [(sample.value, {})]


def _quantiles(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    return [(value, {"quantile": f"{q:g}"}) for q, value in sample.quantiles]


def _count(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    return [(float(sample.count), {})]


def _sum(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    return [(sample.sum, {})]
