"""Closed-loop search over a suite's grid: ask which cell to measure next, tell what it measured.

>>> opt = SuiteOptimizer({"x": [1, 2, 3, 4, 5], "y": ["a", "b"]}, seed=0)
>>> for _ in range(6):
...     params = opt.ask()
...     value = (params["x"] - 3) ** 2 + (0.5 if params["y"] == "b" else 0.0) + 1.0
...     opt.tell(params, [value])
>>> opt.best().params
{'x': 3, 'y': 'a'}

The first cells (``2 * parameters + 1``, at most a third of ``budget`` when it is given) are
spread over the grid (greedy maximin from a seeded start); after them each
``ask()`` refits the Gaussian-process surrogate and proposes the unmeasured cell of highest
expected improvement over the best cell so far. ``best()`` is the measured cell with the best
*posterior* value, not the lowest raw median: with a few percent of noise per sample, the
luckiest measurement is rarely the best cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr

from allele.errors import ValidationError
from allele.observability.ml_analytics.optimization.space import ParameterSpace
from allele.observability.ml_analytics.optimization.surrogate import (
    GaussianProcess,
    PredictedChange,
    predicted_change,
)


@dataclass
class Observation:
    """A measured cell: its samples, their median and the variance of that median."""

    params: dict[str, Any]
    samples: list[float]
    feasible: bool = True
    median: float = field(init=False)
    position: int = -1
    positive: bool = field(init=False)
    # The variance of the median on the log and linear scales, computed once.
    variance_log: float = field(init=False)
    variance: float = field(init=False)

    def __post_init__(self) -> None:
        self.median = float(np.median(self.samples))
        self.positive = min(self.samples) > 0
        self.variance_log = median_variance(self.samples, True) if self.positive else math.nan
        self.variance = median_variance(self.samples, False)


@dataclass
class Suggestion:
    """The optimizer's answer: the cell, its predicted and measured value, what it rests on."""

    params: dict[str, Any]
    predicted: float
    measured: float
    evaluations: int


def median_variances(
    sample_sets: Sequence[Sequence[float]], log: bool, variances: np.ndarray | None = None
) -> np.ndarray:
    """The variance of each set's median; a single sample borrows the others' typical spread.

    One sample says nothing about its own noise, and treating it as exact would let one lucky
    reading outweigh a trend of well-measured neighbours. ``variances``, when given, are the
    sets' own ``median_variance`` already computed.
    """
    if variances is None:
        variances = np.array([median_variance(s, log) for s in sample_sets])
    variances = np.array(variances, dtype=float)
    sizes = np.array([len(s) for s in sample_sets])
    several = sizes >= 2
    if several.any() and not several.all():
        # Per-sample variance of the sets that show it: var(median) * n / (pi / 2).
        per_sample = float(np.median(variances[several] * sizes[several] / (math.pi / 2.0)))
        variances[~several] = per_sample
    return variances


def median_variance(samples: Sequence[float], log: bool) -> float:
    """The variance of a median of ``samples`` (robust spread; 0 for a single sample)."""
    values = np.asarray(samples, dtype=float)
    if log:
        values = np.log(values)
    if len(values) < 2:
        return 0.0
    sigma = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    if sigma == 0.0:
        sigma = float(np.std(values, ddof=1))
    return (math.pi / 2.0) * sigma**2 / len(values)


