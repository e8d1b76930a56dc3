"""An OpenTelemetry metrics bridge: observable instruments reading our current samples.

Every metric name of the source becomes observable instruments on an OTel ``Meter``; their
callbacks read the source's samples (see ``export.samples``) at each collection:

* counter -> ``ObservableCounter`` ``<name>`` (the cumulative total);
* gauge -> ``ObservableGauge`` ``<name>`` (the latest value);
* histogram, timer, distribution -> ``ObservableGauge`` ``<name>`` with a ``quantile`` attribute
  (0.5, 0.95, 0.99 over the window) and ``ObservableUpDownCounter`` ``<name>_count`` and
  ``<name>_sum`` (points the source holds; they may go down when a collector's ring wraps, so
  not monotonic counters).

Series labels become attributes. Metric names that appear after the bridge was made need a call
to ``sync()`` (e.g. from the engine's tick) to get instruments. Callbacks cannot do it
themselves: the SDK holds its measurement lock during a collection and registering an instrument
then deadlocks. Needs the ``otel`` extra (opentelemetry-sdk for a MeterProvider).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

from allele.errors import require
from allele.observability.export.samples import DISTRIBUTIONS, Sample, sample_source
from allele.observability.types import MetricType


class OtelBridge:
    """Publishes a collector's (or store's) current values through an OTel ``Meter``.

    >>> from opentelemetry.sdk.metrics import MeterProvider             # doctest: +SKIP
    >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    >>> reader = InMemoryMetricReader()
    >>> bridge = OtelBridge(collector, MeterProvider(metric_readers=[reader]))
    >>> reader.get_metrics_data()   # our metrics, as OTel data points
    """

    def __init__(
        self,
        source: Any,
        meter_provider: Any = None,
        *,
        window_s: float = 600.0,
        meter_name: str = "allele",
    ) -> None:
        metrics = require("opentelemetry.metrics", "otel")
        provider = meter_provider or metrics.get_meter_provider()  # type: ignore[attr-defined]
        self._read = sample_source(source, window_s)
        self._meter = provider.get_meter(meter_name)
        self._observation = metrics.Observation  # type: ignore[attr-defined]
        self._instruments: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self.sync()

    @property
    def metric_names(self) -> list[str]:
        """The metric names that have instruments so far."""
        return sorted(self._instruments)

    def sync(self) -> list[str]:
        """Create instruments for metric names not seen before; returns the new names."""
        kinds = {s.key.name: s.key.kind for s in self._read(None)}
        with self._lock:
            new = [n for n in sorted(kinds) if n not in self._instruments]
            for name in new:
                self._instruments[name] = self._create(name, kinds[name])
        return new

    def _create(self, name: str, kind: MetricType) -> list[Any]:
        unit = "s" if kind is MetricType.TIMER else ""
        meter = self._meter
        if kind is MetricType.COUNTER:
            return [
                meter.create_observable_counter(
                    name, callbacks=[self._callback(name, _total)], unit=unit
                )
            ]
        if kind is MetricType.GAUGE:
            return [
                meter.create_observable_gauge(
                    name, callbacks=[self._callback(name, _total)], unit=unit
                )
            ]
        return [
            meter.create_observable_gauge(
                name,
                callbacks=[self._callback(name, _quantiles)],
                unit=unit,
                description=f"quantiles of {name}",
            ),
            meter.create_observable_up_down_counter(
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
            found = []
            for sample in self._read(name):
                attributes = dict(sample.key.labels)
                for value, extra in values(sample):
                    if not math.isnan(value):
                        found.append(self._observation(value, {**attributes, **extra}))
            return found

        return observe


def _total(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    if sample.key.kind in DISTRIBUTIONS or sample.value is None:
        return []
    return [(sample.value, {})]


def _quantiles(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    return [(value, {"quantile": f"{q:g}"}) for q, value in sample.quantiles]


def _count(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    return [(float(sample.count), {})]


def _sum(sample: Sample) -> list[tuple[float, dict[str, str]]]:
    return [(sample.sum, {})]
