"""The fold: where recorded points become a series' state, once per engine tick.

``fold_series`` (and ``fold_tables`` for tables given to ``record_table``) take each raw buffer
in: values are validated in bulk with numpy (NaN, infinity, non-numbers, bad timestamps and
negative counter increments are dropped and counted, never raised), timestamped (see
``handles``), put in time order, retained in the series' ring and -- once a consumer has
attached -- queued for ``drain()``. A counter becomes one point per fold that changed it, its
running total (what a Prometheus scrape sees).

This is the GIL-sensitive code of the collector: it runs on a background thread beside the
monitored program, so it keeps large arrays whole and makes few numpy calls per fold (the note
"Sharing the GIL" in docs/architecture.md says why and how).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import chain, pairwise
from typing import Any

import numpy as np

from allele.observability import buckets
from allele.observability.collector.handles import Series
from allele.observability.types import BatchStats, MetricType, SeriesBatch, SeriesKey, value_problem

#: A tally of dropped values by reason.
Drops = Counter[str]


def clean(
    raw: Sequence[Any], kind: MetricType, drops: Drops, ts: np.ndarray | None = None
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
        # large buffer, lets go of the GIL (see the GIL note).
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


def batch(
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


def fold_series(
    series: Series, now: float, offset: float, drops: Drops, queue: bool, max_pending: int
) -> None:
    """Take ``series``' raw buffers in: ``now`` is the fold's wall time, ``offset`` turns the
    gauges' monotonic readings into wall time, ``queue`` says whether a consumer drains."""
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
            # records a few points per call makes many of them, and numpy's per-call
            # overhead, not the points, would dominate the fold.
            parts = [part for part, _ in timed]
            if all(isinstance(part, np.ndarray) for part in parts):
                raw_values = np.concatenate(parts)  # numeric arrays: no per-point work
            else:
                raw_values = list(chain.from_iterable(parts))
            times = np.concatenate([part for _, part in timed])
        values, kept_ts, _ = clean(raw_values, kind, drops, times)
        if values.size:
            ts_parts.append(kept_ts)  # type: ignore[arg-type]
            value_parts.append(values)
    if n:
        raw = buf[:n]
        del buf[:n]
        if kind is MetricType.GAUGE:
            raw_values, mono = _split_stamped(raw)
            values, kept_ts, _ = clean(raw_values, kind, drops, mono + offset)
            if values.size:
                ts_parts.append(kept_ts)  # type: ignore[arg-type]
                value_parts.append(values)
        else:
            values, _, untimed_sum = clean(raw, kind, drops)
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
    elif queue:
        stats = BatchStats(added, float(values.min()), float(values.max()))
    take_in(series, ts, values, stats, now, drops, queue, max_pending)


def fold_tables(
    tables: list[tuple[tuple[Series, ...], np.ndarray, np.ndarray]],
    now: float,
    drops: Drops,
    queue: bool,
    max_pending: int,
) -> None:
    """Take in the tables given to ``record_table`` since the previous fold (a table whose
    values or timestamps need dropping or sorting goes to its rows' timed buffers instead,
    for ``fold_series`` to take in in the same fold)."""
    n = len(tables)
    taken = tables[:n]
    del tables[:n]  # tables recorded meanwhile land after index n: kept for the next fold
    for members, ts, table in _joined(taken):
        # A handful of numpy calls over the whole table: the row sums are needed anyway and
        # are finite only if every value of their row is (a sum that overflows sends the
        # table down the per-series path, which is exact either way).
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            sums = table.sum(axis=1).tolist()
            ts_total = float(ts.sum())
        checked = all(map(math.isfinite, sums)) and math.isfinite(ts_total)
        if checked and ts.size > 1:
            checked = not bool((ts[1:] < ts[:-1]).any())
        if not checked:
            for series, row in zip(members, table, strict=True):
                series.tbuf.append((row, ts))
            continue
        every: list[BatchStats | None] = [None] * len(members)
        if queue:
            mins, maxs = table.min(axis=1).tolist(), table.max(axis=1).tolist()
            every = [BatchStats(*row) for row in zip(sums, mins, maxs, strict=True)]
        size = int(ts.size)
        for series, row, total, stats in zip(members, table, sums, every, strict=True):
            series.count += size
            series.sum += total
            take_in(series, ts, row, stats, now, drops, queue, max_pending)


def _joined(
    tables: list[tuple[tuple[Series, ...], np.ndarray, np.ndarray]],
) -> list[tuple[tuple[Series, ...], np.ndarray, np.ndarray]]:
    """``tables`` with each run of consecutive tables of the same series joined into one.

    A monitor records a table per run (evolution: one per ~10 ms run, some 100 a second); each
    table costs the fold a few numpy calls per series, and any numpy call that lets go of the
    GIL hands it to the workload's thread and costs that thread a wait to get it back (see the
    GIL note in docs/architecture.md). Joined, a second of runs costs those calls once. The
    joined timestamps are checked for order like any table's, so tables out of order still go
    the per-series way."""
    joined: list[tuple[tuple[Series, ...], np.ndarray, np.ndarray]] = []
    start = 0
    for i in range(1, len(tables) + 1):
        if i < len(tables) and _same(tables[i][0], tables[start][0]):
            continue
        if i - start == 1:
            joined.append(tables[start])
        else:
            run = tables[start:i]
            joined.append(
                (
                    run[0][0],
                    np.concatenate([ts for _, ts, _ in run]),
                    np.concatenate([table for _, _, table in run], axis=1),
                )
            )
        start = i
    return joined


def _same(a: tuple[Series, ...], b: tuple[Series, ...]) -> bool:
    """The same series in the same order (by identity: a series compares by more than that)."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def take_in(
    series: Series,
    ts: np.ndarray,
    values: np.ndarray,
    stats: BatchStats | None,
    now: float,
    drops: Drops,
    queue: bool,
    max_pending: int,
) -> None:
    """Retain checked points (in time order) and, when ``queue``, queue them for drain();
    ``stats`` are their sum, min and max when the caller has them (else taken here)."""
    series.ring.extend(ts, values)
    if series.buckets is not None:
        series.buckets += buckets.count(values)
    newest = series.ring.newest()
    if newest is not None:  # the newest in time, not the last folded
        series.last = newest[1]
    series.updated = now
    if not queue:
        return
    if stats is None:
        stats = BatchStats(float(values.sum()), float(values.min()), float(values.max()))
    series.pending.append((ts, values, stats))
    series.pending_n += values.size
    if series.pending_n > max_pending:
        _trim_pending(series, drops, max_pending)


def _trim_pending(series: Series, drops: Drops, max_pending: int) -> None:
    ts = np.concatenate([piece[0] for piece in series.pending])
    values = np.concatenate([piece[1] for piece in series.pending])
    excess = values.size - max_pending
    drops["drain_backlog"] += excess
    series.pending = [(ts[excess:], values[excess:], None)]
    series.pending_n = max_pending
