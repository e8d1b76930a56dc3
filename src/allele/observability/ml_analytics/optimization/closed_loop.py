"""``allele bench optimize``: search a suite's grid with the matrix runner, then confirm.

Each cell the ``SuiteOptimizer`` asks for is measured as a one-cell run of the suite (named
``<suite>-optimize``) by the matrix runner: the same isolated worker processes, every job
stored as it finishes. The search is deterministic for a seed, so ``resume=True`` replays it:
a cell whose one-cell run is stored complete is read back instead of measured again, and an
interrupted one continues where it stopped. Cells that fail to measure are excluded from the
search and reported.

Then the winner is confirmed against the suite's current parameters with a fresh measurement
of both, interleaved in one two-cell run (``<suite>-confirm``), and the two cells' samples are
compared with the benchmarking comparison's test (Mann-Whitney, Hodges-Lehmann interval): the
report says whether the promised improvement held.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.benchmarking import storage
from allele.observability.benchmarking.compare import shift_estimates
from allele.observability.benchmarking.model import PRIMARY_METRIC, CellResult, SuiteRun
from allele.observability.benchmarking.runner import run_suite
from allele.observability.benchmarking.suites import Suite
from allele.observability.ml_analytics.optimization.recommender import (
    Constraint,
    higher_is_better,
)
from allele.observability.ml_analytics.optimization.search import SuiteOptimizer
from allele.observability.ml_analytics.optimization.surrogate import PredictedChange


@dataclass
class Evaluation:
    """One cell the search measured (or read back on resume)."""

    params: dict[str, Any]
    suite_id: str
    status: str
    median: float | None
    feasible: bool
    reused: bool


@dataclass
class Confirmation:
    """The fresh head-to-head measurement of the winner against the current parameters."""

    suite_id: str
    current_median: float
    winner_median: float
    improvement: float  # percent, from the ratio of medians; positive = better
    shift_interval: tuple[float, float]  # Hodges-Lehmann shift of winner vs current, relative
    p_value: float
    held: bool  # significant, in the promised direction
    within_promise: bool  # the measured improvement lies in the promised interval


@dataclass
class OptimizationReport:
    """What ``optimize_suite`` did and found."""

    suite: str
    objective: str
    minimize: bool
    budget: int
    seed: int
    current: dict[str, Any]
    best: dict[str, Any]
    best_measured: float
    promise: PredictedChange | None
    confirmation: Confirmation | None
    evaluations: list[Evaluation] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)

    @property
    def measured(self) -> int:
        return sum(1 for e in self.evaluations if not e.reused)


def objective_samples(cell: CellResult, objective: str) -> list[float]:
    """The cell's samples of ``objective`` (per-sample, else per-run, else its one figure)."""
    values = cell.samples.get(objective)
    if values:
        return [float(v) for v in values if math.isfinite(v)]
    figure = cell.metrics.get(objective)
    return [float(figure)] if figure is not None and math.isfinite(figure) else []


def _one_cell(suite: Suite, cell: Mapping[str, Any], name: str) -> Suite:
    data = suite.model_dump()
    data.update(
        name=name,
        matrix={k: [v] for k, v in cell.items()},
        zip=[],
        exclude=[],
        quick={},
    )
    return Suite(**data)


def _head_to_head(suite: Suite, a: Mapping[str, Any], b: Mapping[str, Any], name: str) -> Suite:
    """A two-cell suite measuring ``a`` and ``b`` interleaved (differing parameters zipped)."""
    differ = [k for k in a if a[k] != b[k]]
    data = suite.model_dump()
    data.update(
        name=name,
        params={**suite.params, **{k: v for k, v in a.items() if k not in differ}},
        matrix={k: [a[k], b[k]] for k in differ},
        zip=[differ] if len(differ) > 1 else [],
        exclude=[],
        quick={},
    )
    return Suite(**data)


def _stored_complete(store: Any, suite: Suite) -> SuiteRun | None:
    """The newest complete run that measured exactly ``suite`` (as the runner resolves it)."""
    from allele.observability.benchmarking.config import get_matrix_benchmark_settings

    fingerprint = suite.resolved(get_matrix_benchmark_settings()).fingerprint()
    for run in reversed(storage.runs_history(store, suite.name, limit=500)):
        if run.status == "complete" and run.config.get("fingerprint") == fingerprint:
            return run
    return None


