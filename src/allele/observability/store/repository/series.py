"""Series and their points, stored as chunks (see ``schema.py``).

A ``write_batches`` call adds one row per series (packed float64 blobs and the chunk's count,
sum, min, max and last value) and adds the points' count, sum and bucket counts to the series'
cumulative totals, all in one transaction. Reads select the chunks overlapping the window
through the ``(series_id, t_max)`` index, unpack them with numpy and cut them to the window.
Time windows are half-open, ``start <= ts < end``, in epoch seconds UTC or aware datetimes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from allele.errors import ValidationError
from allele.observability import buckets
from allele.observability.store.epoch import Instant, optional_epoch, to_epoch
from allele.observability.store.repository.base import (
    LabelFilter,
    _label_pairs,
    labels_from_text,
    labels_to_text,
)
from allele.observability.store.repository.chunks import (
    CHUNK_COLUMNS,
    ChunkRow,
    in_time_order,
    pack,
    unpack,
)
from allele.observability.store.repository.compaction import ChunkCompaction
from allele.observability.store.schema import (
    chunks,
    series,
)
from allele.observability.types import (
    BatchStats,
    MetricType,
    SeriesBatch,
    SeriesKey,
    value_statistics,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """Points of a time window, ordered by time: epoch seconds and values (float64)."""

    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Summary of the values in a window; statistics are ``None`` when the window is empty."""

    count: int
    sum: float | None
    min: float | None
    max: float | None
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, values: np.ndarray) -> Aggregate:
        """The summary of ``values`` (percentiles by numpy's linear interpolation)."""
        if values.size == 0:
            return cls(0, None, None, None, None, None, None, None)
        return cls(count=int(values.size), **value_statistics(values))

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a JSON-ready dict."""
        return {field: getattr(self, field) for field in self.__slots__}


@dataclass(frozen=True, slots=True)
class SeriesStats:
    """One series' newest stored point, and the count and sum of every point ever written to it.

    ``count`` and ``sum`` are cumulative: each write adds to them and retention never lowers
    them (a Prometheus ``_count`` / ``_sum`` must not go down). ``last_ts`` / ``last_value`` are
    the latest point still stored; among points at the same instant, the one written last.
    """

    key: SeriesKey
    count: int
    sum: float
    last_ts: float
    last_value: float
    #: Histograms: cumulative counts per bucket of ``buckets.BOUNDS`` (never lowered).
    buckets: tuple[int, ...] | None = None


class SeriesRepository(ChunkCompaction):
    """Metric points as chunks: writes, range reads, latest values, bucket counts, compaction."""

    def __init__(self, engine: Engine, uri: str) -> None:
        super().__init__(engine, uri)
        mark = self._mark
        self._series_ids: dict[SeriesKey, int] = {}
        self._mark = mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        # Driver-level executemany of plain tuples: the cheapest insert SQLAlchemy offers.
        self._insert_chunks_sql = (
            f"INSERT INTO {chunks.name} ({', '.join(CHUNK_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(CHUNK_COLUMNS))})"
        )
        self._chunk_marks = f"({', '.join([mark] * len(CHUNK_COLUMNS))})"
        self._series_table = series.name
        # Series identities, resolved in bulk with plain SQL: a fresh store (every process
        # start) meets all of its series at its first write, and building SQLAlchemy statements
        # per series costs ~0.4 ms each.
        self._insert_series_sql = (
            f"INSERT INTO {series.name} (name, labels, kind) VALUES ({mark}, {mark}, {mark}) "
            "ON CONFLICT (name, labels, kind) DO NOTHING"
        )

    # -- points ---------------------------------------------------------------------------

    def write_batches(self, batches: Sequence[SeriesBatch]) -> int:
        """Store the points of ``batches`` in one transaction; returns how many were written.

        Each series gets one chunk row per call (batches of the same series are merged; more
        than ``CHUNK_MAX_POINTS`` points are split), and its cumulative count and sum grow by
        the points written. NaN values and non-finite timestamps cannot be stored: such points
        are skipped with a warning. Raises ``StoreLockedError`` / ``StoreFullError`` /
        ``StoreError`` and writes nothing when the database refuses the transaction.
        """
        keys, ts_parts, value_parts, vouched = self._clean(batches)
        if not keys:
            return 0
        total = sum(int(part.size) for part in ts_parts)
        # Vouched-for parts (SeriesBatch.stats) are in time order already.
        ordered = _each_in_time_order(
            [ts for ts, stats in zip(ts_parts, vouched, strict=True) if stats is None]
        )
        with self._guard(f"writing {total} points"), self._engine.begin() as conn:
            ids, new_ids = self._resolve_series(conn, keys)
            grouped: dict[int, list[int]] = {}
            for position, series_id in enumerate(ids):
                grouped.setdefault(series_id, []).append(position)
            rows: list[ChunkRow] = []
            totals: list[tuple[int, float, int]] = []
            counted: list[tuple[int, np.ndarray]] = []  # histograms: (series id, values)
            for series_id, positions in grouped.items():
                stats = None
                if len(positions) == 1:
                    ts, values = ts_parts[positions[0]], value_parts[positions[0]]
                    stats = vouched[positions[0]]
                else:
                    ts = np.concatenate([ts_parts[i] for i in positions])
                    values = np.concatenate([value_parts[i] for i in positions])
                if stats is None and (len(positions) > 1 or not ordered):
                    ts, values = in_time_order(ts, values)
                packed = list(pack(series_id, ts, values, stats=stats))
                rows.extend(packed)
                # One chunk's sum is the series' sum: no second pass over its values.
                added = packed[0][4] if len(packed) == 1 else float(values.sum())
                totals.append((int(values.size), added, series_id))
                if keys[positions[0]].kind in _DISTRIBUTIONS:
                    counted.append((series_id, values))
            self._insert_chunks(conn, rows)
            self._add_totals(conn, totals)
            self._add_buckets(conn, counted)
        # Only after commit: a rolled-back transaction also rolled back new series rows.
        self._series_ids.update(new_ids)
        return total

    def _insert_chunks(self, conn: Connection, rows: Sequence[ChunkRow]) -> None:
        """Insert chunk rows with multi-row INSERT statements of up to ``_ROWS_PER_INSERT``
        rows: the driver runs (and lets go of the GIL around) one statement step per
        statement, where executemany steps once per row -- a switch to the workload thread
        and back each time."""
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            part = rows[start : start + _ROWS_PER_INSERT]
            sql = self._insert_chunks_sql
            if len(part) > 1:
                sql += ", " + ", ".join([self._chunk_marks] * (len(part) - 1))
            conn.exec_driver_sql(sql, tuple(value for row in part for value in row))

    def _add_totals(self, conn: Connection, totals: Sequence[tuple[int, float, int]]) -> None:
        """Add (count, sum) to each series' totals (``totals``: count, sum, series id) with one
        UPDATE per ``_ROWS_PER_INSERT`` series (CASE on the id), for the same reason as
        ``_insert_chunks``; plain SQL that SQLite and PostgreSQL both run."""
        mark = self._mark
        for start in range(0, len(totals), _ROWS_PER_INSERT):
            part = totals[start : start + _ROWS_PER_INSERT]
            cases = " ".join([f"WHEN {mark} THEN {mark}"] * len(part))
            ids = ", ".join([mark] * len(part))
            sql = (
                f"UPDATE {self._series_table} "
                f"SET total_count = total_count + CASE series_id {cases} END, "
                f"total_sum = total_sum + CASE series_id {cases} END "
                f"WHERE series_id IN ({ids})"
            )
            params = (
                *(value for n, _, series_id in part for value in (series_id, n)),
                *(value for _, added, series_id in part for value in (series_id, added)),
                *(series_id for _, _, series_id in part),
            )
            conn.exec_driver_sql(sql, params)

    def _add_buckets(self, conn: Connection, written: Sequence[tuple[int, np.ndarray]]) -> None:
        """Add the bucket counts of each histogram's written values (``written``: series id,
        values) to its stored cumulative ones: every series counted at once, then read, then
        one UPDATE per ``_ROWS_PER_INSERT`` series (rows locked first on PostgreSQL)."""
        if not written:
            return
        matrix = buckets.count_many([values for _, values in written])
        counted = [(sid, row) for (sid, _), row in zip(written, matrix, strict=True)]
        mark = self._mark
        ids = [series_id for series_id, _ in counted]
        lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
        stored: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            for series_id, blob in conn.exec_driver_sql(
                f"SELECT series_id, bucket_counts FROM {self._series_table} "
                f"WHERE series_id IN ({', '.join([mark] * len(part))}){lock}",
                tuple(part),
            ):
                if blob is not None and len(blob) == 8 * buckets.SIZE:
                    stored[int(series_id)] = np.frombuffer(bytes(blob), dtype="<i8")
        for start in range(0, len(counted), _ROWS_PER_INSERT):
            rows = counted[start : start + _ROWS_PER_INSERT]
            cases = " ".join([f"WHEN {mark} THEN {mark}"] * len(rows))
            params: list[Any] = []
            for sid, counts in rows:
                total = counts + stored.get(sid, 0)
                params += [sid, total.astype("<i8").tobytes()]
            params += [sid for sid, _ in rows]
            conn.exec_driver_sql(
                f"UPDATE {self._series_table} SET bucket_counts = CASE series_id {cases} END "
                f"WHERE series_id IN ({', '.join([mark] * len(rows))})",
                tuple(params),
            )

    def bucket_counts(self, key: SeriesKey) -> np.ndarray | None:
        """The cumulative bucket counts of histogram series ``key`` (None if it has none)."""
        stmt = select(series.c.bucket_counts).where(
            series.c.name == key.name,
            series.c.labels == labels_to_text(key.labels),
            series.c.kind == str(key.kind),
        )
        with self._guard("reading bucket counts"), self._engine.connect() as conn:
            blob = conn.execute(stmt).scalar_one_or_none()
        if blob is None or len(blob) != 8 * buckets.SIZE:
            return None
        return np.frombuffer(bytes(blob), dtype="<i8").astype(np.int64)

    def series_points(
        self, key: SeriesKey, start: Instant | None = None, end: Instant | None = None
    ) -> SeriesPoints:
        """Points of exactly the series ``key`` in ``[start, end)`` (``query_series`` merges
        every series carrying the given labels: series that differ by ``instance``, say)."""
        ids = [sid for sid, found in self._series_rows(key.name, key.labels) if found == key]
        return self._points(ids, optional_epoch(start, "start"), optional_epoch(end, "end"))

    def _clean(
        self, batches: Sequence[SeriesBatch]
    ) -> tuple[list[SeriesKey], list[np.ndarray], list[np.ndarray], list[BatchStats | None]]:
        """The keys, timestamps and values of the batches' storable points, and each one's
        ``stats`` when its producer vouched for it (then it is taken as it is)."""
        keys: list[SeriesKey] = []
        ts_parts: list[np.ndarray] = []
        value_parts: list[np.ndarray] = []
        vouched: list[BatchStats | None] = []
        unvouched = []
        for batch in batches:
            ts = np.asarray(batch.timestamps, dtype=np.float64)
            values = np.asarray(batch.values, dtype=np.float64)
            if batch.stats is None or ts.ndim != 1 or ts.shape != values.shape:
                unvouched.append(batch)
            elif ts.size:
                keys.append(batch.key)
                ts_parts.append(ts)
                value_parts.append(values)
                vouched.append(batch.stats)
        batches = unvouched
        # Checked all at once first: each numpy call on a large array lets another thread
        # take the GIL (and a thread waiting to take it back waits out the switch interval),
        # so a few calls over every point beat a few calls per series beside a busy workload.
        arrays = [
            (
                np.asarray(batch.timestamps, dtype=np.float64).ravel(),
                np.asarray(batch.values, dtype=np.float64).ravel(),
            )
            for batch in batches
        ]
        if arrays and all(ts.shape == values.shape for ts, values in arrays):
            all_ts = np.concatenate([ts for ts, _ in arrays])
            all_values = np.concatenate([values for _, values in arrays])
            if bool((np.isfinite(all_ts) & ~np.isnan(all_values)).all()):
                for batch, (ts, values) in zip(batches, arrays, strict=True):
                    if ts.size:
                        keys.append(batch.key)
                        ts_parts.append(ts)
                        value_parts.append(values)
                        vouched.append(None)
                return keys, ts_parts, value_parts, vouched
        for batch in batches:
            ts = np.asarray(batch.timestamps, dtype=np.float64).ravel()
            values = np.asarray(batch.values, dtype=np.float64).ravel()
            if ts.shape != values.shape:
                raise ValidationError(
                    f"series {batch.key.name!r} has {ts.size} timestamps but {values.size} "
                    "values; a batch needs one timestamp per value"
                )
            keep = np.isfinite(ts) & ~np.isnan(values)
            if not keep.all():
                log.warning(
                    "skipping %d point(s) of series %r with NaN values or non-finite timestamps",
                    int((~keep).sum()),
                    batch.key.name,
                )
                ts, values = ts[keep], values[keep]
            if ts.size:
                keys.append(batch.key)
                ts_parts.append(ts)
                value_parts.append(values)
                vouched.append(None)
        return keys, ts_parts, value_parts, vouched

    def _resolve_series(
        self, conn: Connection, keys: Sequence[SeriesKey]
    ) -> tuple[list[int], dict[SeriesKey, int]]:
        new: dict[SeriesKey, int] = {}
        missing = [k for k in dict.fromkeys(keys) if k not in self._series_ids]
        if missing:
            wanted = {(k.name, labels_to_text(k.labels), str(k.kind)): k for k in missing}
            found = self._find_series(conn, wanted)
            absent = [identity for identity in wanted if identity not in found]
            if absent:
                # ON CONFLICT: another process may create the same series meanwhile.
                conn.exec_driver_sql(self._insert_series_sql, absent)
                found.update(self._find_series(conn, {i: wanted[i] for i in absent}))
            new = {key: found[identity] for identity, key in wanted.items()}
        return [self._series_ids.get(k) or new[k] for k in keys], new

    def _find_series(
        self, conn: Connection, wanted: Mapping[tuple[str, str, str], SeriesKey]
    ) -> dict[tuple[str, str, str], int]:
        """The ids of the ``wanted`` series identities (name, labels text, kind) that exist."""
        found: dict[tuple[str, str, str], int] = {}
        names = sorted({name for name, _, _ in wanted})
        for start in range(0, len(names), 500):  # bounded parameter lists
            part = names[start : start + 500]
            rows = conn.exec_driver_sql(
                f"SELECT series_id, name, labels, kind FROM {series.name} "
                f"WHERE name IN ({', '.join([self._mark] * len(part))})",
                tuple(part),
            ).all()
            for series_id, name, labels, kind in rows:
                identity = (name, labels, kind)
                if identity in wanted:
                    found[identity] = int(series_id)
        return found

    def list_series(self, name: str | None = None) -> list[SeriesKey]:
        """Every stored series (optionally of one metric name), ordered by name then labels."""
        return [key for _, key in self._series_rows(name)]

    def _series_rows(
        self, name: str | None, labels: LabelFilter | None = None
    ) -> list[tuple[int, SeriesKey]]:
        stmt = select(series.c.series_id, series.c.name, series.c.labels, series.c.kind)
        if name is not None:
            stmt = stmt.where(series.c.name == name)
        with self._guard("listing series"), self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(series.c.name, series.c.labels)).all()
        wanted = set(_label_pairs(labels)) if labels is not None else set()
        found: list[tuple[int, SeriesKey]] = []
        for series_id, series_name, label_text, kind in rows:
            pairs = labels_from_text(label_text)
            # A label filter selects every series that carries all the given pairs.
            if wanted <= set(pairs):
                found.append((int(series_id), SeriesKey(series_name, pairs, MetricType(kind))))
        return found

    def query_series(
        self,
        name: str,
        labels: LabelFilter | None = None,
        start: Instant | None = None,
        end: Instant | None = None,
    ) -> SeriesPoints:
        """Points of metric ``name`` in ``[start, end)``, merged over the matching series.

        ``labels`` selects the series that carry all the given label pairs; ``None`` takes
        every series of the metric.
        """
        ids = [series_id for series_id, _ in self._series_rows(name, labels)]
        return self._points(ids, optional_epoch(start, "start"), optional_epoch(end, "end"))

    def _points(self, ids: Sequence[int], start: float | None, end: float | None) -> SeriesPoints:
        if not ids:
            return SeriesPoints(np.empty(0), np.empty(0))
        mark = self._mark
        sql = (
            f"SELECT t_min, t_max, ts_blob, value_blob FROM {chunks.name} "
            f"WHERE series_id IN ({', '.join([mark] * len(ids))})"
        )
        params: list[float] = [int(i) for i in ids]
        if start is not None:
            sql += f" AND t_max >= {mark}"
            params.append(start)
        if end is not None:
            sql += f" AND t_min < {mark}"
            params.append(end)
        with self._guard("reading points"), self._engine.connect() as conn:
            # The driver's own rows: SQLAlchemy's Row objects would double the cost of
            # fetching thousands of small chunks.
            result = conn.exec_driver_sql(sql + " ORDER BY chunk_id", tuple(params))
            rows = result.cursor.fetchall()
        if not rows:
            return SeriesPoints(np.empty(0), np.empty(0))
        ts = unpack([row[2] for row in rows])
        values = unpack([row[3] for row in rows])
        # Only chunks that straddle a bound hold points outside the window.
        lo = -np.inf if start is None else start
        hi = np.inf if end is None else end
        if any(row[0] < lo or row[1] >= hi for row in rows):
            keep = (ts >= lo) & (ts < hi)
            ts, values = ts[keep], values[keep]
        # Chunks are in write order: ties in time keep it (a stable sort).
        ts, values = in_time_order(ts, values)
        return SeriesPoints(ts, values)

    def iter_series(
        self, name: str | None = None, start: Instant | None = None, end: Instant | None = None
    ) -> Iterator[tuple[SeriesKey, SeriesPoints]]:
        """Each stored series (optionally one metric) with its points in ``[start, end)``."""
        lo, hi = optional_epoch(start, "start"), optional_epoch(end, "end")
        for series_id, key in self._series_rows(name):
            yield key, self._points([series_id], lo, hi)

    def aggregate(
        self,
        name: str,
        start: Instant,
        end: Instant,
        labels: LabelFilter | None = None,
    ) -> Aggregate:
        """count/sum/min/max/mean/p50/p95/p99 of metric ``name`` over ``[start, end)``."""
        lo, hi = to_epoch(start, "start"), to_epoch(end, "end")
        if hi < lo:
            raise ValidationError(f"end={end!r} is before start={start!r}; expected start <= end")
        return Aggregate.of(self.query_series(name, labels, lo, hi).values)

    def latest(
        self, name: str | None = None, labels: LabelFilter | None = None
    ) -> list[SeriesStats]:
        """The newest stored point of every series that has points (optionally of metric
        ``name``, and of the series carrying all ``labels`` pairs), with its cumulative totals.

        Cheap whatever the store holds: one index lookup of the newest chunk per series, whose
        row carries its last value; no point is decoded. Sorted by name, then labels.
        """
        stmt = select(
            series.c.series_id,
            series.c.name,
            series.c.labels,
            series.c.kind,
            series.c.total_count,
            series.c.total_sum,
            series.c.bucket_counts,
        )
        newest = chunks.alias("newest")
        newest_id = (
            select(newest.c.chunk_id)
            .where(newest.c.series_id == series.c.series_id)
            .order_by(newest.c.t_max.desc(), newest.c.chunk_id.desc())
            .limit(1)
            .correlate(series)
            .scalar_subquery()
        )
        ids = select(newest_id).select_from(series)
        if name is not None:
            stmt = stmt.where(series.c.name == name)
            ids = ids.where(series.c.name == name)
        last = select(chunks.c.series_id, chunks.c.t_max, chunks.c.v_last).where(
            chunks.c.chunk_id.in_(ids)
        )
        with self._guard("reading the latest points"), self._engine.connect() as conn:
            identities = conn.execute(stmt).all()
            newest_points = {int(sid): (t, v) for sid, t, v in conn.execute(last)}
        wanted = set(_label_pairs(labels)) if labels is not None else set()
        found = []
        for sid, series_name, label_text, kind, count, total, blob in identities:
            point = newest_points.get(int(sid))
            pairs = labels_from_text(label_text)
            if point is None or not wanted <= set(pairs):
                continue
            key = SeriesKey(series_name, pairs, MetricType(kind))
            counts = None
            if blob is not None and len(blob) == 8 * buckets.SIZE:
                counts = tuple(np.frombuffer(bytes(blob), dtype="<i8").tolist())
            found.append(
                SeriesStats(key, int(count), float(total), float(point[0]), float(point[1]), counts)
            )
        return sorted(found, key=lambda s: (s.key.name, s.key.labels))

    def series_stats(self, name: str | None = None) -> list[SeriesStats]:
        """``latest(name)``: every series with its cumulative count and sum and newest point."""
        return self.latest(name)


_DISTRIBUTIONS = (MetricType.HISTOGRAM, MetricType.TIMER, MetricType.DISTRIBUTION)

#: Chunk rows per INSERT statement: 10 parameters each stays under SQLite's oldest limit of
#: 999 parameters per statement.
_ROWS_PER_INSERT = 99


def _each_in_time_order(ts_parts: Sequence[np.ndarray]) -> bool:
    """Whether every one of ``ts_parts`` is already in time order, checked in one pass over
    all of them (one comparison of neighbours; those across two parts are ignored)."""
    if not ts_parts:
        return True
    if len(ts_parts) == 1:
        ts = ts_parts[0]
        return not (ts.size > 1 and bool((ts[1:] < ts[:-1]).any()))
    joined = np.concatenate(ts_parts)
    if joined.size < 2:
        return True
    backwards = joined[1:] < joined[:-1]
    ends = np.cumsum([part.size for part in ts_parts])[:-1]  # first index of each next part
    backwards[ends[(ends > 0) & (ends < joined.size)] - 1] = False
    return not bool(backwards.any())
