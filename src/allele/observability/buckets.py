"""Histogram buckets: the fixed upper bounds every histogram, timer and distribution counts in.

Prometheus histograms aggregate across processes only when every process uses the same bounds,
so there is one set: 1, 2.5 and 5 times each power of ten from 1e-4 to 1e4, then 1e5 (28
bounds, plus +Inf). That covers 100 us to a day in seconds, and most counts and sizes, with a
relative error of a ``histogram_quantile`` estimate under 2.5x at worst and typically far less.
The collector (live) and the store (persisted, never lowered by retention) keep cumulative
counts per bucket: ``counts[i]`` is how many values were ``<= BOUNDS[i]`` and above the bound
before; ``counts[-1]`` those above the last bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BOUNDS: tuple[float, ...] = (
    *(float(f"{m}e{e}") for e in range(-4, 5) for m in (1, 2.5, 5)),
    1e5,
)
_BOUNDS = np.array(BOUNDS)
#: How many counts a bucket array holds: one per bound, plus the +Inf overflow.
SIZE = len(BOUNDS) + 1


def count(values: np.ndarray) -> np.ndarray:
    """The per-bucket counts (int64, ``SIZE`` long) of finite ``values``: ``le`` semantics,
    a value equal to a bound falls in that bound's bucket."""
    if values.size == 0:
        return np.zeros(SIZE, dtype=np.int64)
    index = np.searchsorted(_BOUNDS, values, side="left")
    return np.bincount(index, minlength=SIZE).astype(np.int64)


def count_many(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``count`` of each of ``parts``, as rows of one (len(parts), SIZE) int64 array: one
    search and one bincount over all of them (a store write counts every series at once)."""
    if not parts:
        return np.zeros((0, SIZE), dtype=np.int64)
    sizes = np.fromiter((part.size for part in parts), dtype=np.int64, count=len(parts))
    index = np.searchsorted(_BOUNDS, np.concatenate(parts), side="left")
    index += np.repeat(np.arange(len(parts), dtype=np.int64) * SIZE, sizes)
    flat = np.bincount(index, minlength=len(parts) * SIZE)
    return flat.reshape(len(parts), SIZE).astype(np.int64, copy=False)


def cumulative(counts: np.ndarray | Sequence[int]) -> list[tuple[float, int]]:
    """``(le, cumulative count)`` pairs for an exposition, ending with ``(inf, total)``."""
    running = np.cumsum(np.asarray(counts, dtype=np.int64))
    bounds = (*BOUNDS, float("inf"))
    return [(le, int(n)) for le, n in zip(bounds, running.tolist(), strict=True)]


def quantile(counts: np.ndarray | Sequence[int], q: float) -> float:
    """The ``q``-quantile estimate of bucket ``counts`` by linear interpolation inside the
    bucket, as Prometheus's ``histogram_quantile`` computes it (NaN when empty)."""
    pairs = cumulative(counts)
    total = pairs[-1][1]
    if total == 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0
    for le, running in pairs:
        if running >= rank:
            if le == float("inf"):
                return BOUNDS[-1]  # Prometheus answers the highest finite bound
            inside = running - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = le, running
    return BOUNDS[-1]
