"""Recording metrics on the hot path, and aggregating them when they are read.

How recording stays cheap
-------------------------
A metric handle is created once (``c = collector.counter("jobs_total", {"queue": "a"})``); name
and labels are validated then. Recording is a single ``list.append`` on the series' raw buffer:
no lock (``list.append`` is atomic under the GIL, so many threads and coroutines may record at
once) and no validation.

Off the hot path, ``fold()`` moves each raw buffer into the series: values are validated in bulk
with numpy (NaN, infinity, non-numbers and negative counter increments are dropped and counted in
``dropped()`` and in the ``allele_metrics_dropped_total`` series, never raised), timestamped,
appended to a bounded ring buffer for aggregation, and -- once a consumer has attached -- queued
for ``drain()``. ``fold()`` runs on every read and drain and on every tick of the engine's
background thread (at least once a second when the engine runs).

Timestamps
----------
What a point's timestamp means depends on the kind, as in Prometheus:

* **gauges** -- ``g.set(v)`` appends ``(v, clock.monotonic())``: every point carries the instant
  it was recorded (one clock read, ~20-30 ns). The fold converts the monotonic readings to wall
  time (epoch seconds UTC) with the offset ``clock.time() - clock.monotonic()`` read at that
  fold, so points of one fold keep their exact spacing and order even if the wall clock is
  stepped meanwhile.
* **counters and histograms / timers / distributions** -- ``c.inc()`` and ``h.observe(v)``
  append the bare value (no clock read: they are the hottest calls), and **their points carry
  the time of the fold that took them in**: at most one tick after they were recorded, never
  before. A counter becomes one point per fold that changed it, whose value is the running
  total (what a Prometheus scrape sees); a histogram's observations of one fold interval share
  that fold's time. Aggregation windows are therefore accurate to one tick.
* **explicit timestamps** -- ``set_many(values, timestamps)`` and ``observe_many(values,
  timestamps)`` record points at given wall-clock instants (epoch seconds UTC): for a caller
  that knows when each value happened (the evolution monitor records each generation at its
  end time). Non-finite timestamps are dropped and counted (``bad_timestamp``).

Within one fold a series' points are put in time order (a stable sort, so equal times keep
their recording order). A point given an explicit timestamp older than points folded earlier
is kept as given: the ring and the drain keep fold order, and stores and exports order by time.

Sharing the GIL
---------------
The fold runs on a background thread beside the monitored program, and both need the GIL.
numpy lets go of the GIL around an operation on more than a few hundred values; the program's
thread, waiting to run, takes it at once, and the fold's thread has to ask for it back, which
costs the program a thread switch (a wake-up from sleep: some 50-150 us on a virtual machine,
far more than the operation itself). So the fold and the drain keep large arrays whole: the
ring and the drain queue hold the fold's arrays by reference rather than copying them, a drain
hands a single piece over as it is, a table of many series (``record_table``) is checked with a
handful of calls over the whole table, and the drained batches carry what the fold found
(``SeriesBatch.stats``) so that the store does not check them again.

In strict mode (``MetricsCollector(strict=True)``) handles validate each value as it is recorded
and raise ``ValidationError``; this costs a Python-level check per observation.

Reading
-------
``summary(name, labels, window_s)`` and ``query(name, match, window_s)`` aggregate the retained
points of the last ``window_s`` seconds: count, sum, min, max, mean and the p50/p95/p99
percentiles, computed exactly with numpy (linear interpolation, numpy's default) over every
retained point in the window. Each series retains at most ``capacity`` points (a ring buffer)
and none older than ``retention_s``; when more points than ``capacity`` fall in a window, the
summary covers the newest ``capacity`` of them (``Summary.truncated`` says so).

Draining
--------
Nothing is queued for ``drain()`` until a consumer attaches: ``enable_drain()`` (the store's
``Flusher`` calls it when it is created) or the first ``drain()`` call. A collector nobody drains
therefore holds only its ring buffers: memory stays bounded by ``capacity`` points per series and
folding costs no queueing. When a consumer attaches, the points still retained in the rings are
queued first (so a consumer that attaches late still gets the recent history: at most
``capacity`` points per series, none older than ``retention_s``), and from then on every folded
point is queued, and handed over by ``drain()`` exactly once. Attaching again does nothing.

``snapshot(name, window_s)`` gives each series' cumulative count and sum since the collector
started (kept by the fold, so the hot path is unchanged), its latest value and the window's
Summary: what exporters expose, since ring eviction and retention never make those totals drop.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
import time
import weakref
from collections import Counter as _Tally
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain, pairwise
from typing import Any, TypeVar

import numpy as np

from allele.errors import ValidationError
from allele.observability import buckets
from allele.observability.clock import Clock, SystemClock, utc_datetime
from allele.observability.types import (
    Aggregation,
    BatchStats,
    ComponentMetrics,
    ComponentType,
    HealthStatus,
    MetricType,
    PerformanceMetrics,
    SeriesBatch,
    SeriesKey,
    normalize_labels,
    validate_metric_name,
    value_problem,
    value_statistics,
)

_F = TypeVar("_F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)

DROPPED_METRIC = "allele_metrics_dropped_total"


# --- the stored side of one series --------------------------------------------------------------


class _Ring:
    """The newest ``capacity`` points of a series, kept as the (timestamps, values) array pairs
    the fold produced, oldest first.

    Extending keeps references, not copies: the fold's arrays are its own and never written
    again, so taking in a large batch costs no copy (a copy of thousands of values lets go of
    the GIL, and a workload thread waiting to run takes it: see "Sharing the GIL" in the module
    docstring). Many small pieces (one per fold of a slow series) are joined into one every
    ``_MAX_PIECES`` pieces, which bounds the per-piece memory.
    """

    __slots__ = ("capacity", "evicted", "pieces", "size", "skip")

    _MAX_PIECES = 64

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pieces: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self.skip = 0  # points at the front of the first piece already forgotten
        self.size = 0
        self.evicted = False  # whether any point was ever dropped for lack of room or age

    def extend(self, ts: np.ndarray, values: np.ndarray) -> None:
        """Append points (kept by reference: the caller never writes these arrays again)."""
        n = int(values.size)
        if not n:
            return
        self.pieces.append((ts, values))
        self.size += n
        if self.size > self.capacity:
            self._forget(self.size - self.capacity)
        if len(self.pieces) > self._MAX_PIECES:
            self.pieces = deque([self.ordered()])
            self.skip = 0

    def _forget(self, n: int) -> None:
        """Forget the ``n`` oldest points."""
        self.evicted = True
        self.size -= n
        pieces = self.pieces
        while n:
            left = int(pieces[0][1].size) - self.skip
            if left <= n:
                pieces.popleft()
                self.skip = 0
                n -= left
            else:
                self.skip += n
                n = 0

    def ordered(self) -> tuple[np.ndarray, np.ndarray]:
        """Return copies of the retained points, oldest first."""
        if not self.pieces:
            return np.empty(0), np.empty(0)
        ts = [piece[0] for piece in self.pieces]
        values = [piece[1] for piece in self.pieces]
        ts[0], values[0] = ts[0][self.skip :], values[0][self.skip :]
        return np.concatenate(ts), np.concatenate(values)  # copies, even of a single piece

    def drop_before(self, cutoff: float) -> int:
        """Forget the points older than ``cutoff``; return how many were dropped."""
        ts, _ = self.ordered()
        old = int(np.count_nonzero(ts < cutoff))
        if old:
            self._forget(old)
        return old


class _Series:
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
        "ring",
        "sum",
        "tbuf",
        "total",
    )

    def __init__(self, key: SeriesKey, capacity: int) -> None:
        self.key = key
        # Gauges: (value, monotonic seconds) tuples; other kinds: bare values (fold time).
        self.buf: list[Any] = []
        # Points with explicit wall-clock times: (values, float64 epoch seconds) pairs.
        self.tbuf: list[tuple[list[Any], np.ndarray]] = []
        self.ring = _Ring(capacity)
        # Folded points queued for drain(): one (timestamps, values, stats) piece per fold,
        # each in time order; stats (sum, min, max) is None for a piece cut by _trim_pending.
        self.pending: list[tuple[np.ndarray, np.ndarray, BatchStats | None]] = []
        self.pending_n = 0
        self.total = 0.0  # counters: the running cumulative value
        # Since the collector started, never reset by ring eviction or retention: what a
        # scrape exposes as a summary's _count/_sum must not go down.
        self.count = 0  # valid values folded in (observations, sets, increments)
        self.sum = 0.0  # their sum (for a counter, its total)
        self.last: float | None = None  # the latest valid value (a counter: its total)
        self.handle: Any = None
        # Histograms, timers, distributions: cumulative counts per bucket (``buckets``).
        self.buckets = (
            np.zeros(buckets.SIZE, dtype=np.int64)
            if key.kind in (MetricType.HISTOGRAM, MetricType.TIMER, MetricType.DISTRIBUTION)
            else None
        )


# --- handles: what instrumented code holds ------------------------------------------------------


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


def _strict_check(key: SeriesKey, value: object) -> None:
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

    def __init__(self, series: _Series) -> None:
        self.key = series.key
        self._buf = series.buf

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1) to the counter."""
        self._buf.append(amount)


