"""The evolution monitor: each generation of an ``EvolutionEngine``, from the engine's own
``history``, and each run.

One recording path: the generations not recorded yet are taken from ``engine.history`` and
handed to the collector as one table (``record_table``: six series, one row each, every point
at its generation's end time ``GenerationStats.timestamp``). That happens when a run ends, on
the evolving thread (the run's statistics are turned into columns at once, so its
``GenerationStats`` objects die with the run instead of piling up until a tick: kept that long,
a second's worth -- some 10,000 at population 50 -- would set off Python's cyclic garbage
collector over the whole heap, on the evolving thread), and on every engine tick for the run
in progress (``push``), so a long run is visible while it runs. The evolving thread pays
nothing per generation and one conversion per run.
"""

from __future__ import annotations

import operator
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from allele.errors import ValidationError
from allele.evolution import (
    Callback,
    EvolutionConfig,
    EvolutionEngine,
    EvolutionResult,
    FitnessFn,
    GenerationStats,
)
from allele.genome import ConversationalGenome
from allele.observability.collector import GaugeHandle, HistogramHandle
from allele.observability.engine import ObservabilityEngine
from allele.observability.integration.base import ComponentMonitor
from allele.observability.metric_names import (
    EVOLUTION_BEST,
    EVOLUTION_DIVERSITY,
    EVOLUTION_EVALUATIONS,
    EVOLUTION_GENERATION,
    EVOLUTION_MEAN,
    EVOLUTION_WORST,
    LATENCY_METRIC,
)
from allele.observability.types import ComponentType

_T = TypeVar("_T")

#: The ``GenerationStats`` fields of a generation's table column, in row order: the time, the
#: six recorded series (best, mean, worst, diversity, generation, duration) and evaluations.
_FIELDS = (
    "timestamp",
    "best_fitness",
    "mean_fitness",
    "worst_fitness",
    "diversity",
    "generation",
    "duration_s",
    "evaluations",
)
_GENERATION_FIELDS = operator.attrgetter(*_FIELDS)


def generation_columns(generations: Sequence[GenerationStats]) -> np.ndarray:
    """The statistics of ``generations`` as one row per field of ``_FIELDS`` (float64 when
    every statistic is a plain number, else an object array holding the values as recorded,
    for the fold to validate one by one -- numpy is never asked to parse "1.5" as 1.5)."""
    rows = list(map(_GENERATION_FIELDS, generations))
    # One conversion of the whole table: numbers (floats, ints, bools, numpy scalars) give a
    # numeric array, converted to float64 exactly as float() would.
    matrix = np.array(rows)
    if matrix.ndim == 2 and matrix.shape[1] == len(_FIELDS) and matrix.dtype.kind in "fiub":
        return matrix.T.astype(np.float64, order="C")  # each statistic one contiguous row
    table = np.empty((len(_FIELDS), len(rows)), dtype=object)
    for j, row in enumerate(rows):
        table[:, j] = row
    return table


