"""What instrumented code holds: one handle per series, created once (name and labels are
validated then); recording is a single ``list.append`` on the series' raw buffer -- no lock
(``list.append`` is atomic under the GIL, so many threads and coroutines may record at once)
and no validation (the fold checks values in bulk; strict mode checks them here and raises).

Timestamps (what a point's time means depends on the kind, as in Prometheus):

* gauges -- ``g.set(v)`` appends ``(v, clock.monotonic())``: every point carries the instant it
  was recorded; the fold turns monotonic readings into wall time with the offset it reads.
* counters and distributions (histogram, timer, distribution) -- ``c.inc()`` and
  ``h.observe(v)`` append the bare value (no clock read: they are the hottest calls); their
  points carry the time of the fold that took them in (at most one tick late, never early).
* explicit timestamps -- ``set_many(values, timestamps)`` and ``observe_many(values,
  timestamps)`` record points at given wall-clock instants (epoch seconds UTC).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from allele.errors import ValidationError
from allele.observability import buckets
from allele.observability.collector.ring import Ring
from allele.observability.types import BatchStats, MetricType, SeriesKey, value_problem

_F = TypeVar("_F", bound=Callable[..., Any])


class Series:
    """One series: its raw buffer (hot path), retained ring and drain queue (fold side)."""

    __slots__ = (
        "buckets",
        "buf",
        "count",
        "handle",
        "key",
        "last",
        "pending",
        "pending_n",
        "refused",
        "ring",
        "sum",
        "tbuf",
        "total",
        "updated",
    )

    def __init__(self, key: SeriesKey, capacity: int) -> None:
        self.key = key
        # Gauges: (value, monotonic seconds) tuples; other kinds: bare values (fold time).
        self.buf: list[Any] = []
        # Points with explicit wall-clock times: (values, float64 epoch seconds) pairs.
        self.tbuf: list[tuple[list[Any], np.ndarray]] = []
        self.ring = Ring(capacity)
        # Folded points queued for drain(): one (timestamps, values, stats) piece per fold,
        # each in time order; stats (sum, min, max) is None for a piece cut by _trim_pending.
        self.pending: list[tuple[np.ndarray, np.ndarray, BatchStats | None]] = []
        self.pending_n = 0
        self.total = 0.0  # counters: the running cumulative value
        # Since the collector started, never reset by ring eviction or retention: what a
        # scrape exposes as a summary's _count/_sum must not go down.
        self.count = 0  # valid values folded in (observations, sets, increments)
        self.sum = 0.0  # their sum (for a counter, its total)
        self.last: float | None = None  # the newest value in time (a counter: its total)
        # Wall time of the last fold that took points in (None before the first): a series
        # not updated for a while is stale (see MetricsCollector.stale_after_s).
        self.updated: float | None = None
        self.handle: Any = None
        self.refused = False  # refused at the series cap: recorded into nothing
        # Histograms, timers, distributions: cumulative counts per bucket (``buckets``), what
        # the exposition serves as a Prometheus histogram.
        self.buckets = (
            np.zeros(buckets.SIZE, dtype=np.int64)
            if key.kind in (MetricType.HISTOGRAM, MetricType.TIMER, MetricType.DISTRIBUTION)
            else None
        )


class _Sink(list[Any]):
    """A buffer that keeps nothing: the raw buffer of a series refused at the series cap, so
    that recording into its handle costs the workload nothing and holds no memory."""

    __slots__ = ()

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Iterable[Any]) -> None:
        pass


def refused_series(key: SeriesKey) -> Series:
    """A series outside the collector (over the series cap): its handles record into sinks."""
    series = Series(key, 1)
    series.buf = _Sink()
    series.tbuf = _Sink()
    series.refused = True
    return series


class _Timing:
    """Times a block (``with h.time():``) or every call of a function (``@h.time()``) and
    observes the elapsed seconds (``time.perf_counter``)."""

    __slots__ = ("_observe", "_start")

    def __init__(self, observe: Callable[[float], None]) -> None:
        self._observe = observe
        self._start = 0.0

    def __enter__(self) -> _Timing:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._observe(time.perf_counter() - self._start)

    def __call__(self, fn: _F) -> _F:
        observe = self._observe
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    observe(time.perf_counter() - start)

            return timed_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                observe(time.perf_counter() - start)

        return timed  # type: ignore[return-value]


def _explicit_times(values: Iterable[float], timestamps: Iterable[float]) -> tuple[Any, Any]:
    """``values`` (a numeric one-dimensional array as it is, anything else as a list) and
    ``timestamps`` as float64, one per value (else ValidationError).

    An array is kept whole, not split into Python floats: a caller that already holds its
    values as an array (a run's column of statistics) then costs the fold no per-point work.
    """
    kept: Any
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "fiub":
        kept = values.astype(np.float64)  # a copy: the caller may reuse its array
    else:
        kept = list(values)
    try:
        # A copy too (np.asarray would alias a float64 array the caller may overwrite).
        times = np.array(timestamps, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"timestamps must be epoch seconds (numbers), got {timestamps!r}"
        ) from exc
    if times.size != len(kept):
        raise ValidationError(
            f"got {len(kept)} values but {times.size} timestamps; give one timestamp per value"
        )
    return kept, times


def strict_check(key: SeriesKey, value: object) -> None:
    problem = value_problem(value)
    if problem is None and key.kind is MetricType.COUNTER and value < 0:  # type: ignore[operator]
        problem = "negative_increment"
    if problem is not None:
        raise ValidationError(
            f"metric {key.name!r} got {value!r} ({problem}); "
            + (
                "counter increments must be finite numbers >= 0"
                if key.kind is MetricType.COUNTER
                else "only finite numbers are allowed"
            )
        )


class CounterHandle:
    """A monotonically increasing count. ``inc(amount=1)`` adds; amounts must be finite and
    >= 0 (bad ones are dropped and counted, or raise in strict mode)."""

    __slots__ = ("_buf", "key")

    def __init__(self, series: Series) -> None:
        self.key = series.key
        self._buf = series.buf

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1) to the counter."""
        self._buf.append(amount)


class StrictCounterHandle(CounterHandle):
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        strict_check(self.key, amount)
        self._buf.append(amount)


class GaugeHandle:
    """A value that goes up and down, each point stamped with the time it was set.

    ``set(value)`` records the current value now; ``set_many(values)`` records several in order,
    all stamped now; ``set_many(values, timestamps)`` records each at its given wall-clock time
    (epoch seconds UTC, one per value).
    """

    __slots__ = ("_series", "_strict", "_wall", "key", "set")

    set: Callable[[float], None]

    def __init__(
        self,
        series: Series,
        strict: bool,
        monotonic: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.key = series.key
        self._series = series
        self._strict = strict
        self._wall = wall
        append = series.buf.append
        if strict:
            key = series.key

            def checked(value: float) -> None:
                strict_check(key, value)
                append((value, monotonic()))

            self.set = checked
        else:
            # One clock read and one append of a tuple: the append is atomic, so a point's
            # value and time can never be separated by another thread's point.
            def record(value: float) -> None:
                append((value, monotonic()))

            self.set = record

    def set_many(self, values: Iterable[float], timestamps: Iterable[float] | None = None) -> None:
        """Record ``values`` in order: at the given ``timestamps`` (epoch seconds UTC, one per
        value), or all at the current time."""
        if timestamps is None:
            kept = list(values)
            times = np.full(len(kept), self._wall())
        else:
            kept, times = _explicit_times(values, timestamps)
        if self._strict:
            for value in kept:
                strict_check(self.key, value)
        self._series.tbuf.append((kept, times))


class HistogramHandle:
    """A distribution of observations (histogram, timer or distribution kind).

    ``observe(value)`` records one value (its point gets the fold's time, see the module
    docstring); ``observe_many(values)`` several, in order (one list extend instead of a call
    per value), or ``observe_many(values, timestamps)`` each at its own wall-clock time;
    ``time()`` gives a context manager / decorator that observes elapsed seconds.
    """

    __slots__ = ("_series", "_strict", "key", "observe")

    observe: Callable[[float], None]

    def __init__(self, series: Series, strict: bool) -> None:
        self.key = series.key
        self._series = series
        self._strict = strict
        append = series.buf.append
        if strict:
            key = series.key

            def checked(value: float) -> None:
                strict_check(key, value)
                append(value)

            self.observe = checked
        else:
            self.observe = append

    def observe_many(
        self, values: Iterable[float], timestamps: Iterable[float] | None = None
    ) -> None:
        """Record ``values`` in order: at the given ``timestamps`` (epoch seconds UTC, one per
        value), or -- without them -- as that many ``observe`` calls would."""
        if timestamps is None:
            if self._strict:
                kept = list(values)
                for value in kept:
                    strict_check(self.key, value)
                self._series.buf.extend(kept)
            else:
                self._series.buf.extend(values)
            return
        kept, times = _explicit_times(values, timestamps)
        if self._strict:
            for value in kept:
                strict_check(self.key, value)
        self._series.tbuf.append((kept, times))

    def time(self) -> _Timing:
        """Return a context manager (``with h.time():``) or decorator (``@h.time()``) that
        observes the elapsed seconds of the block or of each call."""
        return _Timing(self.observe)
