"""EvolutionEngine: a generational genetic algorithm over personality genomes, vectorised.

The engine holds the population as an ``N x 8`` float array plus a fitness array and applies
every operator to the whole array at once:

* **tournament selection** -- ``tournament_size`` contestants drawn with replacement per
  offspring slot (``rng.integers(0, N, (n_offspring, k))``), the fittest wins;
* **blend crossover** (BLX-alpha, as DEAP's ``cxBlend``) -- consecutive winners are paired and,
  with probability ``crossover_rate``, both children get ``(1-g) a + g b`` and ``g a + (1-g) b``
  with ``g ~ U(-alpha, 1+alpha)`` drawn per trait;
* **Gaussian mutation** -- every trait, with probability ``mutation_rate``, gets ``N(0,
  mutation_strength)`` noise; traits are then clipped to [0, 1];
* **elitism** -- the ``elitism`` fittest individuals survive unchanged (not re-evaluated).

Offspring that neither crossed over nor mutated keep their parent's fitness instead of being
evaluated again (as DEAP does), so ``evaluations`` counts real fitness calls.

Genome objects exist only at the edges: :meth:`EvolutionEngine.initialize_population` returns
genomes, per-genome fitness functions receive freshly built genomes, and the best genome and
final population are materialised as independent copies. Lineage is tracked with integer serial
numbers and turned into ``genome_id`` / ``parent_ids`` when a genome is built.

Fitness functions are either vectorised (``allele.fitness.VectorizedFitness`` or any callable
whose ``vectorized`` attribute is True: ``N x 8`` array in, ``N`` values out) or per-genome
(``ConversationalGenome`` in, a number out; ``async def`` allowed). See ``allele.fitness``.

>>> from allele.fitness import TargetPersonality
>>> engine = EvolutionEngine(EvolutionConfig(population_size=40, generations=30, seed=1))
>>> result = engine.run(TargetPersonality({"empathy": 0.9, "conciseness": 0.2}))
>>> result.best.fitness > 0.9
True
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, overload

import numpy as np

from allele.errors import ValidationError, check_int, check_real
from allele.fitness import check_fitness_value, check_fitness_values, is_vectorized
from allele.genome import (
    N_TRAITS,
    ConversationalGenome,
    population_from_array,
    population_to_array,
)

logger = logging.getLogger(__name__)

#: A per-generation observer: receives the generation's statistics; may be ``async`` under
#: ``evolve``. Whatever it raises is counted and logged, never propagated.
Callback = Callable[["GenerationStats"], Any]
FitnessFn = Callable[..., Any]

_MAX_POPULATION = 10_000_000
_MAX_GENERATIONS = 10_000_000


# -- configuration ---------------------------------------------------------------------------
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


# -- results ---------------------------------------------------------------------------------
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


# -- the population as arrays ----------------------------------------------------------------
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


# -- the engine ------------------------------------------------------------------------------
class EvolutionEngine:
    """Evolves conversational genomes with a vectorised generational genetic algorithm.

    Sync: ``result = engine.run(fitness)`` returns an :class:`EvolutionResult`. Async:
    ``population = engine.initialize_population(size=50)`` then
    ``best = await engine.evolve(population, fitness)``. With the same ``seed`` both paths give
    the same result, and ``run()`` equals ``initialize_population`` + ``evolve`` on a fresh
    engine. Per-generation :class:`GenerationStats` go to every callback added with
    :meth:`add_callback` or passed as ``callback=``; a callback that raises is logged and
    counted in :attr:`callback_errors` and the evolution carries on.

    One engine runs one evolution at a time.
    """

    def __init__(
        self, config: EvolutionConfig | None = None, *, callback: Callback | None = None
    ) -> None:
        if config is not None and not isinstance(config, EvolutionConfig):
            raise ValidationError(f"config must be an EvolutionConfig, got {config!r}")
        self.config = config or EvolutionConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self._callbacks: list[Callback] = []
        if callback is not None:
            self.add_callback(callback)
        self.callback_errors = 0  # over the engine's life; a result counts its own run's
        self._errors_at_start = 0
        self.history: list[GenerationStats] = []
        self.last_result: EvolutionResult | None = None
        self._run: _Run | None = None

    # -- observers ------------------------------------------------------------------------------
    def add_callback(self, fn: Callback) -> None:
        """Call ``fn(stats)`` after every generation (including generation 0)."""
        if not callable(fn):
            raise ValidationError(f"callback must be callable, got {fn!r}")
        self._callbacks.append(fn)

    def remove_callback(self, fn: Callback) -> None:
        """Stop calling ``fn``; unknown callbacks raise ValidationError."""
        try:
            self._callbacks.remove(fn)
        except ValueError:
            raise ValidationError(f"callback {fn!r} is not registered") from None

    @property
    def generation(self) -> int:
        """The generation reached by the current (or last) evolution."""
        return self._run.generation if self._run else 0

    @property
    def evaluations(self) -> int:
        """Fitness evaluations made by the current (or last) evolution."""
        return self._run.evaluations if self._run else 0

    @property
    def best_genome(self) -> ConversationalGenome | None:
        """An independent copy of the best genome seen so far, or None before any evolution."""
        return self._run.best_genome() if self._run and self._run.best else None

    # -- population -----------------------------------------------------------------------------
    def initialize_population(self, size: int | None = None) -> list[ConversationalGenome]:
        """``size`` genomes (default ``config.population_size``) with uniform random traits,
        drawn from the engine's seeded generator."""
        n = self.config.population_size if size is None else size
        check_int("size", n, 2, _MAX_POPULATION)
        # Values in [0, 1) by construction; the array is checked once, not genome by genome.
        return population_from_array(self._rng.random((n, N_TRAITS)))

    # -- sync -----------------------------------------------------------------------------------
    def run(
        self,
        fitness_fn: FitnessFn,
        *,
        population: Sequence[ConversationalGenome] | None = None,
        callback: Callback | None = None,
    ) -> EvolutionResult:
        """Evolve for ``config.generations`` generations and return the full result.

        The generator restarts from ``config.seed``, so repeated runs give the same result.
        Without ``population`` a random one of ``config.population_size`` is drawn first.
        An ``async def`` per-genome fitness function is run on a private event loop; inside a
        running loop use ``await engine.evolve(...)`` instead.
        """
        _check_fitness_fn(fitness_fn)
        self._rng = np.random.default_rng(self.config.seed)
        if population is None:
            population = self.initialize_population()
        if _is_async_fn(fitness_fn):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                asyncio.run(self.evolve(population, fitness_fn, callback=callback))
                assert self.last_result is not None
                return self.last_result
            raise ValidationError(
                "run() cannot drive an async fitness function inside a running event loop; "
                "use `await engine.evolve(population, fitness_fn)`"
            )
        run = self._start(population)
        observers = self._observers(callback)
        t0 = time.perf_counter()
        stats = run.accept(self._evaluate_sync(run, run.start_initial(), fitness_fn))
        self._record(stats, observers)
        while not self._finished(run):
            rows = run.breed()
            stats = run.accept(self._evaluate_sync(run, rows, fitness_fn))
            self._record(stats, observers)
        return self._finish(run, time.perf_counter() - t0)

    def _evaluate_sync(self, run: _Run, rows: np.ndarray, fitness_fn: FitnessFn) -> np.ndarray:
        if is_vectorized(fitness_fn):
            return _vectorized_values(fitness_fn, rows)
        values = []
        for genome in run.pending_genomes(rows):
            value = fitness_fn(genome)
            if inspect.isawaitable(value):
                _discard(value)
                raise ValidationError(
                    f"fitness function {_fn_name(fitness_fn)} returned an awaitable; declare "
                    "it `async def` or use `await engine.evolve(...)`"
                )
            values.append(check_fitness_value(value, source=_fn_name(fitness_fn)))
        return np.asarray(values, dtype=float)

    # -- async ----------------------------------------------------------------------------------
    async def evolve(
        self,
        population: Sequence[ConversationalGenome],
        fitness_fn: FitnessFn,
        *,
        generations: int | None = None,
        callback: Callback | None = None,
    ) -> ConversationalGenome:
        """Evolve ``population`` and return (an independent copy of) the best genome.

        The event loop stays responsive: vectorised generations run in a worker thread
        (``asyncio.to_thread``), ``async`` per-genome fitness calls of a generation are awaited
        together with ``asyncio.gather``, and sync per-genome functions run in a thread.
        The full :class:`EvolutionResult` is kept in :attr:`last_result`.
        """
        _check_fitness_fn(fitness_fn)
        if generations is not None:
            check_int("generations", generations, 0, _MAX_GENERATIONS)
        run = self._start(population)
        observers = self._observers(callback)
        limit = self.config.generations if generations is None else generations
        t0 = time.perf_counter()
        vectorised = is_vectorized(fitness_fn)

        if vectorised:
            stats = await asyncio.to_thread(
                lambda: run.accept(_vectorized_values(fitness_fn, run.start_initial()))
            )
        else:
            rows = run.start_initial()
            stats = run.accept(await self._evaluate_async(run, rows, fitness_fn))
        await self._arecord(stats, observers)
        while not self._finished(run, limit):
            if vectorised:
                stats = await asyncio.to_thread(
                    lambda: run.accept(_vectorized_values(fitness_fn, run.breed()))
                )
            else:
                rows = run.breed()
                stats = run.accept(await self._evaluate_async(run, rows, fitness_fn))
            await self._arecord(stats, observers)
        self._finish(run, time.perf_counter() - t0)
        return run.best_genome()

    async def _evaluate_async(
        self, run: _Run, rows: np.ndarray, fitness_fn: FitnessFn
    ) -> np.ndarray:
        genomes = run.pending_genomes(rows)
        name = _fn_name(fitness_fn)
        if _is_async_fn(fitness_fn):
            results = list(await asyncio.gather(*(fitness_fn(g) for g in genomes)))
        else:
            results = await asyncio.to_thread(lambda: [fitness_fn(g) for g in genomes])
            pending = [i for i, r in enumerate(results) if inspect.isawaitable(r)]
            if pending:
                done = await asyncio.gather(*(results[i] for i in pending))
                for i, value in zip(pending, done, strict=True):
                    results[i] = value
        return np.asarray([check_fitness_value(v, source=name) for v in results], dtype=float)

    # -- shared ---------------------------------------------------------------------------------
    def _start(self, population: Sequence[ConversationalGenome]) -> _Run:
        population = _check_population(population, self.config)
        self.history = []
        self._errors_at_start = self.callback_errors  # the result counts this run's errors
        self._run = _Run(self.config, self._rng, population)
        return self._run

    def _finished(self, run: _Run, limit: int | None = None) -> bool:
        limit = self.config.generations if limit is None else limit
        target = self.config.target_fitness
        if target is not None and run.best is not None and run.best.fitness >= target:
            return True
        return run.generation >= limit

    def _finish(self, run: _Run, wall_time: float) -> EvolutionResult:
        self.last_result = EvolutionResult(
            best=run.best_genome(),
            history=list(self.history),
            population=run.population(),
            evaluations=run.evaluations,
            wall_time_s=wall_time,
            callback_errors=self.callback_errors - self._errors_at_start,
            fitness=run.fitness.copy(),
        )
        return self.last_result

    def _observers(self, callback: Callback | None) -> list[Callback]:
        if callback is not None and not callable(callback):
            raise ValidationError(f"callback must be callable, got {callback!r}")
        return [*self._callbacks, *([callback] if callback is not None else [])]

    def _record(self, stats: GenerationStats, observers: list[Callback]) -> None:
        self.history.append(stats)
        for fn in observers:
            try:
                outcome = fn(stats)
            except Exception:
                self._callback_failed(fn)
                continue
            # Most observers return None; skipping isawaitable() for them keeps the per-generation
            # cost of observation low (the check alone is ~0.4 us, a visible share at pop 50).
            if outcome is not None and inspect.isawaitable(outcome):
                _discard(outcome)
                self.callback_errors += 1
                logger.warning(
                    "callback %s is async; run() only calls sync callbacks (use evolve())",
                    _fn_name(fn),
                )

    async def _arecord(self, stats: GenerationStats, observers: list[Callback]) -> None:
        self.history.append(stats)
        for fn in observers:
            try:
                outcome = fn(stats)
                if outcome is not None and inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                self._callback_failed(fn)

    def _callback_failed(self, fn: Callback) -> None:
        self.callback_errors += 1
        logger.warning(
            "evolution callback %s raised (%d callback errors so far); evolution continues",
            _fn_name(fn),
            self.callback_errors,
            exc_info=True,
        )