class _StrictCounterHandle(CounterHandle):
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        _strict_check(self.key, amount)
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
        series: _Series,
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
                _strict_check(key, value)
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
                _strict_check(self.key, value)
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

    def __init__(self, series: _Series, strict: bool) -> None:
        self.key = series.key
        self._series = series
        self._strict = strict
        append = series.buf.append
        if strict:
            key = series.key

            def checked(value: float) -> None:
                _strict_check(key, value)
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
                    _strict_check(self.key, value)
                self._series.buf.extend(kept)
            else:
                self._series.buf.extend(values)
            return
        kept, times = _explicit_times(values, timestamps)
        if self._strict:
            for value in kept:
                _strict_check(self.key, value)
        self._series.tbuf.append((kept, times))

    def time(self) -> _Timing:
        """Return a context manager (``with h.time():``) or decorator (``@h.time()``) that
        observes the elapsed seconds of the block or of each call."""
        return _Timing(self.observe)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """The aggregate of one series (or of several pooled) over a window.

    For histograms, timers, distributions and gauges the statistics are over the points
    (observations or set values). For counters the points are cumulative totals: ``increase``
    is how much the counter grew within the window and ``last`` is its current total.
    ``rate`` is ``increase`` per second for counters and points per second otherwise.
    Percentiles are exact (numpy linear interpolation). Empty windows give None statistics.
    """

    count: int
    window_s: float
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    last: float | None = None
    increase: float = 0.0
    rate: float = 0.0
    truncated: bool = False

    def get(self, aggregation: Aggregation | str) -> float | None:
        """Return the value of one aggregation (None when the window is empty)."""
        agg = Aggregation(aggregation)
        if agg is Aggregation.COUNT:
            return float(self.count)
        if agg is Aggregation.SUM:
            return self.sum if self.count else None
        value: float | None = getattr(self, agg.value)
        return value


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """One series now: totals since the collector started, latest value, recent window.

    ``count`` is how many valid values were folded in (observations, gauge sets, counter
    increments) and ``sum`` their sum (a counter's total); neither ever decreases, whatever the
    ring buffer or retention forgot (``sum`` can decrease only for negative observations).
    ``last`` is the latest value (a gauge's current value, a counter's total), None before the
    first. ``window`` is the ``Summary`` of the retained points of the last ``window_s`` s.
    """

    key: SeriesKey
    count: int
    sum: float
    last: float | None
    window: Summary
    #: Histograms, timers, distributions: cumulative per-bucket counts (see ``buckets``).
    buckets: np.ndarray | None = None