class EvolutionMonitor(ComponentMonitor):
    """Records each generation and each run of an ``EvolutionEngine`` (see the module
    docstring): per generation the gauges ``allele_evolution_{best,mean,worst}_fitness``,
    ``allele_evolution_diversity`` and ``allele_evolution_generation``, the generation's
    duration as the component latency of operation ``generation`` (all at the generation's
    end time), ``allele_evolution_evaluations_total`` and a success; per run its latency and
    success (or error), and a heartbeat. Between runs the component is idle (no heartbeat
    expected, see ``ComponentMetricsCollector.idle``).

    ``attach(engine)`` follows a plain engine, wrapping its ``run`` and ``evolve`` on the
    instance; ``ObservableEvolutionEngine`` calls ``record_run`` from its own methods.
    """

    component_type = ComponentType.EVOLUTION_ENGINE

    def __init__(
        self,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(component_id=component_id, engine=engine, metadata=metadata)
        collector = self.recorder.collector
        self._evaluations = self._counter(EVOLUTION_EVALUATIONS)
        self._generation_ok = self._success("generation")
        self._record_table = collector.record_table
        # The series of table rows 1-6 (see _FIELDS).
        self._table_handles: tuple[GaugeHandle | HistogramHandle, ...] = (
            collector.gauge(EVOLUTION_BEST, self._labels),
            collector.gauge(EVOLUTION_MEAN, self._labels),
            collector.gauge(EVOLUTION_WORST, self._labels),
            collector.gauge(EVOLUTION_DIVERSITY, self._labels),
            collector.gauge(EVOLUTION_GENERATION, self._labels),
            collector.timer(LATENCY_METRIC, {**self._labels, "operation": "generation"}),
        )
        # The followed engine (weakly: the observability engine's recorder list must not keep
        # a finished workload alive), its history list and how much of it is recorded. The
        # lock keeps a tick and a run's end from recording one generation twice.
        self._followed: weakref.ref[EvolutionEngine] | None = None
        self._history: list[GenerationStats] | None = None
        self._seen = 0
        self._lock = threading.Lock()
        self._in_run = False  # run() of an async fitness function goes through evolve()

    def attach(self, target: EvolutionEngine) -> EvolutionMonitor:
        """Record every generation and run of ``target`` from now on; returns self."""
        if not isinstance(target, EvolutionEngine):
            raise ValidationError(f"target must be an EvolutionEngine, got {type(target).__name__}")
        with self._lock:
            self._followed = weakref.ref(target)
            self._history, self._seen = target.history, len(target.history)
        self._target = target
        if not isinstance(target, ObservableEvolutionEngine):
            self._wrap(target)
        self.attached = True
        self.engine.add_recorder(self.push)
        return self

    def _wrap(self, target: EvolutionEngine) -> None:
        run = type(target).run.__get__(target)
        evolve = type(target).evolve.__get__(target)
        monitor = self

        def wrapped_run(fitness_fn: FitnessFn, **kwargs: Any) -> EvolutionResult:
            return monitor.record_run(target, lambda: run(fitness_fn, **kwargs))

        async def wrapped_evolve(
            population: Sequence[ConversationalGenome], fitness_fn: FitnessFn, **kwargs: Any
        ) -> ConversationalGenome:
            return await monitor.record_async_run(
                target, lambda: evolve(population, fitness_fn, **kwargs)
            )

        wrapped_run.__doc__ = EvolutionEngine.run.__doc__
        wrapped_evolve.__doc__ = EvolutionEngine.evolve.__doc__
        # Instance attributes shadow the class's methods; detach() removes them again.
        target.__dict__["run"] = wrapped_run
        target.__dict__["evolve"] = wrapped_evolve

    def detach(self) -> None:
        """Record what is pending and stop recording; a wrapped plain engine gets its own
        methods back."""
        target = self._target
        super().detach()
        if target is not None and not isinstance(target, ObservableEvolutionEngine):
            for name in ("run", "evolve"):
                target.__dict__.pop(name, None)
        self._followed = None

    # the one recording path -------------------------------------------------------------------
    def push(self) -> None:
        """Record the generations the followed engine has run since they were last taken
        (the run in progress). The engine calls it on every tick; never raises."""
        followed = self._followed
        target = followed() if followed is not None else None
        if target is not None and self.attached:
            self._record_new(target.history)

    def _record_new(self, history: list[GenerationStats]) -> None:
        """Record the generations of ``history`` not recorded yet; never raises."""
        try:
            with self._lock:
                start = self._seen if history is self._history else 0
                stop = len(history)  # a run in progress may append meanwhile
                self._history, self._seen = history, max(start, stop)
            if stop > start:
                self._record(generation_columns(history[start:stop]))
        except Exception:
            self._failed("generations")

    def _record(self, columns: np.ndarray) -> None:
        """Record generations given as ``generation_columns`` rows, a table this monitor owns:
        handed to the collector whole (no copy), checked and taken in by the fold with a few
        numpy calls over all six series."""
        times = columns[0]
        if columns.dtype == object:  # a statistic that is not a plain number
            times = times.astype(np.float64)
            for handle, row in zip(self._table_handles, columns[1:7], strict=True):
                if isinstance(handle, GaugeHandle):
                    handle.set_many(row.tolist(), times)
                else:
                    handle.observe_many(row.tolist(), times)
            evaluations = sum(columns[7].tolist())
        else:
            self._record_table(self._table_handles, times, columns[1:7], copy=False)
            evaluations = float(columns[7].sum())
        self._evaluations(evaluations)
        self._generation_ok(int(times.size))
        self.recorder.heartbeat()

    # runs -------------------------------------------------------------------------------------
    def record_run(self, target: EvolutionEngine, run: Callable[[], _T]) -> _T:
        """Call ``run()`` (a run of ``target``) and record it: its generations, its wall time
        and success, or its error's class name (the error propagates unchanged)."""
        if self._in_run or not self.attached:  # run() driving evolve(): recorded once
            return run()
        self._started()
        start = time.perf_counter()
        try:
            result = run()
        except Exception as exc:
            self.run_ended(target, time.perf_counter() - start, exc)
            raise
        finally:
            self._in_run = False
        self.run_ended(target, time.perf_counter() - start, None)
        return result

    async def record_async_run(
        self, target: EvolutionEngine, run: Callable[[], Awaitable[_T]]
    ) -> _T:
        """``record_run`` for ``evolve``: awaits ``run()``."""
        if self._in_run or not self.attached:
            return await run()
        self._started()
        start = time.perf_counter()
        try:
            result = await run()
        except Exception as exc:
            self.run_ended(target, time.perf_counter() - start, exc)
            raise
        finally:
            self._in_run = False
        self.run_ended(target, time.perf_counter() - start, None)
        return result

    def _started(self) -> None:
        # A run starts: heartbeats are expected again (a run that hangs before its first
        # generation ends goes stale instead of staying idle).
        self._in_run = True
        try:
            self.recorder.heartbeat()
        except Exception:
            self._failed("a run's start")

    def run_ended(
        self, target: EvolutionEngine, seconds: float, error: BaseException | None
    ) -> None:
        self._record_new(target.history)
        try:
            self.recorder.record_latency(seconds, "run")
            if error is None:
                self.recorder.record_success("run")
            else:
                self.recorder.record_error("run", type(error).__name__)
            self.recorder.idle()  # a batch workload: no heartbeat until the next run
        except Exception:
            self._failed("a run")


class ObservableEvolutionEngine(EvolutionEngine):
    """An ``EvolutionEngine`` that records every generation (and every run) it performs.

    Same constructor as ``EvolutionEngine`` plus ``component_id`` (default: a fresh id) and
    ``engine`` (default: the process-wide observability engine). ``monitor`` is its
    ``EvolutionMonitor``.
    """

    def __init__(
        self,
        config: EvolutionConfig | None = None,
        *,
        callback: Callback | None = None,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
    ) -> None:
        super().__init__(config, callback=callback)
        self.monitor = EvolutionMonitor(
            component_id=component_id, engine=engine, metadata=self.config.to_dict()
        ).attach(self)

    def run(
        self,
        fitness_fn: FitnessFn,
        *,
        population: Sequence[ConversationalGenome] | None = None,
        callback: Callback | None = None,
    ) -> EvolutionResult:
        """``EvolutionEngine.run``, also recording its generations and the run."""
        run = super().run
        return self.monitor.record_run(
            self, lambda: run(fitness_fn, population=population, callback=callback)
        )

    async def evolve(
        self,
        population: Sequence[ConversationalGenome],
        fitness_fn: FitnessFn,
        *,
        generations: int | None = None,
        callback: Callback | None = None,
    ) -> ConversationalGenome:
        """``EvolutionEngine.evolve``, also recording its generations and the run."""
        evolve = super().evolve
        return await self.monitor.record_async_run(
            self,
            lambda: evolve(population, fitness_fn, generations=generations, callback=callback),
        )
