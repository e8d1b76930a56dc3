"""What a CMR model measured: one ``ForwardRecord`` per forward pass, and ``PerformanceStats``,
their running totals in the design documents' vocabulary.

Every figure is counted or timed by the model itself (``time.perf_counter`` around the hook
work); none is estimated. ``PerformanceStats.snapshot(buffer)`` returns the
``performance_stats`` dict with the keys of the design documents:

* timing: ``capture_times``, ``reconstruction_times`` (the latest, in seconds, one per capture /
  reweave operation), ``total_forward_time`` (sum), ``avg_capture_time``,
  ``avg_reconstruction_time``, ``avg_forward_time``, ``avg_retrieval_time``;
* counts: ``total_captures`` (states captured), ``total_reconstructions`` (positions reweaved
  with at least one entry), ``states_captured_per_layer``, ``states_stored_per_layer``,
  ``reconstructions_per_layer``;
* efficiency: ``capture_efficiency`` (captured / selected: states rejected as non-finite lower
  it), ``storage_efficiency`` (stored / captured: states evicted by the insertion that offered
  them lower it), ``reconstruction_quality`` (mean cosine similarity of a reweaved state with
  the state before reweaving: 1 = untouched), ``memory_utilization`` (entries / capacity now),
  ``cache_hit_rate`` (retrievals whose best score reached the similarity threshold).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ForwardRecord:
    """One forward pass, as measured."""

    duration_s: float
    batch: int
    positions: int
    capture_s: list[float] = field(default_factory=list)
    reconstruction_s: list[float] = field(default_factory=list)
    retrieval_s: list[float] = field(default_factory=list)
    selected: dict[int, int] = field(default_factory=dict)
    captured: dict[int, int] = field(default_factory=dict)
    stored: dict[int, int] = field(default_factory=dict)
    reconstructions: dict[int, int] = field(default_factory=dict)
    retrieval_queries: int = 0
    retrieval_hits: int = 0
    best_score_sum: float = 0.0
    quality_sum: float = 0.0
    gate_sum: float = 0.0
    evicted: int = 0
    memory_entries: int = 0
    memory_capacity: int = 0
    memory_bytes: int = 0
    error: str | None = None

    @property
    def total_captured(self) -> int:
        return sum(self.captured.values())

    @property
    def total_stored(self) -> int:
        return sum(self.stored.values())

    @property
    def total_reconstructions(self) -> int:
        return sum(self.reconstructions.values())


def _add(into: dict[int, int], counts: dict[int, int]) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0) + value


def _ratio(num: float, den: float, empty: float | None = None) -> float | None:
    return empty if den == 0 else num / den


class PerformanceStats:
    """Running totals of a model's forward passes (bounded lists of the latest timings)."""

    def __init__(self, max_history: int = 1000) -> None:
        self.max_history = max_history
        self.reset()

    def reset(self) -> None:
        h = self.max_history
        self.forwards = 0
        self.errors = 0
        self.total_forward_time = 0.0
        self.forward_times: deque[float] = deque(maxlen=h)
        self.capture_times: deque[float] = deque(maxlen=h)
        self.reconstruction_times: deque[float] = deque(maxlen=h)
        self.retrieval_times: deque[float] = deque(maxlen=h)
        self.capture_time_total = 0.0
        self.capture_ops = 0
        self.reconstruction_time_total = 0.0
        self.reconstruction_ops = 0
        self.retrieval_time_total = 0.0
        self.retrieval_ops = 0
        self.selected: dict[int, int] = {}
        self.captured: dict[int, int] = {}
        self.stored: dict[int, int] = {}
        self.reconstructions: dict[int, int] = {}
        self.retrieval_queries = 0
        self.retrieval_hits = 0
        self.best_score_sum = 0.0
        self.quality_sum = 0.0
        self.gate_sum = 0.0
        self.evicted = 0

    def record(self, r: ForwardRecord) -> None:
        """Add one forward pass."""
        self.forwards += 1
        if r.error is not None:
            self.errors += 1
        self.total_forward_time += r.duration_s
        self.forward_times.append(r.duration_s)
        self.capture_times.extend(r.capture_s)
        self.reconstruction_times.extend(r.reconstruction_s)
        self.retrieval_times.extend(r.retrieval_s)
        self.capture_time_total += sum(r.capture_s)
        self.capture_ops += len(r.capture_s)
        self.reconstruction_time_total += sum(r.reconstruction_s)
        self.reconstruction_ops += len(r.reconstruction_s)
        self.retrieval_time_total += sum(r.retrieval_s)
        self.retrieval_ops += len(r.retrieval_s)
        _add(self.selected, r.selected)
        _add(self.captured, r.captured)
        _add(self.stored, r.stored)
        _add(self.reconstructions, r.reconstructions)
        self.retrieval_queries += r.retrieval_queries
        self.retrieval_hits += r.retrieval_hits
        self.best_score_sum += r.best_score_sum
        self.quality_sum += r.quality_sum
        self.gate_sum += r.gate_sum
        self.evicted += r.evicted

    def snapshot(self, memory_entries: int, memory_capacity: int) -> dict[str, Any]:
        """The ``performance_stats`` dict (see the module docstring); ratios with nothing to
        divide are None (nothing measured), not a made-up 0 or 1."""
        captured = sum(self.captured.values())
        stored = sum(self.stored.values())
        reconstructions = sum(self.reconstructions.values())
        return {
            "forward_passes": self.forwards,
            "errors": self.errors,
            "capture_times": list(self.capture_times),
            "reconstruction_times": list(self.reconstruction_times),
            "total_forward_time": self.total_forward_time,
            "avg_forward_time": _ratio(self.total_forward_time, self.forwards),
            "avg_capture_time": _ratio(self.capture_time_total, self.capture_ops),
            "avg_reconstruction_time": _ratio(
                self.reconstruction_time_total, self.reconstruction_ops
            ),
            "avg_retrieval_time": _ratio(self.retrieval_time_total, self.retrieval_ops),
            "total_captures": captured,
            "total_reconstructions": reconstructions,
            "states_captured_per_layer": dict(self.captured),
            "states_stored_per_layer": dict(self.stored),
            "reconstructions_per_layer": dict(self.reconstructions),
            "capture_efficiency": _ratio(captured, sum(self.selected.values())),
            "storage_efficiency": _ratio(stored, captured),
            "reconstruction_quality": _ratio(self.quality_sum, reconstructions),
            "memory_utilization": _ratio(memory_entries, memory_capacity, 0.0),
            "cache_hit_rate": _ratio(self.retrieval_hits, self.retrieval_queries),
            "mean_gate": _ratio(self.gate_sum, self.retrieval_queries),
            "evictions": self.evicted,
        }