def _top(fitness: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` fittest, best first (equal fitness among them: lower index first)."""
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if k >= len(fitness):
        return np.argsort(-fitness, kind="stable")
    # A partial partition is O(N); only the k winners are then sorted.
    cut = np.argpartition(-fitness, k - 1)[:k]
    return cut[np.lexsort((cut, -fitness[cut]))]


# -- checks ----------------------------------------------------------------------------------
def _vectorized_values(fitness_fn: FitnessFn, rows: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.empty(0)
    return check_fitness_values(fitness_fn(rows), len(rows), source=_fn_name(fitness_fn))


def _check_fitness_fn(fn: object) -> None:
    if not callable(fn):
        raise ValidationError(f"fitness_fn must be callable, got {fn!r}")


def _check_population(
    population: Sequence[ConversationalGenome], config: EvolutionConfig
) -> list[ConversationalGenome]:
    if isinstance(population, str | bytes) or not isinstance(population, Sequence):
        raise ValidationError(
            "population must be a sequence of ConversationalGenome, got "
            f"{type(population).__name__}"
        )
    items = list(population)
    bad = [i for i, g in enumerate(items) if not isinstance(g, ConversationalGenome)]
    if bad:
        raise ValidationError(
            f"population items must be ConversationalGenome; item {bad[0]} is "
            f"{type(items[bad[0]]).__name__}"
        )
    n = len(items)
    if n < 2:
        raise ValidationError(f"population must hold at least 2 genomes, got {n}")
    if config.elitism >= n:
        raise ValidationError(
            f"elitism must be in [0, {n - 1}] for a population of {n}, got {config.elitism}"
        )
    if config.tournament_size > n:
        raise ValidationError(
            f"tournament_size must be in [1, {n}] for a population of {n}, "
            f"got {config.tournament_size}"
        )
    return items


def _is_async_fn(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


def _fn_name(fn: object) -> str:
    return getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine we will not await, so Python does not warn it was never awaited."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
