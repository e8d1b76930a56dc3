"""``EvolutionEngine``: the sync (``run``) and async (``evolve``) drivers over a ``_Run``, the
per-generation observers, and the checks of what callers hand in (fitness functions,
populations)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from allele.errors import ValidationError, check_int
from allele.evolution.config import _MAX_GENERATIONS, _MAX_POPULATION, EvolutionConfig
from allele.evolution.population import _Run
from allele.evolution.results import EvolutionResult, GenerationStats
from allele.fitness import check_fitness_value, check_fitness_values, is_vectorized
from allele.genome import N_TRAITS, ConversationalGenome, population_from_array

# The package's logger: observers' failures are reported as the evolution's.
logger = logging.getLogger("allele.evolution")

#: A per-generation observer: receives the generation's statistics; may be ``async`` under
#: ``evolve``. Whatever it raises is counted and logged, never propagated.
Callback = Callable[["GenerationStats"], Any]
FitnessFn = Callable[..., Any]


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
