"""Reading a window of a series: ``Summary`` (count, sum, min, max, mean, exact p50/p95/p99,
last, increase, rate) and ``SeriesSnapshot`` (totals since the start, the newest value, the
window, and whether the series went stale).

Percentiles are exact (numpy's linear interpolation) over every retained point in the window.
Each series retains at most ``capacity`` points and none older than ``retention_s``; when more
points than ``capacity`` fall in a window, the summary covers the newest ``capacity`` of them
(``Summary.truncated`` says so).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from allele.errors import ValidationError
from allele.observability.collector.handles import Series
from allele.observability.types import Aggregation, MetricType, SeriesKey, value_statistics


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

    ``updated_at`` is when a fold last took points into the series (epoch seconds UTC, None
    before the first); ``stale`` says its writer is done or stopped reporting (see
    ``MetricsCollector.mark_stale``, and ``stale_after_s``): its ``last`` is an old value, not
    the current state (readers such as exposition omit it or give it its timestamp, as
    Prometheus does for a vanished series).
    """

    key: SeriesKey
    count: int
    sum: float
    last: float | None
    window: Summary
    updated_at: float | None = None
    stale: bool = False
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


def summarize_window(chosen: list[Series], window_s: float, now: float) -> Summary:
    """The Summary of the retained points of ``chosen`` (one series, or several of one kind
    pooled) in the ``window_s`` seconds up to ``now``."""
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
        return _pool_counters(chosen, all_ts, all_values, base_total, window_s)
    ts = np.concatenate(all_ts) if all_ts else np.empty(0)
    values = np.concatenate(all_values) if all_values else np.empty(0)
    if len(chosen) > 1:
        order = np.argsort(ts, kind="stable")
        values = values[order]
    result = summarize(ts, values, kind, window_s, base=base_total)
    if truncated:
        result = _replace_truncated(result)
    return result


def _pool_counters(
    chosen: list[Series],
    all_ts: list[np.ndarray],
    all_values: list[np.ndarray],
    base_total: float,
    window_s: float,
) -> Summary:
    # Pooled counters: the total is the sum of each series' latest total.
    last = sum(newest[1] for s in chosen if (newest := s.ring.newest()) is not None)
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
