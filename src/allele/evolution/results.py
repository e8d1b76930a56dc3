"""What an evolution reports: ``GenerationStats`` per generation, ``EvolutionResult`` per run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from allele.genome import ConversationalGenome


@dataclass(frozen=True)
class GenerationStats:
    """What one generation did. Generation 0 is the evaluation of the initial population.

    ``diversity`` is the mean over the eight traits of the population's standard deviation
    (0 when every individual is identical, about 0.29 for a uniform random population).
    ``evaluations`` counts fitness calls made in this generation; ``duration_s`` is measured
    with a monotonic clock and includes selection, variation and evaluation. ``timestamp`` is
    the wall-clock time the generation ended (epoch seconds UTC, ``time.time()`` read once as
    its statistics are taken): for placing the generation on a timeline, not for durations.
    """

    generation: int
    best_fitness: float
    mean_fitness: float
    worst_fitness: float
    diversity: float
    evaluations: int
    duration_s: float
    population_size: int
    timestamp: float

    def to_dict(self) -> dict[str, float | int]:
        """The statistics as a plain dict."""
        return asdict(self)


@dataclass
class EvolutionResult:
    """The outcome of a run: best genome, per-generation history and the final population."""

    best: ConversationalGenome
    history: list[GenerationStats]
    #: The final population, elites first; each genome is built the first time it is read.
    population: Sequence[ConversationalGenome]
    evaluations: int
    wall_time_s: float
    callback_errors: int = 0
    fitness: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def generations(self) -> int:
        """Number of generations bred (the initial evaluation is not counted)."""
        return max(len(self.history) - 1, 0)

    @property
    def best_fitness(self) -> float:
        """Fitness of the best genome."""
        return float(self.best.fitness) if self.best.fitness is not None else math.nan
