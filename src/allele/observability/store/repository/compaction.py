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
