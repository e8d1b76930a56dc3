"""A suite's history: each cell's median across its stored runs and commits (asv's main view).

``suite_history(runs)`` takes the runs of one suite, oldest first (``storage.runs_history``),
and gives one ``HistoryPoint`` per run per cell: when, which commit, the median with its
distribution-free interval, and whether a change point (``changepoint``, PELT over the per-run
medians) starts a new level there. ``allele bench history SUITE [--cell KEY]`` prints it and the
HTML report draws it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from allele.observability.benchmarking.changepoint import ChangePoint, suite_change_points
from allele.observability.benchmarking.model import PRIMARY_METRIC, SuiteRun


@dataclass(frozen=True)
class HistoryPoint:
    """One cell in one stored run."""

    suite_id: str
    created_at: datetime
    commit: str  # short commit id, "" when unknown; "+" marks uncommitted changes
    status: str
    median: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    n: int = 0
    #: Set on the first run of a new level found by change-point detection.
    change_point: ChangePoint | None = None

    def to_dict(self) -> dict[str, Any]:
        def number(v: float) -> float | None:
            return None if math.isnan(v) else v

        return {
            "suite_id": self.suite_id,
            "created_at": self.created_at.isoformat(),
            "commit": self.commit,
            "status": self.status,
            "median": number(self.median),
            "ci": [number(self.ci[0]), number(self.ci[1])],
            "n": self.n,
            "change_point": self.change_point.to_dict() if self.change_point else None,
        }


@dataclass(frozen=True)
class CellHistory:
    """A cell's points, oldest first."""

    key: str
    params: dict[str, Any]
    points: list[HistoryPoint] = field(default_factory=list)

    @property
    def change_points(self) -> list[ChangePoint]:
        return [p.change_point for p in self.points if p.change_point is not None]


def suite_history(
    runs: Sequence[SuiteRun], *, metric: str = PRIMARY_METRIC, cell: str | None = None
) -> list[CellHistory]:
    """Every cell's history over ``runs`` (oldest first), in the cells' order of appearance.

    ``cell`` keeps only the cell whose key it is (``BenchmarkError`` listing the keys when
    none is).
    """
    from allele.errors import BenchmarkError
    from allele.observability.benchmarking.stats import describe

    histories: dict[str, CellHistory] = {}
    for run in runs:
        commit = _short_commit(run.commit)
        for c in run.cells:
            entry = histories.setdefault(c.key, CellHistory(c.key, dict(c.params)))
            samples = c.samples.get(metric) or []
            if c.status == "ok" and samples:
                stats = describe(samples)
                point = HistoryPoint(
                    run.suite_id, run.created_at, commit, c.status, stats.median,
                    stats.median_ci, stats.n,
                )  # fmt: skip
            else:
                point = HistoryPoint(run.suite_id, run.created_at, commit, c.status)
            entry.points.append(point)
    if cell is not None:
        if cell not in histories:
            known = ", ".join(sorted(histories)) or "none"
            raise BenchmarkError(f"no cell {cell!r} in the stored runs; cells: {known}")
        histories = {cell: histories[cell]}
    steps = suite_change_points(list(runs), metric=metric) if len(runs) >= 3 else {}
    for key, points in steps.items():
        if key not in histories:
            continue
        by_run = {p.suite_id: p for p in points}
        entry = histories[key]
        entry.points[:] = [
            _with_step(p, by_run[p.suite_id]) if p.suite_id in by_run else p for p in entry.points
        ]
    return list(histories.values())


def _with_step(point: HistoryPoint, step: ChangePoint) -> HistoryPoint:
    return HistoryPoint(
        point.suite_id, point.created_at, point.commit, point.status, point.median, point.ci,
        point.n, step,
    )  # fmt: skip


def _short_commit(commit: dict[str, Any]) -> str:
    ident = str(commit.get("id") or commit.get("sha") or "")[:10]
    return ident + ("+" if ident and commit.get("dirty") else "")
