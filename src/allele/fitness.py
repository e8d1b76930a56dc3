"""Fitness functions for evolving genomes: the vectorised contract and built-in benchmarks.

The evolution engine accepts two kinds of fitness function, and never guesses which one it has
by calling it:

* a **vectorised** fitness function is an instance of :class:`VectorizedFitness` (or a plain
  function wrapped with :func:`vectorized`). It receives the whole population as an ``N x 8``
  array (columns in ``TRAIT_NAMES`` order) and returns ``N`` finite fitness values.
* anything else is a **per-genome** fitness function: it receives one ``ConversationalGenome``
  and returns a finite number, or an awaitable of one when it is ``async``.

The built-ins (:class:`TargetPersonality`, :class:`PersonaTradeoff`) are vectorised, have a
known optimum, and are used by the benchmarks and tests to check that evolution converges.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from allele.errors import ValidationError, check_real
from allele.genome import N_TRAITS, TRAIT_NAMES, trait_index, validate_trait

TraitsLike = Mapping[str, float] | np.ndarray | list[float] | tuple[float, ...]

#: The largest Euclidean distance between two points of the unit hypercube [0, 1]^8.
MAX_DISTANCE = math.sqrt(N_TRAITS)


class VectorizedFitness:
    """A fitness function over a whole population: ``N x 8`` array in, ``N`` values out.

    Subclass it and override :meth:`evaluate`, or wrap a function: ``VectorizedFitness(fn)``.
    Calling the object evaluates and checks the result (shape ``(N,)``, all finite).

    >>> f = VectorizedFitness(lambda pop: pop.mean(axis=1), name="mean trait")
    >>> f(np.full((2, 8), 0.25)).tolist()
    [0.25, 0.25]
    """

    #: Marker the evolution engine reads to tell vectorised from per-genome functions.
    vectorized = True

    def __init__(
        self, fn: Callable[[np.ndarray], Any] | None = None, *, name: str | None = None
    ) -> None:
        if fn is not None and not callable(fn):
            raise ValidationError(f"fitness function must be callable, got {fn!r}")
        self._fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(self).__name__

    def evaluate(self, population: np.ndarray) -> Any:
        """Raw fitness values of an ``N x 8`` population (override in subclasses)."""
        if self._fn is None:
            raise NotImplementedError(f"{type(self).__name__} must override evaluate()")
        return self._fn(population)

    def __call__(self, population: np.ndarray) -> np.ndarray:
        """Checked fitness values: a float array of shape ``(N,)``, every value finite."""
        pop = np.asarray(population, dtype=float)
        if pop.ndim != 2 or pop.shape[1] != N_TRAITS:
            raise ValidationError(
                f"{self.name}: population must have shape (N, {N_TRAITS}), got {pop.shape}"
            )
        return check_fitness_values(self.evaluate(pop), len(pop), source=self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def vectorized(fn: Callable[[np.ndarray], Any]) -> VectorizedFitness:
    """Mark ``fn`` (``N x 8`` array -> ``N`` values) as a vectorised fitness function."""
    return VectorizedFitness(fn)


def is_vectorized(fn: object) -> bool:
    """True when ``fn`` declares itself vectorised (its ``vectorized`` attribute is True)."""
    return getattr(fn, "vectorized", False) is True


def check_fitness_values(values: object, n: int, *, source: str = "fitness function") -> np.ndarray:
    """``values`` as a float array of shape ``(n,)``; wrong shape, NaN or inf raise."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{source} must return {n} numbers, got {type(values).__name__}"
        ) from exc
    if arr.shape != (n,):
        raise ValidationError(f"{source} returned shape {arr.shape}, expected ({n},)")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValidationError(
            f"{source} returned non-finite fitness {float(arr[rows[0]])!r} at row(s) "
            f"{rows[:10].tolist()}; fitness must be finite"
        )
    return arr


