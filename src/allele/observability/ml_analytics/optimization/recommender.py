"""Configuration advice learned from stored suite runs: which cell of the grid to run instead.

A surrogate (the Gaussian process of ``surrogate``) is fitted to the measured cells of one or
more runs of a suite: parameters -> the objective's median (time per operation by default, or a
quality or memory figure). It predicts every cell of the suite's grid, measured or not; the
recommendation is the cell with the best prediction that meets the constraints, set beside the
current cell. The expected improvement's interval combines the model's uncertainty about both
cells with the noise a fresh measurement of each would carry, so a confirmation run can check
it; the advice says what it rests on (cells measured, the model's leave-one-out fit).

>>> from allele.observability.benchmarking.model import CellResult, SuiteRun
>>> sizes = [1, 2, 4, 8]
>>> cells = [CellResult(params={"n": n}, samples={"time_s": [n * 1e-3] * 5}) for n in sizes]
>>> run = SuiteRun(name="demo", component="python", cells=cells, config={"matrix": {"n": sizes}})
>>> advice = ConfigurationRecommender().recommend([run], current={"n": 8})
>>> advice.recommended_params, advice.cells_measured
({'n': 1}, 4)
>>> 75 < advice.expected_improvement < 95  # measured: 87.5 % less time per operation
True
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.benchmarking.matrix import expand
from allele.observability.benchmarking.model import PRIMARY_METRIC, CellResult, SuiteRun
from allele.observability.ml_analytics.optimization.search import median_variances
from allele.observability.ml_analytics.optimization.space import ParameterSpace
from allele.observability.ml_analytics.optimization.surrogate import (
    GaussianProcess,
    predicted_change,
)

# Figures where more is better; everything else (times, bytes, errors) is minimised.
_HIGHER_IS_BETTER = ("fitness", "accuracy", "capacity", "throughput", "per_s", "score", "ops")

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


def higher_is_better(objective: str) -> bool:
    """Whether a larger ``objective`` is better (fitness, capacity, throughput...)."""
    return any(word in objective for word in _HIGHER_IS_BETTER)


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, as written on the command line: ``best_fitness>=0.9``."""

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        match = _CONSTRAINT.match(text)
        if match is None:
            raise ValidationError(
                f"constraint {text!r} is not of the form NAME<=NUMBER (operators: <=, >=, <, >)"
            )
        try:
            bound = float(match.group(3))
        except ValueError as exc:
            raise ValidationError(
                f"constraint {text!r}: {match.group(3)!r} is not a number"
            ) from exc
        if not math.isfinite(bound):
            raise ValidationError(f"constraint {text!r}: the bound must be finite")
        return cls(match.group(1), match.group(2), bound)

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


@dataclass
class ConfigurationAdvice:
    """A recommended cell beside the current one, with what the change should deliver."""

    objective: str
    minimize: bool
    current_params: dict[str, Any]
    recommended_params: dict[str, Any]
    current_value: float
    recommended_value: float
    expected_improvement: float  # percent, positive = better
    improvement_interval: tuple[float, float]  # percent, at ``confidence_level``
    confidence_level: float
    probability_better: float
    cells_measured: int
    cells_in_grid: int
    model_fit: float  # leave-one-out R² of the surrogate (NaN below 3 cells)
    recommended_measured: bool
    constraints: list[str] = field(default_factory=list)

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        """The parameters that differ: name -> (current, recommended)."""
        return {
            k: (self.current_params.get(k), v)
            for k, v in self.recommended_params.items()
            if self.current_params.get(k) != v
        }

    def rests_on(self) -> str:
        fit = "n/a" if math.isnan(self.model_fit) else f"{self.model_fit:.2f}"
        return (
            f"{self.cells_measured} of {self.cells_in_grid} cells measured; "
            f"surrogate leave-one-out R² {fit}; the recommended cell was "
            + ("measured" if self.recommended_measured else "predicted, not measured")
        )


def _values(cell: CellResult, metric: str) -> list[float]:
    samples = cell.samples.get(metric)
    if samples:
        return [float(s) for s in samples if math.isfinite(s)]
    value = cell.metrics.get(metric)
    return [float(value)] if value is not None and math.isfinite(value) else []


def grid_of(runs: Sequence[SuiteRun]) -> list[dict[str, Any]]:
    """The cells of the suite's grid, from the stored config (else the measured cells' values)."""
    config = runs[-1].config
    matrix = config.get("matrix")
    if matrix:
        return expand(matrix, config.get("zip", []), config.get("exclude", []))
    values: dict[str, list[Any]] = {}
    for run in runs:
        for cell in run.cells:
            for k, v in cell.params.items():
                values.setdefault(k, [])
                if v not in values[k]:
                    values[k].append(v)
    return expand(values)


