"""Built-in fitness functions and the vectorised / per-genome fitness contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from allele.errors import ValidationError
from allele.fitness import (
    MAX_DISTANCE,
    TERSE_EXPERT,
    WARM_COMPANION,
    PersonaTradeoff,
    TargetPersonality,
    VectorizedFitness,
    check_fitness_value,
    check_fitness_values,
    is_vectorized,
    traits_vector,
    vectorized,
)
from allele.genome import TRAIT_NAMES


def test_target_personality_is_one_exactly_at_target_and_falls_with_distance() -> None:
    fit = TargetPersonality({"empathy": 0.9, "conciseness": 0.1})
    target = fit.target
    assert target[TRAIT_NAMES.index("empathy")] == 0.9
    assert fit(target[None, :]).tolist() == [1.0]
    rng = np.random.default_rng(0)
    direction = rng.normal(size=8)
    direction /= np.linalg.norm(direction)
    steps = np.array([0.0, 0.05, 0.1, 0.2])
    population = np.clip(target + steps[:, None] * direction, 0, 1)
    values = fit(population)
    assert np.all(np.diff(values) < 0)
    distances = np.linalg.norm(population - target, axis=1)
    assert np.allclose(values, 1 - distances / MAX_DISTANCE)
    best, value = fit.optimum
    assert np.array_equal(best, target) and value == 1.0


def test_target_personality_spans_zero_to_one() -> None:
    fit = TargetPersonality(np.zeros(8))
    assert fit(np.ones((1, 8)))[0] == pytest.approx(0.0, abs=1e-15)
    assert fit(np.zeros((1, 8)))[0] == 1.0


def test_row_values_do_not_depend_on_batch() -> None:
    # The engine evaluates subsets of rows; a row's fitness must not depend on its batch.
    fit = TargetPersonality({"empathy": 0.3})
    population = np.random.default_rng(1).random((257, 8))
    whole = fit(population)
    singles = np.array([fit(row[None, :])[0] for row in population])
    assert np.array_equal(whole, singles)


def test_tradeoff_optimum_is_the_weighted_blend() -> None:
    for weight in (0.0, 0.3, 0.5, 1.0):
        fit = PersonaTradeoff(weight=weight)
        best, value = fit.optimum
        assert fit(best[None, :])[0] == pytest.approx(value, abs=1e-12)
        rng = np.random.default_rng(2)
        around = np.clip(best + rng.normal(0, 0.05, (500, 8)), 0, 1)
        assert fit(around).max() <= value + 1e-12


def test_tradeoff_objectives_conflict() -> None:
    fit = PersonaTradeoff()
    a, b = traits_vector(WARM_COMPANION), traits_vector(TERSE_EXPERT)
    objectives = fit.objectives(np.stack([a, b]))
    assert objectives[0, 0] == 1.0 and objectives[0, 1] < 0.8
    assert objectives[1, 1] == 1.0 and objectives[1, 0] < 0.8
    gap = a - b
    assert fit.optimum[1] == pytest.approx(1 - 0.25 * float(gap @ gap) / 8)
    # at the optimum both objectives are compromised
    both = fit.objectives(fit.optimum[0][None, :])[0]
    assert both[0] < 1.0 and both[1] < 1.0


def test_tradeoff_weight_is_validated() -> None:
    for bad in (-0.1, 1.5, math.nan, "half", True):
        with pytest.raises(ValidationError, match=r"weight must be a number in \[0, 1\]"):
            PersonaTradeoff(weight=bad)  # type: ignore[arg-type]


def test_targets_are_validated() -> None:
    with pytest.raises(ValidationError, match="unknown trait 'wit'"):
        TargetPersonality({"wit": 0.2})
    with pytest.raises(ValidationError, match="'empathy' must be in"):
        TargetPersonality({"empathy": 1.2})
    with pytest.raises(ValidationError, match=r"target must be a trait mapping or 8 values"):
        TargetPersonality([0.5] * 7)
    with pytest.raises(ValidationError, match="'creativity' must be in"):
        TargetPersonality([0.5, 0.5, 0.5, -1, 0.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValidationError, match="persona_b must be"):
        PersonaTradeoff(persona_b=[0.1, 0.2])


def test_vectorized_marker_and_wrapper() -> None:
    fit = vectorized(lambda pop: pop.sum(axis=1))
    assert is_vectorized(fit) and is_vectorized(TargetPersonality({}))
    assert not is_vectorized(lambda genome: 1.0)
    assert fit(np.full((3, 8), 0.5)).tolist() == [4.0, 4.0, 4.0]
    with pytest.raises(ValidationError, match="must be callable"):
        VectorizedFitness(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"population must have shape \(N, 8\)"):
        fit(np.zeros((3, 5)))


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (lambda pop: pop[:, :2], r"returned shape \(4, 2\), expected \(4,\)"),
        (lambda pop: pop[:3, 0], r"returned shape \(3,\), expected \(4,\)"),
        (lambda pop: np.where(np.arange(4) == 2, np.nan, 1.0), r"non-finite fitness .* \[2\]"),
        (lambda pop: np.full(4, np.inf), "non-finite fitness inf"),
        (lambda pop: "high", "must return 4 numbers, got str"),
    ],
)
def test_bad_vectorized_results_raise(returned, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=match):
        vectorized(returned)(np.full((4, 8), 0.5))


def test_scalar_fitness_checks() -> None:
    assert check_fitness_value(np.float32(0.5)) == 0.5
    assert check_fitness_value(np.array(0.25)) == 0.25
    for bad, match in [
        (math.nan, "non-finite"),
        (math.inf, "non-finite"),
        ("1", "str"),
        (True, "bool"),
        (None, "NoneType"),
    ]:
        with pytest.raises(ValidationError, match=match):
            check_fitness_value(bad)
    assert check_fitness_values([1, 2], 2).dtype == np.float64