def check_fitness_value(value: object, *, source: str = "fitness function") -> float:
    """``value`` as a finite float; bools, non-numbers, NaN and inf raise."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(
            f"{source} must return a finite number, got {type(value).__name__} {value!r}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{source} returned non-finite fitness {number!r}")
    return number


def traits_vector(traits: TraitsLike, *, name: str = "target") -> np.ndarray:
    """A length-8 trait vector from a ``{trait: value}`` mapping (missing traits 0.5) or a
    sequence of 8 values in ``TRAIT_NAMES`` order; every value is validated."""
    if isinstance(traits, Mapping):
        vector = np.full(N_TRAITS, 0.5)
        for trait, value in traits.items():
            vector[trait_index(trait)] = validate_trait(trait, value)
        return vector
    arr = np.asarray(traits, dtype=float)
    if arr.shape != (N_TRAITS,):
        raise ValidationError(
            f"{name} must be a trait mapping or {N_TRAITS} values, got shape {arr.shape}"
        )
    for trait, value in zip(TRAIT_NAMES, arr.tolist(), strict=True):
        validate_trait(trait, value)
    return arr.copy()


class TargetPersonality(VectorizedFitness):
    """Closeness to a target personality: ``1 - ||x - target|| / sqrt(8)``.

    Values lie in [0, 1]; the unique optimum is fitness 1.0 exactly at the target, and fitness
    falls linearly with Euclidean distance (0.0 only at the opposite corner of the hypercube).

    >>> f = TargetPersonality({"empathy": 0.9})
    >>> float(f(f.target[None, :])[0])
    1.0
    """

    def __init__(self, target: TraitsLike) -> None:
        super().__init__(name="target_personality")
        self.target = traits_vector(target)

    def evaluate(self, population: np.ndarray) -> np.ndarray:
        """``1 - distance / sqrt(8)`` for each row."""
        diff = population - self.target
        return 1.0 - np.sqrt(np.einsum("ij,ij->i", diff, diff)) / MAX_DISTANCE

    @property
    def optimum(self) -> tuple[np.ndarray, float]:
        """The best trait vector and its fitness: ``(target, 1.0)``."""
        return self.target.copy(), 1.0


#: A warm, talkative companion persona (objective A of the default trade-off).
WARM_COMPANION: dict[str, float] = {
    "empathy": 0.95,
    "engagement": 0.9,
    "technical_knowledge": 0.3,
    "creativity": 0.8,
    "conciseness": 0.1,
    "context_awareness": 0.7,
    "adaptability": 0.8,
    "personability": 0.95,
}

#: A terse technical expert persona (objective B of the default trade-off).
TERSE_EXPERT: dict[str, float] = {
    "empathy": 0.2,
    "engagement": 0.3,
    "technical_knowledge": 0.95,
    "creativity": 0.4,
    "conciseness": 0.95,
    "context_awareness": 0.9,
    "adaptability": 0.5,
    "personability": 0.2,
}


class PersonaTradeoff(VectorizedFitness):
    """Weighted sum of two conflicting objectives: resembling persona A and persona B.

    Each objective is ``f_i(x) = 1 - ||x - p_i||^2 / 8`` (1 at the persona, 0 at the far
    corner); the fitness is ``w * f_a + (1 - w) * f_b`` with ``w = weight``. Moving towards one
    persona moves away from the other, so no genome maximises both. Because both objectives
    are concave quadratics, the weighted sum has a unique optimum at the blend
    ``x* = w * p_a + (1 - w) * p_b`` with value ``1 - w * (1 - w) * ||p_a - p_b||^2 / 8``
    (see :attr:`optimum`). Defaults: ``WARM_COMPANION`` vs ``TERSE_EXPERT``, ``weight=0.5``.
    """

    def __init__(
        self,
        persona_a: TraitsLike = WARM_COMPANION,
        persona_b: TraitsLike = TERSE_EXPERT,
        weight: float = 0.5,
    ) -> None:
        super().__init__(name="persona_tradeoff")
        self.persona_a: np.ndarray = traits_vector(persona_a, name="persona_a")
        self.persona_b: np.ndarray = traits_vector(persona_b, name="persona_b")
        self.weight: float = check_real("weight", weight, 0.0, 1.0)

    def objectives(self, population: np.ndarray) -> np.ndarray:
        """The two objective values per row, shape ``(N, 2)``: closeness to A and to B."""
        da = population - self.persona_a
        db = population - self.persona_b
        fa = 1.0 - np.einsum("ij,ij->i", da, da) / N_TRAITS
        fb = 1.0 - np.einsum("ij,ij->i", db, db) / N_TRAITS
        return np.stack([fa, fb], axis=1)

    def evaluate(self, population: np.ndarray) -> np.ndarray:
        """``weight * f_a + (1 - weight) * f_b`` for each row."""
        both = self.objectives(population)
        return self.weight * both[:, 0] + (1.0 - self.weight) * both[:, 1]

    @property
    def optimum(self) -> tuple[np.ndarray, float]:
        """The best trait vector and its fitness (closed form, see the class docstring)."""
        w = self.weight
        gap = self.persona_a - self.persona_b
        best = w * self.persona_a + (1.0 - w) * self.persona_b
        return best, 1.0 - w * (1.0 - w) * float(gap @ gap) / N_TRAITS