class SuiteOptimizer:
    """Bayesian optimisation over the cells of ``space`` (parameter name -> list of values)."""

    def __init__(
        self,
        space: Mapping[str, Sequence[Any]] | ParameterSpace,
        minimize: bool = True,
        seed: int | None = None,
        n_initial: int | None = None,
        allowed: Sequence[Mapping[str, Any]] | None = None,
        budget: int | None = None,
    ) -> None:
        self.space = space if isinstance(space, ParameterSpace) else ParameterSpace(space)
        self.minimize = bool(minimize)
        self.seed = seed
        # Enough spread-out cells to fit a length scale per parameter, and never more than a
        # third of a known budget: the rest is spent where the model points.
        default_initial = 2 * len(self.space.axes) + 1
        if budget is not None:
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
                raise ValidationError(f"budget must be a positive integer, got {budget!r}")
            default_initial = max(2, min(default_initial, budget // 3))
        self.n_initial = default_initial if n_initial is None else int(n_initial)
        if self.n_initial < 1:
            raise ValidationError(f"n_initial must be at least 1, got {n_initial!r}")
        self._rng = np.random.default_rng(seed)
        self.observations: list[Observation] = []
        self._measured: dict[int, list[int]] = {}  # grid position -> observation indices
        self._pending: list[int] = []
        # Cells never to propose: outside ``allowed`` (a matrix's zip and exclude rules), or
        # excluded after they failed to measure.
        self._excluded: set[int] = set()
        if allowed is not None:
            keep = {self.space.position(c) for c in allowed}
            if not keep:
                raise ValidationError("allowed names no cell of the space")
            self._excluded = set(range(len(self.space))) - keep
        self._model: GaussianProcess | None = None
        self._model_size = -1

    # --- the loop ---------------------------------------------------------------------------

    def ask(self) -> dict[str, Any]:
        """The parameters to measure next (a cell not yet measured nor already asked)."""
        taken = set(self._measured) | set(self._pending) | self._excluded
        if len(taken) >= len(self.space):
            raise ValidationError(
                f"every one of the {len(self.space)} cells of the space is measured or pending"
            )
        if len(self._measured) + len(self._pending) < self.n_initial or len(self._feasible()) < 2:
            position = self._spread(taken)
        else:
            position = self._most_promising(taken)
        self._pending.append(position)
        return dict(self.space.cells()[position])

    def tell(
        self, params: Mapping[str, Any], samples: Sequence[float], feasible: bool = True
    ) -> None:
        """Record what ``params`` measured (its samples of the objective)."""
        position = self.space.position(params)
        values = [float(s) for s in samples]
        if not values or not all(math.isfinite(v) for v in values):
            raise ValidationError(
                f"tell needs at least one finite sample for {dict(params)!r}, got {list(samples)!r}"
            )
        if position in self._pending:
            self._pending.remove(position)
        self.observations.append(
            Observation(dict(self.space.cells()[position]), values, feasible, position)
        )
        self._measured.setdefault(position, []).append(len(self.observations) - 1)

    def exclude(self, params: Mapping[str, Any]) -> None:
        """Never propose ``params`` again (a cell that failed to measure)."""
        position = self.space.position(params)
        if position in self._pending:
            self._pending.remove(position)
        self._excluded.add(position)

    def best(self) -> Suggestion:
        """The measured feasible cell with the best posterior value."""
        feasible = self._feasible()
        if not feasible:
            raise ValidationError("best() needs at least one feasible measured cell; tell() some")
        positions = sorted({o.position for o in feasible})
        if len(feasible) >= 3:
            model, log = self._fit()
            mean, _ = model.predict(self.space.points()[positions])
            i = int(np.argmin(mean) if self.minimize else np.argmax(mean))
            position = positions[i]
            predicted = float(np.exp(mean[i]) if log else mean[i])
        else:
            medians = {o.position: o.median for o in feasible}
            position = (min if self.minimize else max)(medians, key=medians.__getitem__)
            predicted = medians[position]
        measured = float(
            np.median([s for i in self._measured[position] for s in self.observations[i].samples])
        )
        return Suggestion(
            dict(self.space.cells()[position]), predicted, measured, len(self.observations)
        )

    def promise(
        self, candidate: Mapping[str, Any], current: Mapping[str, Any], level: float = 0.95
    ) -> PredictedChange:
        """What the model expects a fresh measurement of ``candidate`` against ``current`` to show.

        Needs at least three measured cells.
        """
        if len(self.observations) < 3:
            raise ValidationError("promise() needs at least three measured cells")
        model, log = self._fit()
        a, b = self.space.position(candidate), self.space.position(current)
        nugget = model.nugget_ * model.scale_**2

        noise = self._noise(log)

        def fresh(position: int) -> float:
            seen = self._measured.get(position, [])
            return nugget + (float(noise[seen[-1]]) if seen else 0.0)

        points = self.space.points()
        return predicted_change(
            model,
            points[a],
            points[b],
            (fresh(a), fresh(b)),
            log=log,
            minimize=self.minimize,
            level=level,
        )

    # --- internals --------------------------------------------------------------------------

    def _noise(self, log: bool) -> np.ndarray:
        own = np.array([o.variance_log if log else o.variance for o in self.observations])
        return median_variances([o.samples for o in self.observations], log, own)

    def _feasible(self) -> list[Observation]:
        return [o for o in self.observations if o.feasible]

    def _spread(self, taken: set[int]) -> int:
        """A cell far from every measured or pending one (a seeded random first cell)."""
        points = self.space.points()
        free = np.array([p for p in range(len(self.space)) if p not in taken])
        near = sorted(taken - self._excluded)
        if not near:
            return int(self._rng.choice(free))
        chosen = points[near]
        d2 = ((points[free][:, None, :] - chosen[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        # Ties are common on a grid: pick among the farthest at random.
        far = free[d2 >= d2.max() - 1e-12]
        return int(self._rng.choice(far))

    def _fit(self) -> tuple[GaussianProcess, bool]:
        observations = self.observations
        values = np.array([o.median for o in observations])
        log = all(o.positive for o in observations)
        if self._model is not None and self._model_size == len(observations):
            return self._model, log
        y = np.log(values) if log else values.copy()
        # Infeasible cells are kept as bad ones: the model learns to stay away from them.
        worst = float(np.max(y) if self.minimize else np.min(y))
        spread = float(np.ptp(y)) or 1.0
        for i, o in enumerate(observations):
            if not o.feasible:
                y[i] = worst + (spread if self.minimize else -spread)
        noise = self._noise(log)
        x = self.space.points()[[o.position for o in observations]]
        self._model = GaussianProcess().fit(x, y, noise, warm_start=self._model)
        self._model_size = len(observations)
        return self._model, log

    def _most_promising(self, taken: set[int]) -> int:
        model, _ = self._fit()
        free = np.array([p for p in range(len(self.space)) if p not in taken])
        mean, var = model.predict(self.space.points()[free])
        measured = sorted(self._measured)
        at_measured, _ = model.predict(self.space.points()[measured])
        sign = 1.0 if self.minimize else -1.0
        incumbent = float(np.min(sign * at_measured))
        sd = np.sqrt(var)
        gap = incumbent - sign * mean
        z = gap / sd
        improvement = gap * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        best = np.flatnonzero(improvement >= improvement.max() - 1e-15)
        return int(free[self._rng.choice(best)])