def optimize_suite(
    suite: Suite,
    *,
    budget: int,
    store: Any,
    objective: str = PRIMARY_METRIC,
    minimize: bool | None = None,
    constraints: Sequence[str] = (),
    current: Mapping[str, Any] | None = None,
    seed: int = 0,
    resume: bool = False,
    executor: str = "local",
    confirm: bool = True,
    progress: Callable[[Evaluation], None] | None = None,
    show_runner_progress: bool = False,
) -> OptimizationReport:
    """Search ``suite``'s grid for the best ``objective`` in ``budget`` measured cells."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValidationError(f"budget must be a positive number of evaluations, got {budget!r}")
    if not suite.matrix:
        raise ValidationError(f"suite {suite.name!r} has no matrix to search")
    cells = suite.cells()
    minimize = (not higher_is_better(objective)) if minimize is None else minimize
    parsed = [Constraint.parse(c) for c in constraints]
    current_cell = _current_cell(cells, current)
    optimizer = SuiteOptimizer(
        suite.matrix, minimize=minimize, seed=seed, allowed=cells, budget=budget
    )
    report = OptimizationReport(
        suite=suite.name,
        objective=objective,
        minimize=minimize,
        budget=budget,
        seed=seed,
        current=current_cell,
        best={},
        best_measured=math.nan,
        promise=None,
        confirmation=None,
        constraints=[str(c) for c in parsed],
    )
    name = f"{suite.name}-optimize"
    for _ in range(min(budget, len(cells))):
        params = optimizer.ask()
        one = _one_cell(suite, params, name)
        stored = _stored_complete(store, one) if resume else None
        run = stored or run_suite(
            one,
            store=store,
            executor=executor,
            resume=resume,
            progress=show_runner_progress,
        )
        cell = run.cells[0] if run.cells else CellResult(params=dict(params), status="error")
        samples = objective_samples(cell, objective) if cell.status == "ok" else []
        if not samples:
            optimizer.exclude(params)
            evaluation = Evaluation(
                dict(params), run.suite_id, cell.status, None, False, bool(stored)
            )
        else:
            feasible = _meets(cell, parsed)
            optimizer.tell(params, samples, feasible=feasible)
            evaluation = Evaluation(
                dict(params),
                run.suite_id,
                cell.status,
                float(np.median(samples)),
                feasible,
                bool(stored),
            )
        report.evaluations.append(evaluation)
        if progress is not None:
            progress(evaluation)

    best = optimizer.best()
    report.best = best.params
    report.best_measured = best.measured
    if len(optimizer.observations) >= 3 and best.params != current_cell:
        try:
            report.promise = optimizer.promise(best.params, current_cell)
        except ValidationError:
            report.promise = None
    if confirm and best.params != current_cell:
        report.confirmation = _confirm(
            suite, best.params, current_cell, objective, minimize, store, executor, report.promise
        )
    return report


def _meets(cell: CellResult, constraints: Sequence[Constraint]) -> bool:
    """Whether the cell's measured medians meet every constraint (a missing figure fails)."""
    for constraint in constraints:
        values = objective_samples(cell, constraint.metric)
        if not values or not constraint.holds(float(np.median(values))):
            return False
    return True


def _current_cell(
    cells: Sequence[Mapping[str, Any]], current: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The suite's current parameters: ``current`` completed to a cell, else the first cell."""
    if not current:
        return dict(cells[0])
    unknown = [k for k in current if k not in cells[0]]
    if unknown:
        raise ValidationError(
            f"--current names {unknown}, which are not matrix parameters ({list(cells[0])})"
        )
    for cell in cells:
        if all(cell[k] == v for k, v in current.items()):
            return dict(cell)
    raise ValidationError(f"the current parameters {dict(current)!r} are not a cell of the suite")


def _confirm(
    suite: Suite,
    winner: Mapping[str, Any],
    current: Mapping[str, Any],
    objective: str,
    minimize: bool,
    store: Any,
    executor: str,
    promise: PredictedChange | None,
) -> Confirmation | None:
    pair = _head_to_head(suite, winner, current, f"{suite.name}-confirm")
    run = run_suite(pair, store=store, executor=executor)
    by_key = {c.key: c for c in run.cells}
    differ = [k for k in winner if winner[k] != current[k]]
    win = by_key.get(CellResult(params={k: winner[k] for k in differ}).key)
    cur = by_key.get(CellResult(params={k: current[k] for k in differ}).key)
    if win is None or cur is None:
        return None
    a, b = objective_samples(cur, objective), objective_samples(win, objective)
    if len(a) < 2 or len(b) < 2:
        return None
    shifts = shift_estimates([a], [b])
    ratio = float(np.median(b) / np.median(a))
    improvement = 100.0 * (1.0 - ratio) if minimize else 100.0 * (ratio - 1.0)
    p_value = float(shifts.p_value[0])
    shift = float(shifts.shift[0])
    better = shift < 0 if minimize else shift > 0
    held = bool(p_value < 0.05 and better)
    within = promise is not None and promise.interval[0] <= improvement <= promise.interval[1]
    return Confirmation(
        suite_id=run.suite_id,
        current_median=float(np.median(a)),
        winner_median=float(np.median(b)),
        improvement=improvement,
        shift_interval=(float(shifts.ci_low[0]), float(shifts.ci_high[0])),
        p_value=p_value,
        held=held,
        within_promise=bool(within),
    )