class ConfigurationRecommender:
    """Recommends a suite's parameters from its measured cells (see the module docstring)."""

    def __init__(self, confidence_level: float = 0.95) -> None:
        if not 0.5 <= confidence_level < 1.0:
            raise ValidationError(f"confidence_level must be in [0.5, 1), got {confidence_level!r}")
        self.confidence_level = confidence_level

    def recommend(
        self,
        runs: Sequence[SuiteRun],
        objective: str = PRIMARY_METRIC,
        constraints: Sequence[str | Constraint] = (),
        current: Mapping[str, Any] | None = None,
        minimize: bool | None = None,
    ) -> ConfigurationAdvice:
        """The best cell for ``objective`` under ``constraints``, against ``current``.

        ``runs`` are stored runs of one suite (the newest measurement of a cell wins);
        ``current`` names the parameters in use (unnamed ones are taken at their best, so the
        advice credits only what it changes); without it, the grid's first cell.
        """
        if not runs:
            raise ValidationError("recommend needs at least one suite run")
        minimize = (not higher_is_better(objective)) if minimize is None else minimize
        parsed = [c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints]
        grid = grid_of(runs)
        names = list(grid[0])
        space = ParameterSpace({n: list(dict.fromkeys(c[n] for c in grid)) for n in names})
        positions = [space.position(c) for c in grid]

        measured: dict[int, CellResult] = {}
        for run in sorted(runs, key=lambda r: r.created_at):
            for cell in run.cells:
                if cell.status != "ok" or set(cell.params) != set(names):
                    continue
                if _values(cell, objective):
                    measured[space.position(cell.params)] = cell
        if not measured:
            known = sorted({m for r in runs for c in r.cells for m in (*c.samples, *c.metrics)})
            raise ValidationError(
                f"no measured cell has the objective {objective!r}; measured figures: {known}"
            )

        model, log = self._fit(space, measured, objective)
        points = space.points()[positions]
        mean, _ = model.predict(points)
        feasible = np.ones(len(grid), dtype=bool)
        for constraint in parsed:
            feasible &= self._feasible(space, measured, constraint, positions)
        if not feasible.any():
            raise ValidationError(
                f"no cell of the grid meets {', '.join(map(str, parsed))} "
                "(as measured or predicted)"
            )
        score = mean if minimize else -mean
        score = np.where(feasible, score, np.inf)
        best = int(np.argmin(score))

        current_index = self._current(grid, current, score, mean, minimize)
        pair = (positions[best], positions[current_index])
        variances = median_variances([_values(c, objective) for c in measured.values()], log)
        by_position = dict(zip(measured, variances, strict=True))
        nugget = model.nugget_ * model.scale_**2
        noise = [nugget + float(by_position.get(p, 0.0)) for p in pair]
        change = predicted_change(
            model,
            space.points()[pair[0]],
            space.points()[pair[1]],
            (noise[0], noise[1]),
            log=log,
            minimize=minimize,
            level=self.confidence_level,
        )
        return ConfigurationAdvice(
            objective=objective,
            minimize=minimize,
            current_params=dict(grid[current_index]),
            recommended_params=dict(grid[best]),
            current_value=change.current_value,
            recommended_value=change.candidate_value,
            expected_improvement=change.improvement,
            improvement_interval=change.interval,
            confidence_level=self.confidence_level,
            probability_better=change.probability_better,
            cells_measured=len(measured),
            cells_in_grid=len(grid),
            model_fit=model.loo_r2(self._targets(measured, objective, log)),
            recommended_measured=positions[best] in measured,
            constraints=[str(c) for c in parsed],
        )

    @staticmethod
    def _targets(measured: Mapping[int, CellResult], objective: str, log: bool) -> np.ndarray:
        medians = np.array([float(np.median(_values(c, objective))) for c in measured.values()])
        return np.log(medians) if log else medians

    def _fit(
        self, space: ParameterSpace, measured: Mapping[int, CellResult], objective: str
    ) -> tuple[GaussianProcess, bool]:
        log = all(min(_values(c, objective)) > 0 for c in measured.values())
        y = self._targets(measured, objective, log)
        noise = median_variances([_values(c, objective) for c in measured.values()], log)
        x = space.points()[list(measured)]
        return GaussianProcess().fit(x, y, noise), log

    def _feasible(
        self,
        space: ParameterSpace,
        measured: Mapping[int, CellResult],
        constraint: Constraint,
        positions: Sequence[int],
    ) -> np.ndarray:
        """Measured cells by their measurement; the others where the model is 90 % sure."""
        with_metric = {p: c for p, c in measured.items() if _values(c, constraint.metric)}
        if not with_metric:
            raise ValidationError(
                f"constraint {constraint}: no measured cell has the figure {constraint.metric!r}"
            )
        medians = {
            p: float(np.median(_values(c, constraint.metric))) for p, c in with_metric.items()
        }
        model = GaussianProcess().fit(
            space.points()[list(medians)], np.array(list(medians.values()))
        )
        mean, var = model.predict(space.points()[list(positions)])
        margin = 1.2816 * np.sqrt(var)  # the one-sided 90 % quantile
        if constraint.op in ("<=", "<"):
            predicted = np.array([constraint.holds(float(m)) for m in mean + margin])
        else:
            predicted = np.array([constraint.holds(float(m)) for m in mean - margin])
        return np.array(
            [
                constraint.holds(medians[p]) if p in medians else bool(predicted[i])
                for i, p in enumerate(positions)
            ]
        )

    @staticmethod
    def _current(
        grid: Sequence[Mapping[str, Any]],
        current: Mapping[str, Any] | None,
        score: np.ndarray,
        mean: np.ndarray,
        minimize: bool,
    ) -> int:
        if not current:
            return 0
        unknown = [k for k in current if k not in grid[0]]
        if unknown:
            raise ValidationError(
                f"current configuration names {unknown}, which are not parameters of the grid "
                f"({list(grid[0])})"
            )
        matching = [i for i, c in enumerate(grid) if all(c[k] == v for k, v in current.items())]
        if not matching:
            raise ValidationError(
                f"the current configuration {dict(current)!r} is not a cell of the grid"
            )
        # Unnamed parameters at their best: the advice then credits only what it changes.
        finite = [i for i in matching if np.isfinite(score[i])] or matching
        key = mean if minimize else -mean
        return min(finite, key=lambda i: float(key[i]))
