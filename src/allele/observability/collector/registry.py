"""``MetricsCollector``: every series of a process -- handles for recording, one ``fold()`` per
engine tick, and reads of the state the last fold left.

Reads (``summary``, ``query``, ``points``, ``snapshot``, ``dropped``, ``pending_points``)
never fold: they see what the last fold took in, at most one engine tick old. The fold runs
on the engine's tick (``ObservabilityEngine.tick``); a caller without an engine folds itself
(``collector.fold()``). ``drain()`` -- the store's handover, not a read -- folds first, so that
a flush writes everything recorded up to it.

Draining: nothing is queued for ``drain()`` until a consumer attaches (``enable_drain()``, which
the store's ``Flusher`` calls, or the first ``drain()``). A collector nobody drains holds only
its rings: memory stays bounded by ``capacity`` points per series. When a consumer attaches, the
points still retained are queued first (at most ``capacity`` per series, none older than
``retention_s``), and from then on every folded point is handed over by ``drain()`` exactly once.

Identity: every series carries an ``instance`` label naming the writer (``ALLELE_INSTANCE``,
default ``host:pid``), so that processes sharing one store never merge into one series. Reads
that name a series by its labels may leave it out.

Refused at handle creation, with a ``ValidationError`` naming the value: invalid names and
label names (a trailing newline too), label values that are not valid Unicode (a lone
surrogate), the reserved labels ``quantile``, ``le`` and ``instance``, a name recorded as another
kind, and a name whose exposed sample names collide with another's (a counter ``x`` exposes
``x_total``, so a gauge ``x_total`` is refused; a distribution ``y`` exposes ``y_sum``,
``y_count`` and ``y_bucket``). Past ``max_series`` a new series is not refused but dropped:
its handle records into nothing, the drop is counted (``series_limit``) and logged once --
monitoring never raises into the workload for the data it is given.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.clock import Clock, SystemClock
from allele.observability.collector.fold import Drops, batch, fold_series, fold_tables
from allele.observability.collector.handles import (
    CounterHandle,
    GaugeHandle,
    HistogramHandle,
    Series,
    StrictCounterHandle,
    refused_series,
    strict_check,
)
from allele.observability.collector.summaries import SeriesSnapshot, Summary, summarize_window
from allele.observability.metric_names import DROPPED_METRIC
from allele.observability.types import (
    RESERVED_LABELS,
    MetricType,
    SeriesBatch,
    SeriesKey,
    check_user_labels,
    normalize_labels,
    validate_metric_name,
)

logger = logging.getLogger("allele.observability.collector")

INSTANCE_LABEL = "instance"
INSTANCE_ENV = "ALLELE_INSTANCE"
_USER_RESERVED = RESERVED_LABELS | {INSTANCE_LABEL}
_DISTRIBUTIONS = (MetricType.HISTOGRAM, MetricType.TIMER, MetricType.DISTRIBUTION)


def default_instance() -> str:
    """This writer's identity: ``ALLELE_INSTANCE`` if set, else ``<host name>:<pid>``."""
    return os.environ.get(INSTANCE_ENV, "").strip() or f"{socket.gethostname()}:{os.getpid()}"


def exposed_names(name: str, kind: MetricType) -> frozenset[str]:
    """The sample names the exposition format writes for metric ``name`` of ``kind``."""
    if kind is MetricType.COUNTER:
        return frozenset({name if name.endswith("_total") else f"{name}_total"})
    if kind in _DISTRIBUTIONS:
        return frozenset({name, f"{name}_sum", f"{name}_count", f"{name}_bucket"})
    return frozenset({name})


