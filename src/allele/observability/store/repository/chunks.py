"""Chunks: a run of one series' points packed into one row -- packing, unpacking and cutting.

The row layout and the blob encoding (little-endian float64) are described in ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from allele.observability.store.schema import CHUNK_MAX_POINTS
from allele.observability.types import BatchStats

#: How timestamps and values are laid out in a chunk's blobs, whatever the machine's byte order.
BLOB_DTYPE = np.dtype("<f8")

#: Column order of a chunk row as ``pack`` yields it (and as the repository inserts it).
CHUNK_COLUMNS = (
    "series_id",
    "t_min",
    "t_max",
    "n",
    "v_sum",
    "v_min",
    "v_max",
    "v_last",
    "ts_blob",
    "value_blob",
)

ChunkRow = tuple[int, float, float, int, float, float, float, float, bytes, bytes]


def in_time_order(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ts`` and ``values`` sorted by time; ties keep their order (a stable sort)."""
    if ts.size > 1 and bool((ts[1:] < ts[:-1]).any()):
        order = np.argsort(ts, kind="stable")
        return ts[order], values[order]
    return ts, values


def pack(
    series_id: int,
    ts: np.ndarray,
    values: np.ndarray,
    max_points: int = CHUNK_MAX_POINTS,
    stats: BatchStats | None = None,
) -> Iterator[ChunkRow]:
    """Chunk rows of one series' points (already in time order), ``max_points`` at most each.

    ``stats`` (the sum, min and max of all of ``values``, as a producer that checked them
    knows them) spares a single chunk three passes over its values."""
    for start in range(0, int(ts.size), max_points):
        t = ts[start : start + max_points]
        v = values[start : start + max_points]
        if stats is not None and v.size == values.size:
            v_sum, v_min, v_max = stats.sum, stats.min, stats.max
        else:
            v_sum, v_min, v_max = float(v.sum()), float(v.min()), float(v.max())
        yield (
            series_id,
            float(t[0]),
            float(t[-1]),
            int(t.size),
            v_sum,
            v_min,
            v_max,
            float(v[-1]),
            t.astype(BLOB_DTYPE, copy=False).tobytes(),
            v.astype(BLOB_DTYPE, copy=False).tobytes(),
        )


def unpack(blobs: Sequence[Any]) -> np.ndarray:
    """The float64 array of the concatenated ``blobs`` (bytes or memoryviews), a fresh copy."""
    if not blobs:
        return np.empty(0)
    joined = blobs[0] if len(blobs) == 1 else b"".join(blobs)
    # astype copies: the result is writable and in native byte order.
    return np.frombuffer(joined, dtype=BLOB_DTYPE).astype(np.float64)


def cut_before(ts_blob: Any, value_blob: Any, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """The points of one chunk at or after ``cutoff`` (``ts >= cutoff``)."""
    ts, values = unpack([ts_blob]), unpack([value_blob])
    keep = ts >= cutoff
    return ts[keep], values[keep]
