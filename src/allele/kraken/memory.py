"""The temporal memory: each processed sequence's final state as a trace, consolidated into
at most ``capacity`` entries (see ``TemporalMemory``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from allele.errors import check_int


# -- temporal memory -------------------------------------------------------------------------
@dataclass
class MemoryTrace:
    """One entry of the temporal memory: the (count-weighted mean) final state of the
    sequences it stands for, the range of their sequence numbers and when it was written."""

    vector: np.ndarray
    count: int
    first_sequence: int
    last_sequence: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the trace."""
        return {
            "vector": self.vector.tolist(),
            "count": self.count,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    squared = float(a @ a) * float(b @ b)
    if squared == 0.0:
        # Two silent states are identical; a silent and an active one are unrelated.
        return 1.0 if not a.any() and not b.any() else 0.0
    return float(a @ b) / math.sqrt(squared)


class TemporalMemory:
    """A time-ordered buffer of at most ``capacity`` memory traces.

    Consolidation policy: a new trace is appended at the end; when that makes the buffer
    exceed ``capacity``, the two *adjacent* traces with the highest cosine similarity are
    merged into one (vector = count-weighted mean, count = sum, sequence range = union; the
    earliest ``created_at`` is kept). Time order is preserved, redundant stretches are
    compressed and distinct episodes survive. Ties go to the oldest pair. Adjacent
    similarities are cached and only the neighbours of a merge are recomputed, so a write costs
    O(capacity + reservoir_size). ``capacity = 0`` disables the buffer.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_int("memory_capacity", capacity, 0, 1_000_000)
        self._traces: list[MemoryTrace] = []
        # _similarity[i] = cos(trace i, trace i + 1) for the first len - 1 slots; a fixed
        # array so that finding the best pair is one argmax, not a list conversion.
        self._similarity = np.empty(self.capacity + 1)
        self.consolidations = 0

    def __len__(self) -> int:
        return len(self._traces)

    def add(self, vector: np.ndarray, sequence: int) -> None:
        """Record the trace of sequence number ``sequence``; consolidate when over capacity."""
        if self.capacity == 0:
            return
        now = datetime.now(UTC)
        trace = MemoryTrace(np.array(vector, dtype=float), 1, sequence, sequence, now, now)
        if self._traces:
            self._similarity[len(self._traces) - 1] = _cosine(self._traces[-1].vector, trace.vector)
        self._traces.append(trace)
        if len(self._traces) > self.capacity:
            self._merge(int(np.argmax(self._similarity[: len(self._traces) - 1])))

    def _merge(self, i: int) -> None:
        a, b = self._traces[i], self._traces[i + 1]
        total = a.count + b.count
        a.vector = (a.vector * a.count + b.vector * b.count) / total
        a.count = total
        a.last_sequence = b.last_sequence
        a.updated_at = max(a.updated_at, b.updated_at)
        pairs = len(self._traces) - 1  # similarities before the merge
        del self._traces[i + 1]
        sim = self._similarity
        sim[i : pairs - 1] = sim[i + 1 : pairs]  # drop slot i (the merged pair)
        if i > 0:
            sim[i - 1] = _cosine(self._traces[i - 1].vector, a.vector)
        if i < pairs - 1:
            sim[i] = _cosine(a.vector, self._traces[i + 1].vector)
        self.consolidations += 1

    def traces(self) -> list[MemoryTrace]:
        """Copies of the traces, oldest first."""
        return [
            MemoryTrace(
                t.vector.copy(),
                t.count,
                t.first_sequence,
                t.last_sequence,
                t.created_at,
                t.updated_at,
            )
            for t in self._traces
        ]

    def recall(self, state: np.ndarray, k: int = 1) -> list[MemoryTrace]:
        """Copies of the ``k`` traces most similar (cosine) to ``state``, best first."""
        check_int("k", k, 1, 1_000_000)
        query = np.asarray(state, dtype=float)
        ranked = sorted(
            range(len(self._traces)), key=lambda i: -_cosine(self._traces[i].vector, query)
        )
        copies = self.traces()
        return [copies[i] for i in ranked[:k]]

    def clear(self) -> None:
        """Forget every trace."""
        self._traces.clear()
