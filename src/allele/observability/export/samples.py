"""The current value of every series, read from a live collector or from a store.

Both the Prometheus exposition and the OpenTelemetry bridge render these samples; reading them
is kept apart from formatting them.

What a sample holds, by kind:

* counter: ``value`` is the cumulative total (the collector drains counters as running totals,
  so the store's latest point is the total too);
* gauge: ``value`` is the latest point;
* histogram, timer, distribution: ``count`` and ``sum`` of every point -- for a live collector
  everything recorded since it started (its ``snapshot()`` totals, which never go down, whatever
  the ring buffer forgot), for a store every point ever written to it (the series' cumulative
  totals, which retention never lowers) -- and the 0.5/0.95/0.99 ``quantiles`` of the points
  of the last ``window_s`` seconds (NaN when that window is empty).

A live collector's counters appear from the moment their handle exists (at 0 before the first
increment, as Prometheus clients do); its gauges from their first value.

Distributions also carry ``buckets``: cumulative counts per bucket of ``buckets.BOUNDS`` (None
when the source has none, e.g. a series stored before the store kept them). A store's samples
carry ``timestamp`` (their newest point) and ``stale``: the writer (``instance`` label) has
written nothing for ``stale_after_s`` (see ``allele.observability.staleness``); by default
stale series are left out, as Prometheus expects of a target that stopped exporting them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from allele.errors import ValidationError
from allele.observability.staleness import (
    DEFAULT_STALE_AFTER_S,
    instance_of,
    is_stale,
    last_seen,
)
from allele.observability.types import MetricType, SeriesKey

if TYPE_CHECKING:
    from allele.observability.collector import SeriesSnapshot

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
    buckets: tuple[int, ...] | None = None
    timestamp: float | None = None
    stale: bool = False


class CollectorLike(Protocol):
    """The reading side of ``MetricsCollector`` that samples need."""

    def snapshot(self, name: str | None = None, window_s: float = 60.0) -> list[SeriesSnapshot]: ...


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
    """Samples of every series (or of metric ``name``) in a live collector, from its snapshot."""
    window = _check_window(window_s)
    samples = []
    for snap in collector.snapshot(name, window):
        key = snap.key
        if key.kind in DISTRIBUTIONS:
            recent = snap.window
            quantiles = tuple(
                (q, float("nan") if v is None else v)
                for q, v in zip(QUANTILES, (recent.p50, recent.p95, recent.p99), strict=True)
            )
            counts = getattr(snap, "buckets", None)
            samples.append(
                Sample(
                    key,
                    None,
                    snap.count,
                    snap.sum,
                    quantiles,
                    None if counts is None else tuple(int(n) for n in counts),
                    stale=bool(getattr(snap, "stale", False)),
                )
            )
        elif key.kind is MetricType.COUNTER:
            stale = bool(getattr(snap, "stale", False))
            samples.append(Sample(key, snap.sum, snap.count, snap.sum, stale=stale))
        elif snap.last is not None:
            stale = bool(getattr(snap, "stale", False))
            samples.append(Sample(key, snap.last, snap.count, snap.sum, stale=stale))
    return samples


def store_samples(
    store: Any,
    name: str | None = None,
    window_s: float = 600.0,
    now: float | None = None,
    *,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    include_stale: bool = False,
) -> list[Sample]:
    """Samples of every series (or of metric ``name``) in a ``Store``: latest values per series.

    Values, counts, sums and bucket counts come from ``Store.latest`` (the newest chunk per
    series and the cumulative totals: no point is decoded); only a distribution's quantiles
    read points, those of exactly that series in the ``window_s`` seconds before ``now``
    (default: its last point, so a stopped writer's last window is still described). A
    series whose writer (``instance``) has written nothing for ``stale_after_s`` before
    ``now`` (default: the current time) is stale: left out unless ``include_stale``.
    """
    window = _check_window(window_s)
    clock = time.time() if now is None else now
    every = store.latest()
    seen = last_seen((s.key.labels, s.last_ts) for s in every)
    samples = []
    for stats in every:
        if name is not None and stats.key.name != name:
            continue
        stale = is_stale(seen.get(instance_of(stats.key.labels)), clock, stale_after_s)
        if stale and not include_stale:
            continue
        if stats.key.kind in DISTRIBUTIONS:
            end = stats.last_ts if now is None else now
            recent = store.series_points(stats.key, end - window, np.nextafter(end, np.inf))
            counts = stats.buckets
            samples.append(
                Sample(
                    stats.key,
                    None,
                    stats.count,
                    stats.sum,
                    _quantiles(recent.values),
                    counts,
                    stats.last_ts,
                    stale,
                )
            )
        else:
            samples.append(
                Sample(stats.key, stats.last_value, timestamp=stats.last_ts, stale=stale)
            )
    return samples


def sample_source(
    source: Any, window_s: float = 600.0, *, include_stale: bool = False
) -> SampleSource:
    """A function ``name -> samples`` reading ``source``: a collector, a store, or such a function.

    Raises ``ValidationError`` naming the type when ``source`` is none of these.
    """
    _check_window(window_s)
    if hasattr(source, "latest") and hasattr(source, "query_series"):

        def from_store(name: str | None = None) -> list[Sample]:
            return store_samples(source, name, window_s, include_stale=include_stale)

        return from_store
    if hasattr(source, "snapshot") and hasattr(source, "series_keys"):

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
