"""``EvolutionConfig``: the genetic algorithm's settings, checked on creation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from allele.errors import ValidationError, check_int, check_real

_MAX_POPULATION = 10_000_000
_MAX_GENERATIONS = 10_000_000


@dataclass(frozen=True)
class EvolutionConfig:
    """The genetic algorithm's settings, each checked on creation (ValidationError names the
    field and its allowed range).

    ``elitism`` is the number of fittest individuals copied unchanged into the next
    generation; ``blend_alpha`` widens the blend-crossover interval; ``target_fitness`` stops
    the run early once the best fitness reaches it; ``seed=None`` means a fresh random seed.
    """

    population_size: int = 50
    generations: int = 20
    mutation_rate: float = 0.1
    mutation_strength: float = 0.1
    crossover_rate: float = 0.7
    elitism: int = 2
    tournament_size: int = 3
    blend_alpha: float = 0.5
    seed: int | None = None
    target_fitness: float | None = None

    def __post_init__(self) -> None:
        check_int("population_size", self.population_size, 2, _MAX_POPULATION)
        check_int("generations", self.generations, 0, _MAX_GENERATIONS)
        check_real("mutation_rate", self.mutation_rate, 0.0, 1.0)
        check_real("mutation_strength", self.mutation_strength, 0.0, 1.0, low_open=True)
        check_real("crossover_rate", self.crossover_rate, 0.0, 1.0)
        check_int("elitism", self.elitism, 0, self.population_size - 1)
        check_int("tournament_size", self.tournament_size, 1, self.population_size)
        check_real("blend_alpha", self.blend_alpha, 0.0, 1.0)
        if self.seed is not None:
            check_int("seed", self.seed, 0, 2**63 - 1)
        if self.target_fitness is not None:
            check_real(
                "target_fitness", self.target_fitness, -math.inf, math.inf,
                low_open=True, high_open=True,
            )  # fmt: skip

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EvolutionConfig:
        """A config from a mapping (e.g. a TOML table); unknown keys raise ValidationError."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"evolution config must be a mapping, got {data!r}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationError(
                f"unknown evolution config field(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)
