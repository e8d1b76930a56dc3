"""The population as arrays: one run's ``N x 8`` values and fitness, the operators that
advance it a generation (selection, crossover, mutation, elitism), and ``LazyPopulation``,
the final population whose genomes are built the first time they are read."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from allele.errors import ValidationError
from allele.evolution.config import EvolutionConfig
from allele.evolution.results import GenerationStats
from allele.genome import N_TRAITS, ConversationalGenome, population_to_array


@dataclass
class _Snapshot:
    """One individual's row, kept so the best genome can be materialised later."""

    values: np.ndarray
    fitness: float
    serial: int
    parents: tuple[int, int]
    born: int


class _Run:
    """The arrays of one evolutionary run and the operators that advance it.

    ``breed`` produces the offspring rows that need evaluating; ``accept`` takes their fitness
    and forms the next generation. Splitting the step there lets the sync and async drivers
    evaluate fitness in their own way while sharing every operator.
    """

    def __init__(
        self,
        config: EvolutionConfig,
        rng: np.random.Generator,
        population: Sequence[ConversationalGenome],
    ) -> None:
        self.config = config
        self.rng = rng
        n = len(population)
        self.values = population_to_array(population)  # a fresh array: inputs stay untouched
        self.fitness = np.full(n, np.nan)
        self.serial = np.arange(n, dtype=np.int64)
        self.parents = np.full((n, 2), -1, dtype=np.int64)
        self.born = np.array([g.generation for g in population], dtype=np.int64)
        # Children are one generation younger than the youngest input genome and on.
        self.base_generation = int(self.born.max())
        self.initial_ids = [g.genome_id for g in population]
        self.initial_parents = [g.parent_ids for g in population]
        self.run_id = uuid.uuid4().hex[:12]
        self.next_serial = n
        self.generation = 0
        self.evaluations = 0
        self.best: _Snapshot | None = None
        # the offspring bred by breed() and waiting for accept()
        self._offspring = np.empty((0, N_TRAITS))
        self._off_fitness = np.empty(0)
        self._changed = np.empty(0, dtype=bool)
        self._off_parents = np.empty((0, 2), dtype=np.int64)
        self._started = 0.0
        self._initial = True  # the next accept() records the initial population's fitness

    # -- naming ---------------------------------------------------------------------------------
    def name(self, serial: int) -> str:
        """The genome id of the individual with this serial number."""
        if serial < len(self.initial_ids):
            return self.initial_ids[serial]
        return f"{self.run_id}-{serial}"

    def genome(
        self,
        values: np.ndarray,
        fitness: float | None,
        serial: int,
        parents: Sequence[int],
        born: int,
    ) -> ConversationalGenome:
        """An independent genome for one row, with its id, lineage and generation."""
        if serial < len(self.initial_ids):
            parent_ids = tuple(self.initial_parents[serial])
        else:
            parent_ids = tuple(self.name(int(p)) for p in parents if p >= 0)
        # Every field comes from the run's own checked arrays: no per-genome validation.
        return ConversationalGenome._trusted(
            values.copy(), self.name(serial), fitness, born, parent_ids
        )

    @property
    def born_now(self) -> int:
        """The genome generation of offspring bred in the current run generation."""
        return self.base_generation + self.generation

    # -- one generation -------------------------------------------------------------------------
    def start_initial(self) -> np.ndarray:
        """Rows of the initial population, all of which need evaluating."""
        self._started = time.perf_counter()
        self._initial = True
        return self.values

    def breed(self) -> np.ndarray:
        """Select, cross and mutate; returns the offspring rows that need a fitness value."""
        self._started = time.perf_counter()
        self._initial = False
        cfg, rng = self.config, self.rng
        n = len(self.values)
        n_off = n - cfg.elitism
        contestants = rng.integers(0, n, size=(n_off, cfg.tournament_size))
        winners = contestants[np.arange(n_off), np.argmax(self.fitness[contestants], axis=1)]
        kids = self.values[winners]  # fancy indexing copies: no row is shared
        parents = np.full((n_off, 2), -1, dtype=np.int64)
        parents[:, 0] = self.serial[winners]

        # Random numbers are drawn only for the pairs that cross and the traits that mutate:
        # the draws, not the arithmetic, dominate a generation's cost.
        crossed = np.flatnonzero(rng.random(n_off // 2) < cfg.crossover_rate)
        first = 2 * crossed
        second = first + 1
        g = rng.uniform(-cfg.blend_alpha, 1.0 + cfg.blend_alpha, size=(len(crossed), N_TRAITS))
        a, b = kids[first], kids[second]
        kids[first] = a + g * (b - a)
        kids[second] = b + g * (a - b)
        parents[first, 1] = parents[second, 0]
        parents[second, 1] = parents[first, 0]

        mutate = rng.random((n_off, N_TRAITS)) < cfg.mutation_rate
        kids[mutate] += rng.normal(0.0, cfg.mutation_strength, size=int(mutate.sum()))
        np.clip(kids, 0.0, 1.0, out=kids)

        changed: np.ndarray = np.asarray(mutate.any(axis=1))
        changed[first] = True
        changed[second] = True
        self._offspring = kids
        self._off_parents = parents
        self._changed = changed
        self._off_fitness = self.fitness[winners]  # reused where nothing changed
        return kids[changed]

    def pending_lineage(self) -> list[tuple[int, tuple[int, int], int]]:
        """(serial, parents, born) for each row ``breed``/``start_initial`` asked to evaluate."""
        if self._initial:
            return [(int(s), (-1, -1), int(b)) for s, b in zip(self.serial, self.born, strict=True)]
        rows = np.flatnonzero(self._changed)
        base = self.next_serial
        gen = self.base_generation + self.generation + 1
        return [
            (base + int(i), (int(p[0]), int(p[1])), gen)
            for i, p in zip(rows, self._off_parents[rows], strict=True)
        ]

    def accept(self, values: np.ndarray) -> GenerationStats:
        """Record the fitness of the pending rows and form the next generation."""
        if self._initial:
            self.fitness = values.copy()
            self.evaluations += len(values)
            evaluated = len(values)
            self._initial = False
        else:
            cfg = self.config
            fit = self._off_fitness
            fit[self._changed] = values
            n_off = len(self._offspring)
            elite = _top(self.fitness, cfg.elitism)
            serial = np.arange(self.next_serial, self.next_serial + n_off, dtype=np.int64)
            self.next_serial += n_off
            self.generation += 1
            self.values = np.concatenate([self.values[elite], self._offspring])
            self.fitness = np.concatenate([self.fitness[elite], fit])
            self.serial = np.concatenate([self.serial[elite], serial])
            self.parents = np.concatenate([self.parents[elite], self._off_parents])
            self.born = np.concatenate(
                [self.born[elite], np.full(n_off, self.born_now, dtype=np.int64)]
            )
            evaluated = len(values)
            self.evaluations += evaluated
        return self._stats(evaluated)

    def _stats(self, evaluated: int) -> GenerationStats:
        best = int(np.argmax(self.fitness))
        if self.best is None or self.fitness[best] > self.best.fitness:
            p = self.parents[best]
            self.best = _Snapshot(
                values=self.values[best].copy(),
                fitness=float(self.fitness[best]),
                serial=int(self.serial[best]),
                parents=(int(p[0]), int(p[1])),
                born=int(self.born[best]),
            )
        best_fitness = float(self.fitness[best])
        mean_fitness = float(self.fitness.mean())
        worst_fitness = float(self.fitness.min())
        diversity = float(self.values.std(axis=0).mean())
        duration_s = time.perf_counter() - self._started
        timestamp = time.time()
        return GenerationStats(
            generation=self.generation,
            best_fitness=best_fitness,
            mean_fitness=mean_fitness,
            worst_fitness=worst_fitness,
            diversity=diversity,
            evaluations=evaluated,
            duration_s=duration_s,
            population_size=len(self.values),
            timestamp=timestamp,
        )

    # -- materialisation ------------------------------------------------------------------------
    def best_genome(self) -> ConversationalGenome:
        """The best individual seen so far, as an independent genome."""
        if self.best is None:
            raise ValidationError("no generation has been evaluated yet")
        b = self.best
        return self.genome(b.values, b.fitness, b.serial, b.parents, b.born)

    def population(self) -> LazyPopulation:
        """The current population as independent genomes (elites first, then offspring),
        each built when first read: a short run then pays nothing for genomes no one reads."""
        # The arrays of this generation: later generations replace them, never write into them.
        values, fitness, serial = self.values, self.fitness, self.serial
        parents, born = self.parents, self.born

        def build(i: int) -> ConversationalGenome:
            return self.genome(
                values[i],
                float(fitness[i]),
                int(serial[i]),
                parents[i].tolist(),
                int(born[i]),
            )

        return LazyPopulation(build, len(values))

    def pending_genomes(self, rows: np.ndarray) -> list[ConversationalGenome]:
        """Genomes for the rows awaiting evaluation, for per-genome fitness functions."""
        return [
            self.genome(row, None, serial, parents, born)
            for row, (serial, parents, born) in zip(rows, self.pending_lineage(), strict=True)
        ]


class LazyPopulation(Sequence[ConversationalGenome]):
    """A read-only sequence of genomes built on first access (then kept: the same object each
    time), for the final population of a run. ``list(population)`` builds them all."""

    __slots__ = ("_build", "_genomes")

    def __init__(self, build: Callable[[int], ConversationalGenome], size: int) -> None:
        self._build = build
        self._genomes: list[ConversationalGenome | None] = [None] * size

    def __len__(self) -> int:
        return len(self._genomes)

    @overload
    def __getitem__(self, index: int) -> ConversationalGenome: ...
    @overload
    def __getitem__(self, index: slice) -> list[ConversationalGenome]: ...
    def __getitem__(self, index: int | slice) -> ConversationalGenome | list[ConversationalGenome]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._genomes)))]
        genome = self._genomes[index]  # IndexError for a row that does not exist
        if genome is None:
            genome = self._build(range(len(self._genomes))[index])
            self._genomes[index] = genome
        return genome

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    @property
    def built(self) -> int:
        """How many of the genomes have been built so far."""
        return sum(g is not None for g in self._genomes)

    def __repr__(self) -> str:
        return f"LazyPopulation({len(self)} genomes, {self.built} built)"


def _top(fitness: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` fittest, best first (equal fitness among them: lower index first)."""
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if k >= len(fitness):
        return np.argsort(-fitness, kind="stable")
    # A partial partition is O(N); only the k winners are then sorted.
    cut = np.argpartition(-fitness, k - 1)[:k]
    return cut[np.lexsort((cut, -fitness[cut]))]
