"""Performance advice from measured scaling and measured monitoring overhead.

* Worker counts: runs of one suite that differ only in ``workers`` (processes running at once)
  are compared by their wall time; the advice is the count with the shortest wall time, and its
  parallel efficiency says whether more cores pay. It needs two worker counts measured.
* Monitoring intervals: the engine's periodic work costs a share of wall time that scales with
  1 / interval (``benchmarks/bench_overhead.py`` measures it). When the measured overhead is
  above the budget, the advice is the interval that brings it under, with how sure the
  measurement's interval makes that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy.stats import norm

from allele.errors import ValidationError
from allele.observability.benchmarking.model import SuiteRun

# Intervals the advice rounds up to: a setting a person would write.
_NICE_SECONDS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


@dataclass
class WorkerAdvice:
    suite: str
    current_workers: int
    recommended_workers: int
    wall_seconds: dict[int, float]  # workers -> wall time of the run
    efficiency: float  # speed-up per worker at the recommended count, against one worker's rate

    @property
    def expected_improvement(self) -> float:
        current = self.wall_seconds[self.current_workers]
        best = self.wall_seconds[self.recommended_workers]
        return 100.0 * (1.0 - best / current)


@dataclass
class IntervalAdvice:
    setting: str
    current: float
    recommended: float
    overhead_percent: float
    budget_percent: float
    confidence: float

    @property
    def expected_improvement(self) -> float:
        return 100.0 * (1.0 - self.current / self.recommended)


def _wall_seconds(run: SuiteRun) -> float | None:
    starts = [c.started_at for c in run.cells if c.started_at is not None]
    ends = [c.finished_at for c in run.cells if c.finished_at is not None]
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()


class PerformanceOptimizer:
    """Worker counts from measured scaling; monitoring intervals from measured overhead."""

    def workers(self, runs: Sequence[SuiteRun], current: int | None = None) -> WorkerAdvice | None:
        """The best ``workers`` among complete runs of one suite that differ only in it."""
        by_workers: dict[int, float] = {}
        for run in sorted(runs, key=lambda r: r.created_at):
            workers = run.config.get("workers")
            wall = _wall_seconds(run)
            if run.status != "complete" or not isinstance(workers, int) or not wall:
                continue
            by_workers[workers] = wall  # the newest run of each count
        if len(by_workers) < 2:
            return None
        names = {r.name for r in runs}
        if len(names) != 1:
            raise ValidationError(f"worker advice compares runs of one suite, got {sorted(names)}")
        best = min(by_workers, key=by_workers.__getitem__)
        current = current if current in by_workers else min(by_workers)
        one = min(by_workers)
        speedup = by_workers[one] / by_workers[best]
        return WorkerAdvice(
            suite=names.pop(),
            current_workers=int(current),
            recommended_workers=best,
            wall_seconds=by_workers,
            efficiency=speedup / (best / one),
        )

    def intervals(
        self, monitoring: Mapping[str, Any], budget_percent: float
    ) -> list[IntervalAdvice]:
        """Longer collection/flush intervals when the measured overhead exceeds the budget.

        ``monitoring`` holds the current ``collection_interval`` and/or ``flush_interval`` (s),
        the measured ``overhead_percent`` and optionally its interval ``overhead_interval``
        (low, high), as ``benchmarks/bench_overhead.py`` prints them.
        """
        overhead = monitoring.get("overhead_percent")
        if not isinstance(overhead, int | float) or not math.isfinite(overhead):
            return []
        if overhead <= budget_percent:
            return []
        bounds = monitoring.get("overhead_interval")
        if isinstance(bounds, Sequence) and len(bounds) == 2 and bounds[1] > bounds[0]:
            sd = (float(bounds[1]) - float(bounds[0])) / (2 * 1.96)
            confidence = float(norm.sf((budget_percent - overhead) / sd))
        else:
            confidence = 0.5  # one figure without its spread says little
        advice = []
        for setting in ("collection_interval", "flush_interval"):
            current = monitoring.get(setting)
            if not isinstance(current, int | float) or current <= 0:
                continue
            needed = float(current) * overhead / budget_percent
            recommended = next((s for s in _NICE_SECONDS if s >= needed), math.ceil(needed))
            advice.append(
                IntervalAdvice(
                    setting,
                    float(current),
                    float(recommended),
                    float(overhead),
                    budget_percent,
                    confidence,
                )
            )
        return advice