class MetricsCollector:
    """Every series of a process: handles for recording, ``fold`` / ``drain`` / ``summary``
    for the reading side.

    >>> collector = MetricsCollector(instance="docs")
    >>> requests = collector.counter("requests_total", {"route": "/chat"})
    >>> latency = collector.histogram("request_seconds", {"route": "/chat"})
    >>> requests.inc(); latency.observe(0.120)
    >>> collector.fold()              # the engine's tick does this once a second
    >>> collector.summary("request_seconds", {"route": "/chat"}, window_s=60).count
    1

    Parameters: ``capacity`` points retained per series for aggregation; ``retention_s``, the
    age beyond which retained points are forgotten; ``max_pending``, the most points per series
    queued for ``drain()`` (beyond it the oldest are dropped and counted as ``drain_backlog``);
    ``max_series``, a guard against label cardinality explosions; ``strict`` makes bad values
    raise at the call site instead of being counted; ``instance``, the writer's identity (see
    the module docstring); ``stale_after_s``, how long a series may go without a new point
    before its snapshots say it is stale (None, the default: never by age alone -- a live
    writer's last value is its current state; its series go stale when ``mark_stale`` says so,
    as the engine does for a detached component or one that stopped heartbeating).
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
        instance: str | None = None,
        stale_after_s: float | None = None,
    ) -> None:
        if capacity < 1:
            raise ValidationError(f"capacity must be >= 1 point per series, got {capacity!r}")
        if retention_s <= 0:
            raise ValidationError(f"retention_s must be > 0 seconds, got {retention_s!r}")
        if stale_after_s is not None and not stale_after_s > 0:
            raise ValidationError(
                f"stale_after_s must be > 0 seconds or None, got {stale_after_s!r}"
            )
        self.instance = default_instance() if instance is None else instance
        if not isinstance(self.instance, str) or not self.instance.strip():
            raise ValidationError(
                f"instance must be a non-empty string naming this writer, got {instance!r}"
            )
        normalize_labels({INSTANCE_LABEL: self.instance})  # a value every store can write
        self._identity = ((INSTANCE_LABEL, self.instance),)
        self.clock: Clock = clock or SystemClock()
        self.capacity = capacity
        self.retention_s = float(retention_s)
        self.max_pending = max_pending
        self.max_series = max_series
        self.strict = strict
        self.stale_after_s = None if stale_after_s is None else float(stale_after_s)
        self._lock = threading.RLock()
        self._series: dict[SeriesKey, Series] = {}
        self._kinds: dict[str, MetricType] = {}
        self._exposed: dict[str, str] = {}  # exposed sample name -> the metric name it is of
        self._dropped: Drops = Drops()
        self._dropped_handles: dict[str, CounterHandle] = {}
        self._refused = 0  # series refused at the cap since the last fold
        self._warned_cap = False
        self._stale_keys: set[SeriesKey] = set()  # marked stale until their next point
        self._draining = False  # whether a consumer has attached (see enable_drain)
        # What gauge handles read per point: the C functions themselves for the system clock
        # (a bound Python method would double the cost of a set()).
        system = isinstance(self.clock, SystemClock)
        self._monotonic: Callable[[], float] = time.monotonic if system else self.clock.monotonic
        self._wall: Callable[[], float] = time.time if system else self.clock.time
        # Tables given to record_table() since the previous fold: (series, timestamps, table).
        self._tables: list[tuple[tuple[Series, ...], np.ndarray, np.ndarray]] = []

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
        if MetricType(kind) not in _DISTRIBUTIONS:
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
        many rows it has (see the GIL note in docs/architecture.md). A table with a non-finite
        value or timestamp, or with timestamps out of order, is taken in row by row instead,
        with the usual drops and counts. Rows of handles refused at the series cap are left
        out. ``copy=False`` hands the arrays over without a copy: the caller must never write
        them again. Counters cannot be recorded this way (their points are running totals).
        """
        members: list[Series] = []
        keep: list[int] = []
        for i, handle in enumerate(handles):
            series: Series | None = getattr(handle, "_series", None)
            if series is None:
                raise ValidationError(
                    f"record_table needs gauge, histogram or timer handles of this collector, "
                    f"got {handle!r}"
                )
            if self._series.get(series.key) is series:
                members.append(series)
                keep.append(i)
            elif not series.refused:  # a refused series' row goes nowhere, like its handle's
                raise ValidationError(
                    f"record_table needs handles of this collector, got {handle!r}"
                )
        convert = np.array if copy else np.asarray
        try:
            ts = convert(timestamps, dtype=np.float64)
            values = convert(table, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"record_table needs numeric timestamps and a numeric table: {exc}"
            ) from exc
        if ts.ndim != 1 or values.shape != (len(handles), ts.size):
            raise ValidationError(
                f"record_table needs one row of values per handle ({len(handles)}) and one "
                f"column per timestamp ({ts.size}), got a table of shape {values.shape}"
            )
        if not ts.size or not members:
            return
        if len(keep) != len(handles):
            values = values[keep]
        if self.strict:
            for series, row in zip(members, values, strict=True):
                for value in row[~np.isfinite(row)][:1].tolist():
                    strict_check(series.key, value)
            if not np.isfinite(ts).all():
                raise ValidationError(f"timestamps must be finite epoch seconds, got {ts!r}")
        self._tables.append((tuple(members), ts, values))  # atomic append

    def _key(self, name: str, labels: Mapping[str, object] | None, kind: MetricType) -> SeriesKey:
        """The key of a series the caller names: its labels plus this writer's instance."""
        pairs = normalize_labels(labels)
        if INSTANCE_LABEL not in dict(pairs):
            pairs = tuple(sorted(pairs + self._identity))
        return SeriesKey(name, pairs, kind)

    def _handle(
        self,
        name: str,
        labels: Mapping[str, object] | None,
        kind: MetricType,
        *,
        internal: bool = False,
    ) -> Any:
        pairs = normalize_labels(labels)
        check_user_labels(pairs, _USER_RESERVED)
        key = SeriesKey(validate_metric_name(name), tuple(sorted(pairs + self._identity)), kind)
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
            exposed = exposed_names(name, kind) if known is None else frozenset()
            for sample in exposed:
                other = self._exposed.get(sample)
                if other is not None and other != name:
                    raise ValidationError(
                        f"metric {name!r} ({kind.value}) would be exposed as {sample!r}, which "
                        f"metric {other!r} ({self._kinds[other].value}) already is; rename one"
                    )
            if len(self._series) >= self.max_series and not internal:
                return self._refuse(key)
            series = Series(key, self.capacity)
            series.handle = self._make_handle(series)
            self._kinds[name] = kind
            for sample in exposed:
                self._exposed[sample] = name
            self._series[key] = series
            return series.handle

    def _make_handle(self, series: Series) -> Any:
        kind = series.key.kind
        if kind is MetricType.COUNTER:
            return (StrictCounterHandle if self.strict else CounterHandle)(series)
        if kind is MetricType.GAUGE:
            return GaugeHandle(series, self.strict, self._monotonic, self._wall)
        return HistogramHandle(series, self.strict)

    def _refuse(self, key: SeriesKey) -> Any:
        """A handle for a series over the cap: it records into nothing (counted, logged once)."""
        self._refused += 1
        if not self._warned_cap:
            self._warned_cap = True
            logger.warning(
                "metrics collector is at its cap of %d series; new series are dropped and "
                'counted in %s{reason="series_limit"} (first: %r %s) -- labels with unbounded '
                "values (ids, timestamps) explode cardinality",
                self.max_series,
                DROPPED_METRIC,
                key.name,
                dict(key.labels),
            )
        return self._make_handle(refused_series(key))

    # the fold ------------------------------------------------------------------------------------

    def fold(self) -> None:
        """Take every raw buffer in: validate, timestamp, retain, queue (see ``fold``)."""
        with self._lock:
            now = self.clock.time()
            # Gauges' monotonic readings become wall time with this fold's offset.
            offset = now - self.clock.monotonic()
            drops = Drops()
            queue, max_pending = self._draining, self.max_pending
            if self._tables:
                fold_tables(self._tables, now, drops, queue, max_pending)
            for series in list(self._series.values()):
                fold_series(series, now, offset, drops, queue, max_pending)
            if self._refused:
                drops["series_limit"] += self._refused
                self._refused = 0
            if self._stale_keys:
                self._stale_keys = {k for k in self._stale_keys if self._series[k].updated != now}
            if drops:
                self._dropped.update(drops)
                for reason, n in drops.items():
                    handle = self._dropped_counter(reason)
                    handle.inc(n)
                    # Folded now, so a read right after this fold already counts these drops.
                    fold_series(self._series[handle.key], now, offset, Drops(), queue, max_pending)

    def _dropped_counter(self, reason: str) -> CounterHandle:
        handle = self._dropped_handles.get(reason)
        if handle is None:
            # Exempt from the series cap: the fold must be able to count what it drops.
            handle = self._handle(
                DROPPED_METRIC, {"reason": reason}, MetricType.COUNTER, internal=True
            )
            self._dropped_handles[reason] = handle
        return handle

    # draining ------------------------------------------------------------------------------------

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
            for series in self._series.values():
                if series.ring.size:
                    ts, values = series.ring.ordered()
                    series.pending = [(ts, values, None)]
                    series.pending_n = int(values.size)
            self._draining = True

    def pending_points(self) -> int:
        """How many points the folds so far queued for ``drain()`` (0 before a consumer
        attaches)."""
        with self._lock:
            return sum(series.pending_n for series in self._series.values())

    def drain(self) -> list[SeriesBatch]:
        """Fold, then return every point recorded since the previous drain, exactly once.

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
                    batches.append(batch(series.key, series.pending))
                    series.pending, series.pending_n = [], 0
            return batches

    def cleanup(self) -> int:
        """Forget retained points older than ``retention_s``; return how many were forgotten."""
        with self._lock:
            cutoff = self.clock.time() - self.retention_s
            return sum(s.ring.drop_before(cutoff) for s in self._series.values())

    def dropped(self) -> dict[str, int]:
        """Return how many recorded values the folds dropped, by reason (nan, inf,
        not_a_number, negative_increment, bad_timestamp, drain_backlog, series_limit)."""
        with self._lock:
            return dict(self._dropped)

    # staleness -----------------------------------------------------------------------------------

    def mark_stale(self, match: Mapping[str, object]) -> int:
        """Mark every series whose labels include ``match`` stale until its next point (its
        writer is done or stopped reporting: a detached component, one whose heartbeat is
        overdue); return how many were marked."""
        wanted = set(normalize_labels(match))
        with self._lock:
            marked = {k for k in self._series if wanted <= set(k.labels)}
            self._stale_keys |= marked
            return len(marked)

    def _is_stale(self, series: Series, now: float) -> bool:
        if series.key in self._stale_keys:
            return True
        limit = self.stale_after_s
        return limit is not None and series.updated is not None and now - series.updated > limit

    # reading: the state the last fold left -------------------------------------------------------

    def series_keys(self, name: str | None = None) -> list[SeriesKey]:
        """Return the keys of every series (or of the series named ``name``)."""
        with self._lock:
            return [k for k in self._series if name is None or k.name == name]

    def metric_names(self) -> dict[str, MetricType]:
        """Return every metric name recorded so far with its kind, names sorted."""
        with self._lock:
            return dict(sorted(self._kinds.items()))

    def kind_of(self, name: str) -> MetricType | None:
        """Return the kind of metric ``name``, or None if nothing of that name exists."""
        return self._kinds.get(name)

    def snapshot(self, name: str | None = None, window_s: float = 60.0) -> list[SeriesSnapshot]:
        """Return the state of every series (or of those named ``name``), sorted by name and
        labels: cumulative count and sum since the collector started, the newest value, the
        aggregate of the last ``window_s`` seconds, when it was last updated and whether it
        is stale.

        Unlike ``points()``, the totals cover everything ever recorded, not just the retained
        points, so successive snapshots never see them go down (what Prometheus ``_count`` /
        ``_sum`` and ``rate()`` need).
        """
        if not (isinstance(window_s, int | float) and 0 < window_s < float("inf")):
            raise ValidationError(f"window_s={window_s!r} must be a positive number of seconds")
        with self._lock:
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
                    window=summarize_window([s], window_s, now),
                    updated_at=s.updated,
                    stale=self._is_stale(s, now),
                    buckets=None if s.buckets is None else s.buckets.copy(),
                )
                for s in chosen
            ]

    def points(
        self, name: str, labels: Mapping[str, object] | None = None, kind: MetricType | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the retained (timestamps, values) of one series, oldest first."""
        series = self._find(name, labels, kind)
        with self._lock:
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
            return summarize_window([series], window_s, self.clock.time())

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
                return [(key, summarize_window(chosen, window_s, now))]
            return [(s.key, summarize_window([s], window_s, now)) for s in chosen]

    def _find(
        self, name: str, labels: Mapping[str, object] | None, kind: MetricType | None
    ) -> Series:
        kind = kind or self._kinds.get(name)
        if kind is None:
            raise ValidationError(f"no metric named {name!r} has been recorded")
        key = self._key(name, labels, kind)
        series = self._series.get(key)
        if series is None:
            known = [dict(k.labels) for k in self._series if k.name == name]
            raise ValidationError(
                f"metric {name!r} has no series with labels {dict(key.labels)}; known: {known}"
            )
        return series
