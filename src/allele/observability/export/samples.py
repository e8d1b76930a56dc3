"""The current value of every series, read from a live collector or from a store.

Both the Prometheus exposition and the OpenTelemetry bridge render these samples; reading them
is kept apart from formatting them.

What a sample holds, by kind:

* counter: ``value`` is the cumulative total (the collector drains counters as running totals,
  so the store's latest point is the total too);
* gauge: ``value`` is the latest point;
* histogram, timer, distribution: ``count`` and ``sum`` of every point the source holds -- all
  stored points for a store, the retained points (ring buffer: ``capacity`` points no older than
  ``retention_s``) for a live collector -- and the 0.5/0.95/0.99 ``quantiles`` of the points of
  the last ``window_s`` seconds (NaN when that window is empty).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from allele.errors import ValidationError
from allele.observability.types import MetricType, SeriesKey

QUANTILES = (0.5, 0.95, 0.99)
DISTRIBUTIONS = frozenset({MetricType.HISTOGRAM, MetricType.TIMER, MetricType.DISTRIBUTION})


@dataclass(frozen=True, slots=True)
class Sample:
    """The current state of one series (see the module docstring for each kind)."""

    key: SeriesKey
    value: float | None = None
    count: int = 0
    sum: float = 0.0
    quantiles: tuple[tuple[float, float], ...] = ()


class CollectorLike(Protocol):
    """The reading side of ``MetricsCollector`` that samples need."""

    def series_keys(self, name: str | None = None) -> list[SeriesKey]: ...

    def points(
        self, name: str, labels: Any = None, kind: MetricType | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


SampleSource = Callable[[str | None], list[Sample]]


def _quantiles(values: np.ndarray) -> tuple[tuple[float, float], ...]:
    if values.size == 0:
        return tuple((q, float("nan")) for q in QUANTILES)
    found = np.quantile(values, QUANTILES)
    return tuple((q, float(v)) for q, v in zip(QUANTILES, found, strict=True))


def _check_window(window_s: float) -> float:
    if not (isinstance(window_s, int | float) and 0 < window_s < float("inf")):
        raise ValidationError(f"window_s={window_s!r} must be a positive number of seconds")
    return float(window_s)


def collector_samples(
    collector: CollectorLike, name: str | None = None, window_s: float = 600.0
) -> list[Sample]:
    """Samples of every series (or of metric ``name``) in a live collector."""
    window = _check_window(window_s)
    clock = getattr(collector, "clock", None)
    samples = []
    for key in sorted(collector.series_keys(name), key=lambda k: (k.name, k.labels)):
        ts, values = collector.points(key.name, dict(key.labels), key.kind)
        if values.size == 0:
            continue
        if key.kind in DISTRIBUTIONS:
            now = clock.time() if clock is not None else float(ts[-1])
            recent = values[ts >= now - window]
            samples.append(
                Sample(key, None, int(values.size), float(values.sum()), _quantiles(recent))
            )
        else:
            samples.append(Sample(key, float(values[-1])))
    return samples


def store_samples(
    store: Any, name: str | None = None, window_s: float = 600.0, now: float | None = None
) -> list[Sample]:
    """Samples of every series (or of metric ``name``) in a ``Store``: latest values per series.

    Quantiles cover the ``window_s`` seconds before ``now`` (default: the series' last point,
    so that a store written by a process that has stopped still shows its last window).
    """
    window = _check_window(window_s)
    samples = []
    for stats in store.series_stats(name):
        if stats.key.kind in DISTRIBUTIONS:
            end = stats.last_ts if now is None else now
            recent = store.query_series(
                stats.key.name,
                dict(stats.key.labels),
                start=end - window,
                end=np.nextafter(end, np.inf),
            )
            samples.append(
                Sample(stats.key, None, stats.count, stats.sum, _quantiles(recent.values))
            )
        else:
            samples.append(Sample(stats.key, stats.last_value))
    return samples


def sample_source(source: Any, window_s: float = 600.0) -> SampleSource:
    """A function ``name -> samples`` reading ``source``: a collector, a store, or such a function.

    Raises ``ValidationError`` naming the type when ``source`` is none of these.
    """
    _check_window(window_s)
    if hasattr(source, "series_stats") and hasattr(source, "query_series"):

        def from_store(name: str | None = None) -> list[Sample]:
            return store_samples(source, name, window_s)

        return from_store
    if hasattr(source, "series_keys") and hasattr(source, "points"):

        def from_collector(name: str | None = None) -> list[Sample]:
            return collector_samples(source, name, window_s)

        return from_collector
    if callable(source):
        read: SampleSource = source
        return read
    raise ValidationError(
        f"cannot read metrics from a {type(source).__name__}; pass a MetricsCollector, a Store "
        "or a function name -> list[Sample]"
    )


def by_name(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    """Samples grouped by metric name, names sorted."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.key.name, []).append(sample)
    return dict(sorted(groups.items()))
