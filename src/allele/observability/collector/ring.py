"""The points a series retains for reading: the newest ``capacity`` of them in time order."""

from __future__ import annotations

from collections import deque

import numpy as np


class Ring:
    """The newest ``capacity`` points of a series, in time order, kept as the (timestamps,
    values) array pairs the fold produced.

    Extending keeps references, not copies: the fold's arrays are its own and never written
    again, so taking in a large batch costs no copy (see the GIL note in docs/architecture.md).
    A piece older than the newest retained point (explicit timestamps recorded out of order)
    is merged in by time, so that eviction for room and for age always forgets the oldest
    points in time, and the last point is the newest in time. Many small pieces (one per fold
    of a slow series) are joined into one every ``_MAX_PIECES`` pieces, which bounds the
    per-piece memory.
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
        """Append points given in time order (kept by reference: the caller never writes
        these arrays again)."""
        n = int(values.size)
        if not n:
            return
        if self.size and float(ts[0]) < float(self.pieces[-1][0][-1]):
            # Out of order with what is retained: merge by time (stable: at equal times the
            # points retained first stay first). Rare -- only late explicit timestamps.
            old_ts, old_values = self.ordered()
            all_ts = np.concatenate([old_ts, ts])
            order = np.argsort(all_ts, kind="stable")
            self.pieces = deque([(all_ts[order], np.concatenate([old_values, values])[order])])
            self.skip = 0
        else:
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

    def newest(self) -> tuple[float, float] | None:
        """The (timestamp, value) of the newest point in time, or None when empty."""
        if not self.size:
            return None
        ts, values = self.pieces[-1]
        return float(ts[-1]), float(values[-1])

    def drop_before(self, cutoff: float) -> int:
        """Forget the points older than ``cutoff``; return how many were dropped."""
        ts, _ = self.ordered()
        old = int(np.searchsorted(ts, cutoff, side="left"))  # time order: the oldest first
        if old:
            self._forget(old)
        return old
