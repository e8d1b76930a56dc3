"""Compaction: merging a series' runs of small chunks into large ones, point for point.

With a 1-second flush, a series gains one small chunk per second (86,400 a day), and a long read
decodes that many tiny blobs. Compaction replaces a run of such chunks by one chunk holding
exactly the same points, so reads decode few large blobs.

What is merged. A series' chunks are taken in ``chunk_id`` (write) order; a **group** is a run of
consecutive chunks of that series -- no chunk of the series between them -- each of which

* ends before the horizon (``t_max < older_than``): recent chunks are left to grow old first, so
  the flusher's newest writes are never rewritten while they are still being read live; and
* is small (``n < min_points``): a chunk that is already large is never rewritten again, which
  bounds the work a compaction repeats;

with at most ``max_points`` points in all. A group of two or more chunks becomes one chunk: the
row of its first (lowest) ``chunk_id`` is rewritten with the group's points and the others are
deleted, all in one transaction per series.

Why reads cannot tell the difference. A read concatenates a series' chunks in ``chunk_id`` order
and sorts the points by time with a stable sort (ties keep write order). The merged chunk holds
its group's points in exactly that order (concatenated in ``chunk_id`` order, then stably sorted)
and takes the place of the group's first chunk; since no other chunk of the series lies inside
the group, every point keeps its position relative to every other point of the series. Counts,
sums, minima, maxima and the latest point are the same, and the series' cumulative totals are
not touched. (Among points of *different* series at the same instant, which a pooled read orders
by chunk id, the order may change.)

Bounded work. One call merges at most ``max_chunks`` chunk rows, series by series; what remains
is merged by the next call (``Compaction.complete`` says whether anything eligible was left).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from allele.errors import ValidationError
from allele.observability.store.epoch import Instant, to_epoch
from allele.observability.store.repository.base import Repository
from allele.observability.store.repository.chunks import CHUNK_COLUMNS, in_time_order, pack, unpack
from allele.observability.store.schema import CHUNK_MAX_POINTS, chunks, series

#: Chunks with fewer points than this are small (merged); larger ones are never rewritten.
COMPACT_MIN_POINTS = 4096
#: The most chunk rows one ``Store.compact`` call merges (the rest waits for the next call).
COMPACT_MAX_CHUNKS = 200_000


@dataclass(frozen=True, slots=True)
class Compaction:
    """What one ``Store.compact`` call did.

    ``chunks_merged`` rows became ``chunks_written`` rows holding the same ``points``, over
    ``series`` series; ``complete`` is False when the ``max_chunks`` budget stopped it with
    eligible chunks left for the next call.
    """

    series: int = 0
    chunks_merged: int = 0
    chunks_written: int = 0
    points: int = 0
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Group:
    """A run of consecutive chunks of one series to merge: ids ``first..last`` (inclusive)."""

    first: int
    last: int
    chunks: int
    points: int


def plan_groups(
    chunks: Sequence[tuple[int, int, float]],
    horizon: float,
    min_points: int,
    max_points: int,
    budget: int,
) -> tuple[list[Group], bool]:
    """The groups to merge among one series' chunks ``(chunk_id, n, t_max)`` in id order, using
    at most ``budget`` chunks; and whether the budget cut the plan short."""
    groups: list[Group] = []
    used = 0  # chunks in the groups planned so far
    run: list[tuple[int, int]] = []  # (chunk_id, n) of the group being gathered

    def close() -> None:
        nonlocal used
        if len(run) >= 2:
            groups.append(Group(run[0][0], run[-1][0], len(run), sum(n for _, n in run)))
            used += len(run)
        run.clear()

    gathered = 0  # points in ``run``
    for chunk_id, n, t_max in chunks:
        eligible = t_max < horizon and n < min_points
        if run and (not eligible or gathered + n > max_points):
            close()
            gathered = 0
        if not eligible:
            continue
        if used + len(run) + 1 > budget:
            close()
            return groups, True
        run.append((chunk_id, n))
        gathered += n
    close()
    return groups, False


class ChunkCompaction(Repository):
    """The store's compaction of a series' small chunks (see the module docstring), and the
    chunk count it is judged by."""

    def compact(
        self,
        older_than: Instant | None = None,
        *,
        min_points: int = COMPACT_MIN_POINTS,
        max_points: int = CHUNK_MAX_POINTS,
        max_chunks: int = COMPACT_MAX_CHUNKS,
    ) -> Compaction:
        """Merge runs of small chunks that end before ``older_than`` (default: all of them)
        into chunks of up to ``max_points`` points, exactly preserving every point, its order
        and the totals (see ``repository.compaction``). Merges at most ``max_chunks`` chunk
        rows per call, one transaction per series; returns what it did.
        """
        horizon = np.inf if older_than is None else to_epoch(older_than, "older_than")
        for name, value, low, high in (
            ("max_points", max_points, 2, CHUNK_MAX_POINTS),
            ("min_points", min_points, 2, max_points),
            ("max_chunks", max_chunks, 2, None),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < low
                or (high is not None and value > high)
            ):
                allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
                raise ValidationError(f"{name}={value!r} must be an integer {allowed}")
        candidates = (
            select(chunks.c.series_id)
            .where(chunks.c.t_max < horizon, chunks.c.n < min_points)
            .group_by(chunks.c.series_id)
            .having(func.count() >= 2)
            .order_by(chunks.c.series_id)
        )
        with self._guard("finding chunks to compact"), self._engine.connect() as conn:
            series_ids = [int(sid) for (sid,) in conn.execute(candidates)]
        done = Compaction()
        budget = max_chunks
        for series_id in series_ids:
            with self._guard("compacting chunks"), self._engine.begin() as conn:
                listing = conn.execute(
                    select(chunks.c.chunk_id, chunks.c.n, chunks.c.t_max)
                    .where(chunks.c.series_id == series_id)
                    .order_by(chunks.c.chunk_id)
                ).all()
                groups, cut = plan_groups(
                    [(int(i), int(n), float(t)) for i, n, t in listing],
                    horizon,
                    min_points,
                    max_points,
                    budget,
                )
                for group in groups:
                    self._merge(conn, series_id, group)
            merged = sum(g.chunks for g in groups)
            budget -= merged
            done = Compaction(
                series=done.series + (1 if groups else 0),
                chunks_merged=done.chunks_merged + merged,
                chunks_written=done.chunks_written + len(groups),
                points=done.points + sum(g.points for g in groups),
            )
            if cut or budget < 2:
                return Compaction(
                    done.series, done.chunks_merged, done.chunks_written, done.points, False
                )
        return done

    @staticmethod
    def _merge(conn: Connection, series_id: int, group: Group) -> None:
        """Rewrite the first chunk of ``group`` with all its points; delete the others."""
        in_group = (
            (chunks.c.series_id == series_id)
            & (chunks.c.chunk_id >= group.first)
            & (chunks.c.chunk_id <= group.last)
        )
        rows = conn.execute(
            select(chunks.c.ts_blob, chunks.c.value_blob)
            .where(in_group)
            .order_by(chunks.c.chunk_id)
        ).all()
        # Concatenated in write order, then stably sorted: the order a read gives them.
        ts, values = in_time_order(unpack([r[0] for r in rows]), unpack([r[1] for r in rows]))
        (row,) = pack(series_id, ts, values, max_points=max(int(ts.size), 1))
        conn.execute(
            update(chunks)
            .where(chunks.c.chunk_id == group.first)
            .values(dict(zip(CHUNK_COLUMNS[1:], row[1:], strict=True)))
        )
        conn.execute(delete(chunks).where(in_group & (chunks.c.chunk_id > group.first)))

    def chunk_count(self, name: str | None = None) -> int:
        """How many chunk rows the store holds (of metric ``name``'s series, or of all)."""
        stmt = select(func.count()).select_from(chunks)
        if name is not None:
            stmt = stmt.where(
                chunks.c.series_id.in_(select(series.c.series_id).where(series.c.name == name))
            )
        with self._guard("counting chunks"), self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())