def summarize(
    ts: np.ndarray, values: np.ndarray, kind: MetricType, window_s: float, base: float = 0.0
) -> Summary:
    """Return the Summary of points (``ts``, ``values``) already cut to a window.

    ``base`` is, for counters, the cumulative total just before the window.
    """
    n = int(values.size)
    if n == 0:
        return Summary(count=0, window_s=window_s)
    if kind is MetricType.COUNTER:
        increase = float(values[-1] - base)
        return Summary(
            count=n,
            window_s=window_s,
            sum=increase,
            min=float(values.min()),
            max=float(values.max()),
            mean=float(values.mean()),
            p50=None,
            p95=None,
            p99=None,
            last=float(values[-1]),
            increase=increase,
            rate=increase / window_s if window_s > 0 else 0.0,
        )
    return Summary(
        count=n,
        window_s=window_s,
        **value_statistics(values),
        last=float(values[-1]),
        increase=0.0,
        rate=n / window_s if window_s > 0 else 0.0,
    )


# --- the collector ------------------------------------------------------------------------------


def _clean(
    raw: Sequence[Any], kind: MetricType, drops: _Tally[str], ts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    """Return the valid values of a raw buffer as float64, their ``ts`` (when given) and,
    when it was taken on the way, the values' sum; counting what was dropped and why."""
    try:
        arr = np.asarray(raw)
        vectorized = arr.dtype.kind in "fiub" and arr.ndim == 1
    except (ValueError, TypeError):  # ragged or otherwise unconvertible input
        vectorized = False
    if vectorized:
        values = arr.astype(np.float64, copy=False)
        # A clean buffer -- nearly every one -- is vouched for by its sum, which the fold needs
        # anyway: a sum is finite only if every value is (one that overflows goes the exact
        # way below). A call or two where the exact way takes eight, each of which, on a
        # large buffer, lets go of the GIL (see "Sharing the GIL").
        with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN sums are expected here
            total = float(values.sum())
            ts_total = 0.0 if ts is None else float(ts.sum())
        if (
            math.isfinite(total)
            and math.isfinite(ts_total)
            and (kind is not MetricType.COUNTER or not values.size or float(values.min()) >= 0)
        ):
            return values, ts, total
        keep = np.isfinite(values)
    else:
        values = np.zeros(len(raw), dtype=np.float64)
        numeric = np.ones(len(raw), dtype=bool)
        for i, item in enumerate(raw):
            if value_problem(item) == "not_a_number":
                numeric[i] = False
            else:
                values[i] = float(item)  # nan/inf: counted below with the rest
        if not numeric.all():
            drops["not_a_number"] += int(np.count_nonzero(~numeric))
        keep = numeric & np.isfinite(values)
    if not keep.all():
        checked = values[~keep]
        nan = int(np.count_nonzero(np.isnan(checked)))
        inf = int(np.count_nonzero(np.isinf(checked)))
        if nan:
            drops["nan"] += nan
        if inf:
            drops["inf"] += inf
    if kind is MetricType.COUNTER:
        negative = keep & (values < 0)
        if negative.any():
            drops["negative_increment"] += int(np.count_nonzero(negative))
            keep &= ~negative
    if ts is not None:
        good_time = np.isfinite(ts)
        bad_time = keep & ~good_time
        if bad_time.any():
            drops["bad_timestamp"] += int(np.count_nonzero(bad_time))
            keep &= good_time
    if keep.all():
        return values, ts, None
    return values[keep], (None if ts is None else ts[keep]), None


#: Types that numpy converts to float64 exactly as ``float()`` does (fast path of a fold).
_PLAIN_NUMBERS = frozenset({float, int})


def _split_stamped(raw: list[Any]) -> tuple[Any, np.ndarray]:
    """The values and the monotonic times of a gauge buffer of ``(value, time)`` tuples.

    Plain floats and ints come back as one float64 array; anything else (numpy scalars,
    strings, None...) as the recorded objects, for ``_clean`` to check one by one: numpy would
    otherwise parse a string such as ``"1.5"`` as a number.
    """
    flat = chain.from_iterable(raw)
    if set(map(type, chain.from_iterable(raw))) <= _PLAIN_NUMBERS:
        both = np.fromiter(flat, dtype=np.float64, count=2 * len(raw))
        return both[0::2], both[1::2]
    return [point[0] for point in raw], np.array([point[1] for point in raw], dtype=np.float64)


def _batch(
    key: SeriesKey, pieces: list[tuple[np.ndarray, np.ndarray, BatchStats | None]]
) -> SeriesBatch:
    """One SeriesBatch of a series' queued pieces, vouched for (``stats``) when every piece
    is and the pieces follow each other in time."""
    if len(pieces) == 1:
        ts, values, stats = pieces[0]
        return SeriesBatch(key, ts, values, stats)
    stats_list = [piece[2] for piece in pieces]
    joined: BatchStats | None = None
    if all(stats is not None for stats in stats_list) and all(
        float(a[0][-1]) <= float(b[0][0]) for a, b in pairwise(pieces)
    ):
        checked = [stats for stats in stats_list if stats is not None]
        joined = BatchStats(
            sum(stats.sum for stats in checked),
            min(stats.min for stats in checked),
            max(stats.max for stats in checked),
        )
    return SeriesBatch(
        key,
        np.concatenate([piece[0] for piece in pieces]),
        np.concatenate([piece[1] for piece in pieces]),
        joined,
    )


class MetricsCollector:
    """Every series of a process: handles for recording, ``fold`` / ``drain`` / ``summary``
    for the reading side.

    >>> collector = MetricsCollector()
    >>> requests = collector.counter("requests_total", {"route": "/chat"})
    >>> latency = collector.histogram("request_seconds", {"route": "/chat"})
    >>> requests.inc(); latency.observe(0.120)
    >>> collector.summary("request_seconds", {"route": "/chat"}, window_s=60).count
    1

    Parameters: ``capacity`` points retained per series for aggregation; ``retention_s``, the
    age beyond which retained points are forgotten; ``max_pending``, the most points per series
    queued for ``drain()`` once a consumer has attached but has not drained for a while (beyond
    it the oldest are dropped and counted as ``drain_backlog``; before any consumer attaches
    nothing is queued, see "Draining" in the module docstring); ``max_series``, a guard
    against label cardinality explosions; ``strict`` makes bad values raise at the call site
    instead of being counted.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        capacity: int = 8192,
        retention_s: float = 3600.0,
        max_pending: int = 1_000_000,
        max_series: int = 10_000,
        strict: bool = False,
    ) -> None:
        if capacity < 1:
            raise ValidationError(f"capacity must be >= 1 point per series, got {capacity!r}")
        if retention_s <= 0:
            raise ValidationError(f"retention_s must be > 0 seconds, got {retention_s!r}")
        self.clock: Clock = clock or SystemClock()
        self.capacity = capacity
        self.retention_s = float(retention_s)
        self.max_pending = max_pending
        self.max_series = max_series
        self.strict = strict
        self._lock = threading.RLock()
        self._series: dict[SeriesKey, _Series] = {}
        self._kinds: dict[str, MetricType] = {}
        self._dropped: _Tally[str] = _Tally()
        self._dropped_handles: dict[str, CounterHandle] = {}
        self._draining = False  # whether a consumer has attached (see enable_drain)
        # What gauge handles read per point: the C functions themselves for the system clock
        # (a bound Python method would double the cost of a set()).
        system = isinstance(self.clock, SystemClock)
        self._monotonic: Callable[[], float] = time.monotonic if system else self.clock.monotonic
        # Called at the start of every fold (see add_fold_hook); weak for bound methods.
        self._fold_hooks: tuple[Callable[[], Callable[[], object] | None], ...] = ()
        self._in_hooks = False
        self._wall: Callable[[], float] = time.time if system else self.clock.time
        # Tables given to record_table() since the previous fold: (series, timestamps, table).
        self._tables: list[tuple[tuple[_Series, ...], np.ndarray, np.ndarray]] = []

    # handle creation (validation happens here, once) ---------------------------------------------

    def counter(self, name: str, labels: Mapping[str, object] | None = None) -> CounterHandle:
        """Return the counter handle of ``name`` + ``labels`` (the same object on every call)."""
        handle: CounterHandle = self._handle(name, labels, MetricType.COUNTER)
        return handle

    def gauge(self, name: str, labels: Mapping[str, object] | None = None) -> GaugeHandle:
        """Return the gauge handle of ``name`` + ``labels``."""
        handle: GaugeHandle = self._handle(name, labels, MetricType.GAUGE)
        return handle

    def histogram(
        self,
        name: str,
        labels: Mapping[str, object] | None = None,
        kind: MetricType = MetricType.HISTOGRAM,
    ) -> HistogramHandle:
        """Return the handle of a distribution-like series (histogram, timer or distribution)."""
        if MetricType(kind) not in (
            MetricType.HISTOGRAM,
            MetricType.TIMER,
            MetricType.DISTRIBUTION,
        ):
            raise ValidationError(
                f"histogram() kind must be histogram, timer or distribution, got {kind!r}"
            )
        handle: HistogramHandle = self._handle(name, labels, MetricType(kind))
        return handle

    def timer(self, name: str, labels: Mapping[str, object] | None = None) -> HistogramHandle:
        """Return the handle of a timer series (seconds): ``observe(s)`` or ``time()``."""
        return self.histogram(name, labels, MetricType.TIMER)

    def distribution(
        self, name: str, labels: Mapping[str, object] | None = None
    ) -> HistogramHandle:
        """Return the handle of a distribution series (any unit)."""
        return self.histogram(name, labels, MetricType.DISTRIBUTION)

    def record(
        self,
        name: str,
        value: float,
        kind: MetricType = MetricType.GAUGE,
        labels: Mapping[str, object] | None = None,
    ) -> None:
        """Record one value by name (looks the handle up: slower than holding a handle)."""
        handle = self._handle(name, labels, MetricType(kind))
        if isinstance(handle, CounterHandle):
            handle.inc(value)
        elif isinstance(handle, GaugeHandle):
            handle.set(value)
        else:
            handle.observe(value)

    def record_table(
        self,
        handles: Sequence[GaugeHandle | HistogramHandle],
        timestamps: Any,
        table: Any,
        *,
        copy: bool = True,
    ) -> None:
        """Record row ``i`` of ``table`` into the series of ``handles[i]``, one point per
        timestamp (epoch seconds UTC): what ``handles[i].set_many(table[i], timestamps)`` (or
        ``observe_many``) does for each row, for a producer that holds many series' points as
        one table (a run's per-generation statistics).

        The fold checks and takes in the whole table with a handful of numpy calls, however
        many rows it has, where per-series calls cost a few numpy calls per series (each of
        which, on thousands of points, lets go of the GIL: see "Sharing the GIL" in the module
        docstring). A table with a non-finite value or timestamp, or with timestamps out of
        order, is taken in row by row instead, with the usual drops and counts.

        ``copy=False`` hands the arrays over without a copy: the caller must never write them
        again. Counters cannot be recorded this way (their points are running totals).
        """
        members: list[_Series] = []
        for handle in handles:
            series: _Series | None = getattr(handle, "_series", None)
            if series is None or self._series.get(series.key) is not series:
                raise ValidationError(
                    f"record_table needs gauge, histogram or timer handles of this collector, "
                    f"got {handle!r}"
                )
            members.append(series)
        convert = np.array if copy else np.asarray
        try:
            ts = convert(timestamps, dtype=np.float64)
            values = convert(table, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"record_table needs numeric timestamps and a numeric table: {exc}"
            ) from exc
        if ts.ndim != 1 or values.shape != (len(members), ts.size):
            raise ValidationError(
                f"record_table needs one row of values per handle ({len(members)}) and one "
                f"column per timestamp ({ts.size}), got a table of shape {values.shape}"
            )
        if not ts.size or not members:
            return
        if self.strict:
            for series, row in zip(members, values, strict=True):
                for value in row[~np.isfinite(row)][:1].tolist():
                    _strict_check(series.key, value)
            if not np.isfinite(ts).all():
                raise ValidationError(f"timestamps must be finite epoch seconds, got {ts!r}")
        self._tables.append((tuple(members), ts, values))  # atomic append

    def _handle(self, name: str, labels: Mapping[str, object] | None, kind: MetricType) -> Any:
        key = SeriesKey(validate_metric_name(name), normalize_labels(labels), kind)
        series = self._series.get(key)
        if series is not None:
            return series.handle
        with self._lock:
            series = self._series.get(key)
            if series is not None:
                return series.handle
            known = self._kinds.get(name)
            if known is not None and known is not kind:
                raise ValidationError(
                    f"metric {name!r} is already a {known.value}; cannot also be a {kind.value}"
                )
            if len(self._series) >= self.max_series:
                raise ValidationError(
                    f"too many series ({self.max_series}); refusing {name!r} {dict(key.labels)}"
                    " -- labels with unbounded values (ids, timestamps) explode cardinality"
                )
            series = _Series(key, self.capacity)
            if kind is MetricType.COUNTER:
                series.handle = (_StrictCounterHandle if self.strict else CounterHandle)(series)
            elif kind is MetricType.GAUGE:
                series.handle = GaugeHandle(series, self.strict, self._monotonic, self._wall)
            else:
                series.handle = HistogramHandle(series, self.strict)
            self._kinds[name] = kind
            self._series[key] = series
            return series.handle

    # the fold side -------------------------------------------------------------------------------

    def add_fold_hook(self, hook: Callable[[], object]) -> None:
        """Have ``hook()`` called at the start of every fold, holding the collector's lock.

        For recorders that keep cheap raw records of their own on the hot path (e.g. one list
        append per operation) and turn them into points in bulk: the hook records them through
        handles, so they are folded in by the fold that called it -- on the engine's tick and
        before every read. A bound method is held weakly (the hook goes when its object does).
        Hooks must not read the collector; their exceptions are logged, never raised.
        """
        ref: Callable[[], Callable[[], object] | None]
        if inspect.ismethod(hook):
            ref = weakref.WeakMethod(hook)
        else:

            def ref() -> Callable[[], object]:
                return hook

        with self._lock:
            self._fold_hooks = (*self._fold_hooks, ref)

    def remove_fold_hook(self, hook: Callable[[], object]) -> None:
        """Stop calling ``hook`` on folds (and forget hooks whose object is gone)."""
        with self._lock:
            self._fold_hooks = tuple(
                ref for ref in self._fold_hooks if (found := ref()) is not None and found != hook
            )

    def _run_fold_hooks(self) -> None:
        if self._in_hooks:  # a hook that reads the collector would otherwise recurse
            return
        self._in_hooks = True
        try:
            for ref in self._fold_hooks:
                hook = ref()
                if hook is None:
                    continue
                try:
                    hook()
                except Exception:  # a broken recorder must not stop the fold
                    logger.exception("metrics fold hook %r failed", hook)
        finally:
            self._in_hooks = False

    def fold(self) -> None:
        """Take every raw buffer in: validate, timestamp, retain, queue (see the module
        docstring for what each kind's timestamps mean)."""
        with self._lock:
            if self._fold_hooks:
                self._run_fold_hooks()
            now = self.clock.time()
            # Gauges' monotonic readings become wall time with this fold's offset.
            offset = now - self.clock.monotonic()
            drops: _Tally[str] = _Tally()
            if self._tables:
                self._fold_tables(now, offset, drops)
            for series in list(self._series.values()):
                self._fold_series(series, now, offset, drops)
            if drops:
                self._dropped.update(drops)
                for reason, n in drops.items():
                    handle = self._dropped_counter(reason)
                    handle.inc(n)
                    # Folded now, so a read right after this fold already counts these drops.
                    self._fold_series(self._series[handle.key], now, offset, _Tally())

    def _fold_series(self, series: _Series, now: float, offset: float, drops: _Tally[str]) -> None:
        buf, tbuf = series.buf, series.tbuf
        n, m = len(buf), len(tbuf)
        if n == 0 and m == 0:
            return
        kind = series.key.kind
        ts_parts: list[np.ndarray] = []
        value_parts: list[np.ndarray] = []
        untimed_sum: float | None = None
        if m:
            # Appends racing with us land after index m (and n below) and stay for the next fold.
            timed = tbuf[:m]
            del tbuf[:m]
            raw_values: Any
            if m == 1:
                raw_values, times = timed[0]
            else:
                # One validation for every timed append since the last fold: a workload that
                # records a few points per call (an evolution run's end) makes many of them,
                # and numpy's per-call overhead, not the points, would dominate the fold.
                parts = [part for part, _ in timed]
                if all(isinstance(part, np.ndarray) for part in parts):
                    raw_values = np.concatenate(parts)  # numeric arrays: no per-point work
                else:
                    raw_values = list(chain.from_iterable(parts))
                times = np.concatenate([part for _, part in timed])
            values, kept_ts, _ = _clean(raw_values, kind, drops, times)
            if values.size:
                ts_parts.append(kept_ts)  # type: ignore[arg-type]
                value_parts.append(values)
        if n:
            raw = buf[:n]
            del buf[:n]
            if kind is MetricType.GAUGE:
                raw_values, mono = _split_stamped(raw)
                values, kept_ts, _ = _clean(raw_values, kind, drops, mono + offset)
                if values.size:
                    ts_parts.append(kept_ts)  # type: ignore[arg-type]
                    value_parts.append(values)
            else:
                values, _, untimed_sum = _clean(raw, kind, drops)
                if values.size:
                    ts_parts.append(np.full(values.size, now))
                    value_parts.append(values)
        if not value_parts:
            return
        if len(value_parts) == 1:
            ts, values = ts_parts[0], value_parts[0]
        else:
            ts, values = np.concatenate(ts_parts), np.concatenate(value_parts)
        # Only the untimed buffer's points, all stamped ``now``: in order, their sum known.
        untimed_only = not m and kind is not MetricType.GAUGE
        if not untimed_only and ts.size > 1 and bool((ts[1:] < ts[:-1]).any()):
            order = np.argsort(ts, kind="stable")  # equal times keep their recording order
            ts, values = ts[order], values[order]
        if untimed_only and untimed_sum is not None:
            added = untimed_sum
        else:
            with np.errstate(over="ignore"):  # finite values may still sum past float range
                added = float(values.sum())
        series.count += int(values.size)
        series.sum += added
        stats = None
        if kind is MetricType.COUNTER:
            series.total += added
            values = np.array([series.total])
            ts = np.array([now])
            stats = BatchStats(series.total, series.total, series.total)
        elif self._draining:
            stats = BatchStats(added, float(values.min()), float(values.max()))
        self._take_in(series, ts, values, stats, drops)

    def _take_in(
        self,
        series: _Series,
        ts: np.ndarray,
        values: np.ndarray,
        stats: BatchStats | None,
        drops: _Tally[str],
    ) -> None:
        """Retain checked points (in time order) and queue them for drain(); ``stats`` are
        their sum, min and max when the caller has them (else taken here, if queued)."""
        series.last = float(values[-1])
        series.ring.extend(ts, values)
        if series.buckets is not None:
            series.buckets += buckets.count(values)
        if not self._draining:
            return
        if stats is None:
            stats = BatchStats(float(values.sum()), float(values.min()), float(values.max()))
        series.pending.append((ts, values, stats))
        series.pending_n += values.size
        if series.pending_n > self.max_pending:
            self._trim_pending(series, drops)

    def _fold_tables(self, now: float, offset: float, drops: _Tally[str]) -> None:
        """Take in the tables given to ``record_table`` since the previous fold."""
        tables = self._tables
        n = len(tables)
        taken = tables[:n]
        del tables[:n]  # tables recorded meanwhile land after index n: kept for the next fold
        for members, ts, table in taken:
            # A handful of numpy calls over the whole table: the row sums are needed anyway
            # and are finite only if every value of their row is (a sum that overflows sends
            # the table down the per-series path below, which is exact either way).
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                sums = table.sum(axis=1).tolist()
                ts_total = float(ts.sum())
            checked = all(map(math.isfinite, sums)) and math.isfinite(ts_total)
            if checked and ts.size > 1:
                checked = not bool((ts[1:] < ts[:-1]).any())
            if not checked:
                # Something to drop or sort: each row goes the way of set_many(row, ts),
                # folded below in this same fold.
                for series, row in zip(members, table, strict=True):
                    series.tbuf.append((row, ts))
                continue
            every: list[BatchStats | None] = [None] * len(members)
            if self._draining:
                mins, maxs = table.min(axis=1).tolist(), table.max(axis=1).tolist()
                every = [BatchStats(*row) for row in zip(sums, mins, maxs, strict=True)]
            size = int(ts.size)
            for series, row, total, stats in zip(members, table, sums, every, strict=True):
                series.count += size
                series.sum += total
                self._take_in(series, ts, row, stats, drops)

    def _trim_pending(self, series: _Series, drops: _Tally[str]) -> None:
        ts = np.concatenate([piece[0] for piece in series.pending])
        values = np.concatenate([piece[1] for piece in series.pending])
        excess = values.size - self.max_pending
        drops["drain_backlog"] += excess
        series.pending = [(ts[excess:], values[excess:], None)]
        series.pending_n = self.max_pending

    def _dropped_counter(self, reason: str) -> CounterHandle:
        handle = self._dropped_handles.get(reason)
        if handle is None:
            handle = self.counter(DROPPED_METRIC, {"reason": reason})
            self._dropped_handles[reason] = handle
        return handle

    @property
    def draining(self) -> bool:
        """Whether a consumer has attached, so that folded points are queued for ``drain()``."""
        return self._draining

    def enable_drain(self) -> None:
        """Start queueing points for ``drain()`` (a consumer has attached); idempotent.

        The points the rings still retain are queued first, so the first ``drain()`` hands
        over the recent history (at most ``capacity`` points per series) and every later one
        the points folded since the previous drain, each exactly once.
        """
        with self._lock:
            if self._draining:
                return
            self.fold()
            for series in self._series.values():
                if series.ring.size:
                    ts, values = series.ring.ordered()
                    # Retained points are in fold order, not always in time order: unvouched.
                    series.pending = [(ts, values, None)]
                    series.pending_n = int(values.size)
            self._draining = True

    def pending_points(self) -> int:
        """How many points are queued for ``drain()``, after a fold (0 before a consumer
        attaches)."""
        with self._lock:
            self.fold()
            return sum(series.pending_n for series in self._series.values())

    def drain(self) -> list[SeriesBatch]:
        """Return every point recorded since the previous drain, exactly once.

        The first call attaches the caller as the consumer (``enable_drain()``): it returns the
        points the rings still retain. Counters come as cumulative totals (one point per fold
        that changed them).
        """
        with self._lock:
            self.enable_drain()
            self.fold()
            batches = []
            for series in self._series.values():
                if series.pending_n:
                    batches.append(_batch(series.key, series.pending))
                    series.pending, series.pending_n = [], 0
            return batches

    def cleanup(self) -> int:
        """Forget retained points older than ``retention_s``; return how many were forgotten."""
        with self._lock:
            self.fold()
            cutoff = self.clock.time() - self.retention_s
            return sum(s.ring.drop_before(cutoff) for s in self._series.values())

    def dropped(self) -> dict[str, int]:
        """Return how many recorded values were dropped, by reason (nan, inf, not_a_number,
        negative_increment, drain_backlog)."""
        with self._lock:
            self.fold()
            return dict(self._dropped)

    # reading -------------------------------------------------------------------------------------

    def series_keys(self, name: str | None = None) -> list[SeriesKey]:
        """Return the keys of every series (or of the series named ``name``)."""
        with self._lock:
            return [k for k in self._series if name is None or k.name == name]

    def metric_names(self) -> dict[str, MetricType]:
        """Return every metric name recorded so far with its kind, names sorted."""
        with self._lock:
            return dict(sorted(self._kinds.items()))

    def snapshot(self, name: str | None = None, window_s: float = 60.0) -> list[SeriesSnapshot]:
        """Return the state of every series (or of those named ``name``), sorted by name and
        labels: cumulative count and sum since the collector started, the latest value, and
        the aggregate of the last ``window_s`` seconds.

        Unlike ``points()``, the totals cover everything ever recorded, not just the retained
        points, so successive snapshots never see them go down (what Prometheus ``_count`` /
        ``_sum`` and ``rate()`` need).
        """
        if not (isinstance(window_s, int | float) and 0 < window_s < float("inf")):
            raise ValidationError(f"window_s={window_s!r} must be a positive number of seconds")
        with self._lock:
            self.fold()
            now = self.clock.time()
            chosen = sorted(
                (s for k, s in self._series.items() if name is None or k.name == name),
                key=lambda s: (s.key.name, s.key.labels),
            )
            return [
                SeriesSnapshot(
                    key=s.key,
                    count=s.count,
                    sum=s.sum,
                    last=s.last,
                    window=self._summarize([s], window_s, now),
                    buckets=None if s.buckets is None else s.buckets.copy(),
                )
                for s in chosen
            ]

    def kind_of(self, name: str) -> MetricType | None:
        """Return the kind of metric ``name``, or None if nothing of that name exists."""
        return self._kinds.get(name)

    def points(
        self, name: str, labels: Mapping[str, object] | None = None, kind: MetricType | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the retained (timestamps, values) of one series, oldest first."""
        series = self._find(name, labels, kind)
        with self._lock:
            self.fold()
            return series.ring.ordered()

    def summary(
        self,
        name: str,
        labels: Mapping[str, object] | None = None,
        window_s: float = 60.0,
        kind: MetricType | None = None,
    ) -> Summary:
        """Return the aggregate of one series over the last ``window_s`` seconds."""
        series = self._find(name, labels, kind)
        with self._lock:
            self.fold()
            return self._summarize([series], window_s, self.clock.time())

    def query(
        self,
        name: str,
        match: Mapping[str, object] | None = None,
        window_s: float = 60.0,
        pool: bool = False,
    ) -> list[tuple[SeriesKey, Summary]]:
        """Return the aggregate of every series named ``name`` whose labels include ``match``.

        With ``pool=True`` the matching series are pooled into one summary (percentiles over
        all their points together; counter increases added), returned under a key holding only
        the ``match`` labels. Unknown names give an empty list.
        """
        wanted = normalize_labels(match)
        with self._lock:
            self.fold()
            now = self.clock.time()
            chosen = [
                s
                for k, s in self._series.items()
                if k.name == name and set(wanted) <= set(k.labels)
            ]
            if not chosen:
                return []
            if pool:
                key = SeriesKey(name, wanted, chosen[0].key.kind)
                return [(key, self._summarize(chosen, window_s, now))]
            return [(s.key, self._summarize([s], window_s, now)) for s in chosen]

    def _find(
        self, name: str, labels: Mapping[str, object] | None, kind: MetricType | None
    ) -> _Series:
        kind = kind or self._kinds.get(name)
        if kind is None:
            raise ValidationError(f"no metric named {name!r} has been recorded")
        key = SeriesKey(name, normalize_labels(labels), kind)
        series = self._series.get(key)
        if series is None:
            known = [dict(k.labels) for k in self._series if k.name == name]
            raise ValidationError(
                f"metric {name!r} has no series with labels {dict(key.labels)}; known: {known}"
            )
        return series

    def _summarize(self, chosen: list[_Series], window_s: float, now: float) -> Summary:
        if window_s <= 0:
            raise ValidationError(f"window_s must be > 0 seconds, got {window_s!r}")
        cutoff = now - window_s
        kind = chosen[0].key.kind
        all_ts, all_values, truncated = [], [], False
        base_total = 0.0
        for series in chosen:
            ts, values = series.ring.ordered()
            inside = ts >= cutoff
            before = ~inside
            if kind is MetricType.COUNTER:
                if before.any():
                    base_total += float(values[before][-1])
                elif series.ring.evicted and inside.any():
                    base_total += float(values[inside][0])
            elif series.ring.evicted and not before.any():
                truncated = True
            all_ts.append(ts[inside])
            all_values.append(values[inside])
        if kind is MetricType.COUNTER and len(chosen) > 1:
            return self._pool_counters(chosen, all_ts, all_values, base_total, window_s)
        ts = np.concatenate(all_ts) if all_ts else np.empty(0)
        values = np.concatenate(all_values) if all_values else np.empty(0)
        if len(chosen) > 1:
            order = np.argsort(ts, kind="stable")
            values = values[order]
        result = summarize(ts, values, kind, window_s, base=base_total)
        if truncated:
            result = _replace_truncated(result)
        return result

    @staticmethod
    def _pool_counters(
        chosen: list[_Series],
        all_ts: list[np.ndarray],
        all_values: list[np.ndarray],
        base_total: float,
        window_s: float,
    ) -> Summary:
        # Pooled counters: the total is the sum of each series' latest total.
        last = sum(float(s.ring.ordered()[1][-1]) for s in chosen if s.ring.size)
        count = sum(int(v.size) for v in all_values)
        if count == 0:
            return Summary(count=0, window_s=window_s)
        increase = last - base_total
        return Summary(
            count=count,
            window_s=window_s,
            sum=increase,
            last=last,
            increase=increase,
            rate=increase / window_s,
        )


def _replace_truncated(summary: Summary) -> Summary:
    return replace(summary, truncated=True)


# --- per-component recording --------------------------------------------------------------------

LATENCY_METRIC = "allele_component_latency_seconds"
OPERATIONS_METRIC = "allele_component_operations_total"
ERRORS_METRIC = "allele_component_errors_total"
HEARTBEATS_METRIC = "allele_component_heartbeats_total"
ERROR_RATE_METRIC = "allele_component_error_rate"
HEARTBEAT_AGE_METRIC = "allele_component_heartbeat_age_seconds"
RESOURCE_METRICS = {
    "cpu_percent": "allele_component_cpu_percent",
    "memory_bytes": "allele_component_memory_bytes",
    "gpu_memory_bytes": "allele_component_gpu_memory_bytes",
}


class _OperationTiming:
    """Times a block or each call of a function; records its latency and success, or its
    error (labelled with the exception's class name) when it raises."""

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

    >>> component = ComponentMetricsCollector(MetricsCollector(), "evo-1",
    ...                                       ComponentType.EVOLUTION_ENGINE)
    >>> with component.timer("generation"):
    ...     pass                      # records latency and a success
    >>> component.record_error("generation", "TimeoutError")
    >>> component.heartbeat()
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
        """Say the component is alive now."""
        self._last_heartbeat = self.collector.clock.time()
        self._last_heartbeat_mono = self.collector.clock.monotonic()
        self._heartbeats.inc()

    def timer(self, operation: str = "default") -> _OperationTiming:
        """Return a context manager / decorator timing ``operation``: it records the latency,
        and a success or (when the block raises) an error named for the exception class."""
        return _OperationTiming(self, operation)

    def _finish(self, operation: str, seconds: float, exc_type: type[BaseException] | None) -> None:
        self.record_latency(seconds, operation)
        if exc_type is None:
            self.record_success(operation)
        else:
            self.record_error(operation, exc_type.__name__)

    # reading -------------------------------------------------------------------------------------

    def heartbeat_age_s(self) -> float | None:
        """Return seconds since the last heartbeat (monotonic), or None if there was none."""
        if self._last_heartbeat_mono is None:
            return None
        return max(0.0, self.collector.clock.monotonic() - self._last_heartbeat_mono)

    def performance(self, window_s: float | None = None) -> PerformanceMetrics:
        """Return latency percentiles, throughput, error rate and resources over the window."""
        window = float(window_s or self.health_window_s)
        collector = self.collector
        ok = _increase(collector, OPERATIONS_METRIC, {**self.labels, "outcome": "success"}, window)
        bad = _increase(collector, OPERATIONS_METRIC, {**self.labels, "outcome": "error"}, window)
        total = ok + bad
        pooled = collector.query(LATENCY_METRIC, self.labels, window, pool=True)
        latency = pooled[0][1] if pooled else Summary(count=0, window_s=window)
        age = max(collector.clock.monotonic() - self._registered_mono, 1e-9)
        effective = min(window, max(age, 1.0))  # a young component: ops over >= 1 s
        resources = {}
        for field_name, metric in RESOURCE_METRICS.items():
            found = collector.query(metric, self.labels, window)
            resources[field_name] = found[0][1].last if found else None
        return PerformanceMetrics(
            window_s=window,
            operation_count=round(total),
            error_count=round(bad),
            latency_mean_s=latency.mean,
            latency_p50_s=latency.p50,
            latency_p95_s=latency.p95,
            latency_p99_s=latency.p99,
            latency_max_s=latency.max,
            throughput_per_s=total / effective,
            error_rate=bad / total if total else 0.0,
            cpu_percent=resources["cpu_percent"],
            memory_bytes=resources["memory_bytes"],
            gpu_memory_bytes=resources["gpu_memory_bytes"],
        )

    def health(self, performance: PerformanceMetrics | None = None) -> HealthStatus:
        """Return the health: unknown with no heartbeat and no operations; unhealthy when the
        heartbeat is older than 3x ``heartbeat_timeout_s`` or the error rate reaches
        ``unhealthy_error_rate``; degraded past 1x the timeout or ``degraded_error_rate``."""
        perf = performance or self.performance()
        age = self.heartbeat_age_s()
        if age is None and perf.operation_count == 0:
            return HealthStatus.UNKNOWN
        status = HealthStatus.HEALTHY
        if age is not None and age > 3 * self.heartbeat_timeout_s:
            return HealthStatus.UNHEALTHY
        if age is not None and age > self.heartbeat_timeout_s:
            status = HealthStatus.DEGRADED
        if perf.operation_count:
            if perf.error_rate >= self.unhealthy_error_rate:
                return HealthStatus.UNHEALTHY
            if perf.error_rate >= self.degraded_error_rate:
                status = HealthStatus.DEGRADED
        return status

    def get_metrics(self, window_s: float | None = None) -> ComponentMetrics:
        """Return a snapshot: identity, health, heartbeat and performance over the window."""
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
        )

    def publish_health(self) -> ComponentMetrics:
        """Record the error rate and heartbeat age as gauges (for alert rules); return the
        snapshot they came from."""
        snapshot = self.get_metrics()
        self.collector.gauge(ERROR_RATE_METRIC, self.labels).set(snapshot.performance.error_rate)
        age = snapshot.heartbeat_age_s
        if age is not None:
            self.collector.gauge(HEARTBEAT_AGE_METRIC, self.labels).set(age)
        return snapshot


def _increase(
    collector: MetricsCollector, name: str, match: Mapping[str, str], window_s: float
) -> float:
    found = collector.query(name, match, window_s, pool=True)
    return found[0][1].increase if found else 0.0
