"""Observable workloads: the evolution engine, the Kraken reservoir and the NLP agent, each
recording what it really did into the observability engine.

>>> from allele.evolution import EvolutionConfig
>>> from allele.fitness import TargetPersonality
>>> await setup_observability_monitoring()                                 # doctest: +SKIP
>>> engine = create_observable_evolution_engine(EvolutionConfig(seed=1))   # doctest: +SKIP
>>> result = engine.run(TargetPersonality({"empathy": 0.9}))               # doctest: +SKIP
>>> engine.monitor.component_id                                            # doctest: +SKIP
'evolution_engine-3f9a1c'
>>> await teardown_observability_monitoring()                              # doctest: +SKIP

Two ways in:

* ``ObservableEvolutionEngine``, ``ObservableKrakenLNN`` and ``ObservableNLPAgent`` are
  subclasses of the workloads: usable wherever the original is, with a ``monitor`` attribute.
* ``observe(component)`` attaches a monitor to an existing workload object (an
  ``EvolutionEngine``, ``KrakenLNN`` or ``NLPAgent``) and returns the monitor; ``detach()``
  stops the recording.

What is recorded (every series carries ``component_id`` and ``component_type`` labels):

=================  ===========================================================================
evolution          per generation, from the engine's ``GenerationStats``: the gauges
                   ``allele_evolution_{best,mean,worst}_fitness``, ``allele_evolution_diversity``
                   and ``allele_evolution_generation`` (one point per generation each, stamped
                   with the generation's end time, ``GenerationStats.timestamp``), the
                   generation's ``duration_s`` as the component latency of operation
                   ``generation`` (same timestamps),
                   ``allele_evolution_evaluations_total``; a heartbeat.
kraken             per sequence: its latency (operation ``sequence``; a batch is one operation
                   ``batch``) and success. On every fold (each tick, each read):
                   ``allele_kraken_sequences_total`` and ``allele_kraken_steps_total`` from the
                   network's own counters, the memory-buffer fill ``allele_kraken_memory_size``;
                   reservoir state statistics (``allele_kraken_activation_{mean,std,max_abs}``
                   of the last sequence, ``allele_kraken_memory_consolidations``) and a
                   heartbeat at most once per ``state_interval_s``.
nlp agent          per request, from the agent's ``RequestRecord`` listener: latency (operation
                   ``request``), success or the error by kind (``rate_limit``, ``server``...),
                   ``allele_agent_tokens_total{direction=in|out}``, time to first token and
                   tokens per second; a heartbeat.
=================  ===========================================================================

Monitoring never breaks the workload: an exception raised while recording is caught, counted
in ``monitor.errors`` (and in ``allele_monitoring_errors_total``) and logged, never re-raised.
Exceptions of the workload itself are recorded as errors and propagate unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from allele.agent import AgentConfig, NLPAgent, RequestRecord
from allele.errors import ValidationError
from allele.evolution import (
    HISTORY_COLUMNS,
    Callback,
    EvolutionConfig,
    EvolutionEngine,
    EvolutionResult,
    FitnessFn,
    GenerationStats,
)
from allele.genome import ConversationalGenome
from allele.kraken import BatchResult, KrakenLNN, ReservoirResult
from allele.observability.collector import (
    LATENCY_METRIC,
    OPERATIONS_METRIC,
    ComponentMetricsCollector,
)
from allele.observability.engine import ObservabilityEngine, get_observability_engine
from allele.observability.types import ComponentType

logger = logging.getLogger("allele.observability.integration")

MONITORING_ERRORS_METRIC = "allele_monitoring_errors_total"

EVOLUTION_BEST = "allele_evolution_best_fitness"
EVOLUTION_MEAN = "allele_evolution_mean_fitness"
EVOLUTION_WORST = "allele_evolution_worst_fitness"
EVOLUTION_DIVERSITY = "allele_evolution_diversity"
EVOLUTION_GENERATION = "allele_evolution_generation"
EVOLUTION_EVALUATIONS = "allele_evolution_evaluations_total"

KRAKEN_SEQUENCES = "allele_kraken_sequences_total"
KRAKEN_STEPS = "allele_kraken_steps_total"
KRAKEN_MEMORY_SIZE = "allele_kraken_memory_size"
KRAKEN_MEMORY_CAPACITY = "allele_kraken_memory_capacity"
KRAKEN_CONSOLIDATIONS = "allele_kraken_memory_consolidations"
KRAKEN_ACTIVATION_MEAN = "allele_kraken_activation_mean"
KRAKEN_ACTIVATION_STD = "allele_kraken_activation_std"
KRAKEN_ACTIVATION_MAX_ABS = "allele_kraken_activation_max_abs"

AGENT_TOKENS = "allele_agent_tokens_total"
AGENT_TTFT = "allele_agent_ttft_seconds"
AGENT_TOKENS_PER_SECOND = "allele_agent_tokens_per_second"

#: The first few recording failures are logged with their traceback, then one in this many.
_LOG_EVERY = 1000
_LOG_FIRST = 3


def _new_component_id(kind: ComponentType) -> str:
    # A short random suffix keeps ids unique across processes that share one store.
    return f"{kind.value}-{uuid.uuid4().hex[:8]}"


# -- the monitor base ----------------------------------------------------------------------------
class ComponentMonitor:
    """Records one workload object into the observability engine; subclasses know how.

    ``recorder`` is the component's ``ComponentMetricsCollector``; ``errors`` counts the
    exceptions raised while recording (each caught and logged, never re-raised).
    """

    component_type: ComponentType

    def __init__(
        self,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if component_id is not None and (not isinstance(component_id, str) or not component_id):
            raise ValidationError(f"component_id must be a non-empty string, got {component_id!r}")
        if engine is not None and not isinstance(engine, ObservabilityEngine):
            raise ValidationError(
                f"engine must be an ObservabilityEngine, got {type(engine).__name__}"
            )
        self.engine = engine if engine is not None else get_observability_engine()
        self.component_id = component_id or _new_component_id(self.component_type)
        self.recorder: ComponentMetricsCollector = self.engine.register_component(
            self.component_id, self.component_type, metadata=metadata
        )
        self.errors = 0
        self.attached = False
        self._labels = dict(self.recorder.labels)
        self._error_counter = self._counter(MONITORING_ERRORS_METRIC)

    # handles are created once so that recording is one append each
    def _gauge(self, name: str) -> Callable[[float], None]:
        return self.recorder.collector.gauge(name, self._labels).set

    def _counter(self, name: str, **labels: str) -> Callable[[float], None]:
        return self.recorder.collector.counter(name, {**self._labels, **labels}).inc

    def _timer(self, name: str, **labels: str) -> Callable[[float], None]:
        return self.recorder.collector.timer(name, {**self._labels, **labels}).observe

    def _latency(self, operation: str) -> Callable[[float], None]:
        return self._timer(LATENCY_METRIC, operation=operation)

    def _success(self, operation: str) -> Callable[[float], None]:
        # The series record_success() writes, held as a handle.
        return self._counter(OPERATIONS_METRIC, operation=operation, outcome="success")

    def _failed(self, what: str) -> None:
        """Count and log an exception raised while recording; never raises."""
        self.errors += 1
        with contextlib.suppress(Exception):  # the error counter may be what is broken
            self._error_counter(1)
        if self.errors <= _LOG_FIRST or self.errors % _LOG_EVERY == 0:
            logger.warning(
                "recording %s of component %s failed (%d recording errors so far); "
                "the workload continues",
                what,
                self.component_id,
                self.errors,
                exc_info=True,
            )

    def detach(self) -> None:
        """Stop recording this component (the series recorded so far stay)."""
        self.attached = False
        target = getattr(self, "_target", None)
        if target is not None and target.__dict__.get(_MONITOR_ATTR) is self:
            del target.__dict__[_MONITOR_ATTR]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(component_id={self.component_id!r}, "
            f"attached={self.attached}, errors={self.errors})"
        )


# -- evolution -----------------------------------------------------------------------------------
class EvolutionMonitor(ComponentMonitor):
    """Records each generation of an ``EvolutionEngine`` from its ``GenerationStats``.

    Attached to a plain engine (``observe(engine)``) it records every generation from the
    engine's per-generation callback, as the engine reports it.

    ``ObservableEvolutionEngine`` attaches it ``batched``: no callback runs per generation.
    The engine already keeps each generation's statistics in ``engine.history``; when a run
    ends the engine hands its history list to the monitor (``run_ended``), which turns the
    entries no fold recorded yet into one float64 column per statistic at once (a few tens
    of microseconds per 100-generation run, while the run's statistics are in the caches) and
    queues them; the monitor records the queued columns and the run in progress in bulk, as
    a fold hook of the collector (``flush()``): on every tick of the observability engine's
    background thread and before every read of the collector (and thus before every drain
    to the store). The evolving thread thus pays nothing per generation (a callback costs
    ~1-2 us with the caches cold from the generation's numpy work, 1-2% of a 100 us
    generation at population 50) and little per run; the run's statistics objects are freed
    with the run rather than kept alive until the next fold (which would set off the garbage
    collector, see ``run_ended``); a read never misses a finished generation, and a long run
    is visible while it runs. The values and their number are the same either way.

    Timestamps: a batched generation's points carry the generation's own end time,
    ``GenerationStats.timestamp`` (the wall clock the engine read as the generation ended),
    however late a tick records them. A callback-recorded generation is stamped when the
    callback runs, right after the engine took that timestamp: one gauge ``set`` per series,
    the cheapest recording per call (an explicitly timed point per generation would cost the
    fold a separate validation per point).
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
        self._best = self._gauge(EVOLUTION_BEST)
        self._mean = self._gauge(EVOLUTION_MEAN)
        self._worst = self._gauge(EVOLUTION_WORST)
        self._diversity = self._gauge(EVOLUTION_DIVERSITY)
        self._generation = self._gauge(EVOLUTION_GENERATION)
        self._evaluations = self._counter(EVOLUTION_EVALUATIONS)
        self._generation_latency = self._latency("generation")
        self._generation_ok = self._success("generation")
        self._heartbeat = self.recorder.heartbeat
        # Bulk forms of the same series, for recording many generations at once.
        self._best_many = collector.gauge(EVOLUTION_BEST, self._labels).set_many
        self._mean_many = collector.gauge(EVOLUTION_MEAN, self._labels).set_many
        self._worst_many = collector.gauge(EVOLUTION_WORST, self._labels).set_many
        self._diversity_many = collector.gauge(EVOLUTION_DIVERSITY, self._labels).set_many
        self._generation_many = collector.gauge(EVOLUTION_GENERATION, self._labels).set_many
        self._latency_many = collector.timer(
            LATENCY_METRIC, {**self._labels, "operation": "generation"}
        ).observe_many
        # The series of the table rows 1-6 of _generation_columns, for record_table.
        self._record_table = collector.record_table
        self._table_handles = (
            collector.gauge(EVOLUTION_BEST, self._labels),
            collector.gauge(EVOLUTION_MEAN, self._labels),
            collector.gauge(EVOLUTION_WORST, self._labels),
            collector.gauge(EVOLUTION_DIVERSITY, self._labels),
            collector.gauge(EVOLUTION_GENERATION, self._labels),
            collector.timer(LATENCY_METRIC, {**self._labels, "operation": "generation"}),
        )
        self._target: EvolutionEngine | None = None
        self._callback: Callable[[GenerationStats], None] | None = None
        # Batched mode: the followed engine (weakly: the observability engine's tick listener
        # must not keep a finished workload alive), its history list and how much of it is
        # recorded. The lock keeps a tick and a run's end from recording one entry twice.
        self._followed: weakref.ref[EvolutionEngine] | None = None
        self._history: list[GenerationStats] | None = None
        self._seen = 0
        # What ended runs left unrecorded, in run order: columns (``_generation_columns``), or
        # the statistics themselves when they are not plain numbers.
        self._ended: list[np.ndarray | list[GenerationStats]] = []
        self._lock = threading.Lock()

    def attach(self, target: EvolutionEngine, *, batched: bool = False) -> EvolutionMonitor:
        """Record every generation ``target`` runs from now on; returns self.

        ``batched`` records from ``target.history`` when the collector folds instead of from a
        per-generation callback (see the class docstring): for callers that hand every run's
        history to ``run_ended()`` when the run ends, as ``ObservableEvolutionEngine`` does.
        """
        if not isinstance(target, EvolutionEngine):
            raise ValidationError(f"target must be an EvolutionEngine, got {type(target).__name__}")
        if batched:
            with self._lock:
                self._followed = weakref.ref(target)
                self._history, self._seen = target.history, len(target.history)
            self.recorder.collector.add_fold_hook(self.flush)
        else:
            self._callback = self.on_generation
            target.add_callback(self._callback)
            self._target = target
        self.attached = True
        return self

    def detach(self) -> None:
        """Record what is pending and stop recording generations of the attached engine."""
        self.flush()
        if self._followed is not None:
            self.recorder.collector.remove_fold_hook(self.flush)
            self._followed = None
        if self._target is not None and self._callback is not None and self.attached:
            self._target.remove_callback(self._callback)
        super().detach()

    def on_generation(self, stats: GenerationStats) -> None:
        """Record one generation's statistics (the engine's per-generation callback)."""
        try:
            self._best(stats.best_fitness)
            self._mean(stats.mean_fitness)
            self._worst(stats.worst_fitness)
            self._diversity(stats.diversity)
            self._generation(stats.generation)
            self._evaluations(stats.evaluations)
            self._generation_latency(stats.duration_s)
            self._generation_ok(1)
            self._heartbeat()
        except Exception:
            self._failed("a generation")

    def run_ended(
        self, history: list[GenerationStats], source: EvolutionEngine | None = None
    ) -> None:
        """Note that a run of the followed engine ended with ``history`` (its
        ``engine.history`` list): what of it no fold recorded yet is queued for the next fold.

        ``source`` is the engine that ran it: the unrecorded generations are then taken as
        columns the engine kept while running (``source.history_columns``: one conversion,
        no per-generation work here). Without it they are turned into columns from the
        ``GenerationStats`` objects (about 0.3 us per generation). Either way this happens on
        the evolving thread, so the run's statistics objects die with the run: kept until a
        fold, up to a second's worth (some 10,000 at population 50) would pile up as live
        objects, each batch setting off Python's cyclic garbage collector over the whole
        heap -- on the evolving thread, costing several times what the conversion does.
        Never raises.
        """
        try:
            with self._lock:
                start = self._seen if history is self._history else 0
                stop = len(history)
                self._history, self._seen = history, max(start, stop)
            if stop > start:
                columns: np.ndarray | None
                if source is not None:
                    columns = source.history_columns(start, stop)
                    if columns.shape[1] != stop - start:  # not the run it says: use the objects
                        columns = _generation_columns(history[start:stop])
                else:
                    columns = _generation_columns(history[start:stop])
                # Statistics that are not plain numbers stay objects, validated by the fold.
                item = history[start:stop] if columns is None else columns
                self._ended.append(item)  # atomic append
        except Exception:
            self._failed("a run's end")

    def flush(self) -> None:
        """Record the generations the followed engine has run since the last flush: those of
        every ended run (queued by ``run_ended``), then those of the run in progress.

        The collector calls it at the start of every fold; safe from any thread, never raises;
        does nothing unless attached ``batched``.
        """
        followed = self._followed
        target = followed() if followed is not None else None
        if target is None:
            return
        with self._lock:
            ended = self._ended
            n = len(ended)
            queued = ended[:n]
            del ended[:n]  # runs ending meanwhile append after index n: kept for the next fold
            history = target.history
            # A run in progress may append meanwhile: count what was taken, not len().
            start = self._seen if history is self._history else 0
            taken = history[start:]
            self._history, self._seen = history, start + len(taken)
        # Each generation was taken exactly once above; recording needs no lock (every point
        # carries its own time, so two folds recording at once cannot misorder a series).
        if taken:
            queued.append(taken)
        # One table of every generation in run order (the run in progress last), so that each
        # series gets one piece per fold, in time order.
        blocks: list[np.ndarray] = []
        for item in queued:
            columns = item if isinstance(item, np.ndarray) else _generation_columns(item)
            if columns is None:  # statistics that are not plain numbers: one by one
                self.record_generations(item)  # type: ignore[arg-type]
            else:
                blocks.append(columns)
        if blocks:
            self._record_columns(blocks[0] if len(blocks) == 1 else np.concatenate(blocks, 1))

    def record_generations(self, generations: Sequence[GenerationStats]) -> None:
        """Record the statistics of ``generations`` in order, with one append per series (the
        same values ``on_generation`` records one generation at a time), each generation's
        points at its end time ``GenerationStats.timestamp`` (epoch seconds UTC)."""
        try:
            columns = _generation_columns(generations)
            if columns is not None:
                self._record_columns(columns)
                return
            # A statistic that is not a plain number: the values as recorded, for the fold to
            # validate one by one.
            times = np.array([s.timestamp for s in generations], dtype=np.float64)
            self._best_many([s.best_fitness for s in generations], times)
            self._mean_many([s.mean_fitness for s in generations], times)
            self._worst_many([s.worst_fitness for s in generations], times)
            self._diversity_many([s.diversity for s in generations], times)
            self._generation_many([s.generation for s in generations], times)
            self._latency_many([s.duration_s for s in generations], times)
            self._evaluations(sum(s.evaluations for s in generations))
            self._generation_ok(len(generations))
            self._heartbeat()
        except Exception:
            self._failed(f"{len(generations)} generations")

    def _record_columns(self, columns: np.ndarray) -> None:
        """Record generations given as ``_generation_columns`` rows, a table this monitor
        owns: handed to the collector whole (``record_table``, no copy), checked and taken in
        by the fold with a few numpy calls over all six series."""
        try:
            times, evaluations = columns[0], columns[7]
            self._record_table(self._table_handles, times, columns[1:7], copy=False)
            self._evaluations(float(evaluations.sum()))
            self._generation_ok(int(times.size))
            self._heartbeat()
        except Exception:
            self._failed(f"{columns.shape[-1]} generations")

    def run_finished(self, seconds: float, error: BaseException | None) -> None:
        """Record a whole run: its wall time and success, or the error's class name."""
        try:
            self.recorder.record_latency(seconds, "run")
            if error is None:
                self.recorder.record_success("run")
            else:
                self.recorder.record_error("run", type(error).__name__)
        except Exception:
            self._failed("a run")


#: The statistics ``record_generations`` records, in the order of ``_generation_columns``.
_GENERATION_FIELDS = operator.attrgetter(*HISTORY_COLUMNS)


def _generation_columns(generations: Sequence[GenerationStats]) -> np.ndarray | None:
    """The statistics of ``generations`` as eight contiguous float64 rows (timestamp, best,
    mean, worst, diversity, generation, duration, evaluations), built in one pass; None when
    one of them is not a plain number (``record_generations`` then hands the values over as
    recorded, for the fold to validate one by one)."""
    rows = list(map(_GENERATION_FIELDS, generations))
    # One conversion of the whole table. Numbers (floats, ints, bools, numpy scalars) give a
    # numeric array, converted to float64 exactly as float() would; a string or None anywhere
    # gives a string or object array instead -- numpy is never asked to parse "1.5" as 1.5.
    matrix = np.array(rows)
    if matrix.ndim != 2 or matrix.shape[1] != 8 or matrix.dtype.kind not in "fiub":
        return None
    return matrix.T.astype(np.float64, order="C")  # each statistic one contiguous row


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
        self._timing_run = False  # run() of an async fitness function goes through evolve()
        self.monitor = EvolutionMonitor(
            component_id=component_id, engine=engine, metadata=self.config.to_dict()
        ).attach(self, batched=True)

    def run(
        self,
        fitness_fn: FitnessFn,
        *,
        population: Sequence[ConversationalGenome] | None = None,
        callback: Callback | None = None,
    ) -> EvolutionResult:
        """``EvolutionEngine.run``, also recording the run's wall time or its error."""
        start = time.perf_counter()
        self._timing_run = True
        try:
            result = super().run(fitness_fn, population=population, callback=callback)
        except Exception as exc:
            self.monitor.run_ended(self.history, self)
            self.monitor.run_finished(time.perf_counter() - start, exc)
            raise
        finally:
            self._timing_run = False
        self.monitor.run_ended(self.history, self)
        self.monitor.run_finished(time.perf_counter() - start, None)
        return result

    async def evolve(
        self,
        population: Sequence[ConversationalGenome],
        fitness_fn: FitnessFn,
        *,
        generations: int | None = None,
        callback: Callback | None = None,
    ) -> ConversationalGenome:
        """``EvolutionEngine.evolve``, also recording the run's wall time or its error."""
        if self._timing_run:  # called by run(): run() records it
            return await super().evolve(
                population, fitness_fn, generations=generations, callback=callback
            )
        start = time.perf_counter()
        try:
            best = await super().evolve(
                population, fitness_fn, generations=generations, callback=callback
            )
        except Exception as exc:
            self.monitor.run_ended(self.history, self)
            self.monitor.run_finished(time.perf_counter() - start, exc)
            raise
        self.monitor.run_ended(self.history, self)
        self.monitor.run_finished(time.perf_counter() - start, None)
        return best


# -- kraken --------------------------------------------------------------------------------------
class KrakenMonitor(ComponentMonitor):
    """Records each sequence (and batch) a ``KrakenLNN`` processes.

    The processing thread pays one ``list.append`` per sequence: its latency (two
    ``perf_counter`` reads around the call). Everything else is derived in bulk when the
    collector folds (``flush()``, a fold hook: on every observability tick and before every
    read), from the latencies taken since the previous fold and from the network itself:

    * the latencies (timer of operation ``sequence``, stamped with the fold's time like every
      timer observation) and as many successes;
    * ``allele_kraken_sequences_total`` and ``allele_kraken_steps_total``: what the network's
      own ``sequences_processed`` / ``steps_processed`` counters grew by since the previous
      fold (batches included; counted from ``attach``);
    * the memory-buffer fill ``allele_kraken_memory_size`` when the network processed anything;
    * at most once per ``state_interval_s`` seconds: reservoir state statistics (mean, std and
      max |x| of the last sequence's states, as ``get_network_state()`` reports them), the
      memory consolidations, and the heartbeat. Three reductions over a ``T x reservoir_size``
      array cost several times the rest of the recording, and a once-a-second view of the
      activations is what a dashboard shows. ``state_interval_s=0`` takes them at every fold.

    A batch is recorded as one operation ``batch`` (its latency and success) when it ends.
    A failed sequence or batch is recorded as an error at once.
    """

    component_type = ComponentType.KRAKEN_LNN

    def __init__(
        self,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        metadata: Mapping[str, Any] | None = None,
        state_interval_s: float = 1.0,
    ) -> None:
        if (
            isinstance(state_interval_s, bool)
            or not isinstance(state_interval_s, int | float)
            or not 0 <= state_interval_s < float("inf")
        ):
            raise ValidationError(
                f"state_interval_s must be a finite number of seconds >= 0, "
                f"got {state_interval_s!r}"
            )
        super().__init__(component_id=component_id, engine=engine, metadata=metadata)
        self.state_interval_s = float(state_interval_s)
        collector = self.recorder.collector
        #: Latencies (s) of the sequences processed since the previous fold: the hot path.
        self.latencies: list[float] = []
        self._latency_many = collector.timer(
            LATENCY_METRIC, {**self._labels, "operation": "sequence"}
        ).observe_many
        self._sequence_ok = self._success("sequence")
        self._batch_latency = self._latency("batch")
        self._batch_ok = self._success("batch")
        self._sequences = self._counter(KRAKEN_SEQUENCES)
        self._steps = self._counter(KRAKEN_STEPS)
        self._memory_size = self._gauge(KRAKEN_MEMORY_SIZE)
        self._memory_capacity = self._gauge(KRAKEN_MEMORY_CAPACITY)
        self._consolidations = self._gauge(KRAKEN_CONSOLIDATIONS)
        self._act_mean = self._gauge(KRAKEN_ACTIVATION_MEAN)
        self._act_std = self._gauge(KRAKEN_ACTIVATION_STD)
        self._act_max = self._gauge(KRAKEN_ACTIVATION_MAX_ABS)
        self._next_state = float("-inf")  # perf_counter time of the next state sample
        self._seen_sequences = 0
        self._seen_steps = 0
        self._target: KrakenLNN | None = None

    def attach(self, target: KrakenLNN) -> KrakenMonitor:
        """Record what ``target`` processes from now on; returns self.

        ``KrakenLNN`` has no observer hook, so a plain network gets ``process_sequence`` and
        ``process_batch`` wrapped on the instance (the async variants call them);
        ``ObservableKrakenLNN`` times them in its own methods instead.
        """
        if not isinstance(target, KrakenLNN):
            raise ValidationError(f"target must be a KrakenLNN, got {type(target).__name__}")
        self._target = target
        self._seen_sequences = target.sequences_processed
        self._seen_steps = target.steps_processed
        self.attached = True
        try:
            self._memory_capacity(target.memory_capacity)
        except Exception:
            self._failed("the memory capacity")
        self.recorder.collector.add_fold_hook(self.flush)
        if not isinstance(target, ObservableKrakenLNN):
            self._wrap(target)
        return self

    def _wrap(self, target: KrakenLNN) -> None:
        sequence = type(target).process_sequence.__get__(target)
        batch = type(target).process_batch.__get__(target)
        monitor = self

        def process_sequence(sequence_: object, *, continue_state: bool = False) -> ReservoirResult:
            return monitor.time_sequence(target, sequence, sequence_, continue_state)

        def process_batch(sequences: object) -> BatchResult:
            return monitor.time_batch(target, batch, sequences)

        process_sequence.__doc__ = KrakenLNN.process_sequence.__doc__
        process_batch.__doc__ = KrakenLNN.process_batch.__doc__
        # Instance attributes shadow the class's methods; detach() removes them again.
        target.__dict__["process_sequence"] = process_sequence
        target.__dict__["process_batch"] = process_batch

    def detach(self) -> None:
        """Record what is pending and stop recording; a wrapped plain network gets its own
        methods back."""
        target = self._target
        self.flush()
        self.recorder.collector.remove_fold_hook(self.flush)
        if target is not None and self.attached and not isinstance(target, ObservableKrakenLNN):
            for name in ("process_sequence", "process_batch"):
                target.__dict__.pop(name, None)
        super().detach()

    def time_sequence(
        self,
        target: KrakenLNN,
        run: Callable[..., ReservoirResult],
        sequence: object,
        continue_state: bool,
    ) -> ReservoirResult:
        """Run ``run(sequence, continue_state=...)`` and record its latency (or its error)."""
        if not self.attached:
            return run(sequence, continue_state=continue_state)
        start = time.perf_counter()
        try:
            result = run(sequence, continue_state=continue_state)
        except Exception as exc:
            self._record_error("sequence", exc)
            raise
        self.latencies.append(time.perf_counter() - start)
        return result

    def time_batch(
        self, target: KrakenLNN, run: Callable[[object], BatchResult], sequences: object
    ) -> BatchResult:
        """Run ``run(sequences)`` and record it as one batch operation (or its error)."""
        if not self.attached:
            return run(sequences)
        start = time.perf_counter()
        try:
            result = run(sequences)
        except Exception as exc:
            self._record_error("batch", exc)
            raise
        end = time.perf_counter()
        try:
            self._batch_latency(end - start)
            self._batch_ok(1)
        except Exception:
            self._failed("a batch")
        return result

    def flush(self) -> None:
        """Turn what was processed since the previous call into points (see the class
        docstring). The collector calls it at the start of every fold; never raises."""
        target = self._target
        if target is None or not self.attached:
            return
        try:
            latencies = self.latencies
            n = len(latencies)
            if n:
                # Sequences finishing meanwhile append after index n: kept for the next call.
                taken = latencies[:n]
                del latencies[:n]
                self._latency_many(taken)
                self._sequence_ok(n)
            sequences, steps = target.sequences_processed, target.steps_processed
            if sequences == self._seen_sequences:
                return
            self._sequences(sequences - self._seen_sequences)
            self._steps(steps - self._seen_steps)
            self._seen_sequences, self._seen_steps = sequences, steps
            self._memory_size(len(target.memory))
            now = time.perf_counter()
            if now >= self._next_state:
                self._sample_state(target, now)
        except Exception:
            self._failed("the processed sequences")

    def _sample_state(self, target: KrakenLNN, now: float) -> None:
        self._next_state = now + self.state_interval_s
        state = target.get_network_state()
        self._act_mean(state["mean_activation"])
        self._act_std(state["std_activation"])
        self._act_max(state["max_abs_activation"])
        self._consolidations(state["memory_consolidations"])
        self.recorder.heartbeat()

    def _record_error(self, operation: str, exc: BaseException) -> None:
        try:
            self.recorder.record_error(operation, type(exc).__name__)
        except Exception:
            self._failed("an error")


class ObservableKrakenLNN(KrakenLNN):
    """A ``KrakenLNN`` that records every sequence and batch it processes.

    Same constructor as ``KrakenLNN`` plus ``component_id``, ``engine`` and
    ``state_interval_s`` (see ``KrakenMonitor``). ``monitor`` is its ``KrakenMonitor``.
    """

    def __init__(
        self,
        *args: Any,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        state_interval_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.monitor = KrakenMonitor(
            component_id=component_id,
            engine=engine,
            metadata=_kraken_metadata(self),
            state_interval_s=state_interval_s,
        ).attach(self)
        self._latencies = self.monitor.latencies

    def process_sequence(
        self, sequence: object, *, continue_state: bool = False
    ) -> ReservoirResult:
        """``KrakenLNN.process_sequence``, recorded (latency; memory fill and state statistics
        when the collector folds)."""
        # Inlined rather than through monitor.time_sequence: per sequence this is the whole
        # recording cost (two clock reads and one append).
        if not self.monitor.attached:
            return KrakenLNN.process_sequence(self, sequence, continue_state=continue_state)
        start = time.perf_counter()
        try:
            result = KrakenLNN.process_sequence(self, sequence, continue_state=continue_state)
        except Exception as exc:
            self.monitor._record_error("sequence", exc)
            raise
        self._latencies.append(time.perf_counter() - start)
        return result

    def process_batch(self, sequences: object) -> BatchResult:
        """``KrakenLNN.process_batch``, recorded as one batch operation."""
        return self.monitor.time_batch(self, super().process_batch, sequences)


def _kraken_metadata(kraken: KrakenLNN) -> dict[str, Any]:
    return {
        "reservoir_size": kraken.reservoir_size,
        "connectivity": kraken.connectivity,
        "spectral_radius": kraken.spectral_radius,
        "leak_rate": kraken.leak_rate,
        "temperature": kraken.temperature,
        "input_size": kraken.input_size,
        "memory_capacity": kraken.memory_capacity,
    }


# -- nlp agent -----------------------------------------------------------------------------------
class AgentMonitor(ComponentMonitor):
    """Records each request of an ``NLPAgent`` from the ``RequestRecord`` its listeners get."""

    component_type = ComponentType.NLP_AGENT

    def __init__(
        self,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(component_id=component_id, engine=engine, metadata=metadata)
        self._request_latency = self._latency("request")
        self._request_ok = self._success("request")
        self._tokens_in = self._counter(AGENT_TOKENS, direction="in")
        self._tokens_out = self._counter(AGENT_TOKENS, direction="out")
        self._ttft = self._timer(AGENT_TTFT)
        self._rate = self.recorder.collector.distribution(AGENT_TOKENS_PER_SECOND, self._labels)
        self._target: NLPAgent | None = None

    def attach(self, target: NLPAgent) -> AgentMonitor:
        """Record every request ``target`` makes from now on; returns self."""
        if not isinstance(target, NLPAgent):
            raise ValidationError(f"target must be an NLPAgent, got {type(target).__name__}")
        target.add_listener(self.on_request)
        self._target = target
        self.attached = True
        return self

    def detach(self) -> None:
        """Stop recording requests of the attached agent."""
        if self._target is not None:
            self._target.remove_listener(self.on_request)
        super().detach()

    def on_request(self, record: RequestRecord) -> None:
        """Record one finished request (the agent's listener)."""
        try:
            self._request_latency(record.latency_s)
            if record.ok:
                self._request_ok(1)
            else:
                self.recorder.record_error("request", record.error_kind or "unknown")
            self._tokens_in(record.tokens_in)
            self._tokens_out(record.tokens_out)
            if record.ttft_s is not None:
                self._ttft(record.ttft_s)
            rate = record.tokens_per_second
            if rate is not None:
                self._rate.observe(rate)
            self.recorder.heartbeat()
        except Exception:
            self._failed("a request")


class ObservableNLPAgent(NLPAgent):
    """An ``NLPAgent`` that records every request: latency, tokens, errors by kind.

    Same constructor as ``NLPAgent`` plus ``component_id`` and ``engine``. ``monitor`` is its
    ``AgentMonitor``.
    """

    def __init__(
        self,
        genome: ConversationalGenome,
        config: AgentConfig,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(genome, config, **kwargs)
        self.monitor = AgentMonitor(
            component_id=component_id,
            engine=engine,
            metadata={
                "provider": self.provider_name,
                "model": config.model,
                "synthetic": self.synthetic,
            },
        ).attach(self)


# -- observe() and the factories -----------------------------------------------------------------
_OBSERVABLE = "EvolutionEngine, KrakenLNN, NLPAgent"
#: Where observe() leaves the monitor of a plain workload object, so it is not attached twice.
_MONITOR_ATTR = "_allele_monitor"


def observe(
    component: object,
    *,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
) -> ComponentMonitor:
    """Attach the right monitor to ``component`` and return it.

    ``EvolutionEngine`` -> ``EvolutionMonitor``, ``KrakenLNN`` -> ``KrakenMonitor``,
    ``NLPAgent`` -> ``AgentMonitor``. An ``Observable*`` object already has one: its
    ``monitor`` is returned. Anything else raises ``ValidationError`` naming its type.
    """
    if isinstance(component, ObservableEvolutionEngine | ObservableKrakenLNN | ObservableNLPAgent):
        return component.monitor
    existing = getattr(component, _MONITOR_ATTR, None)
    if isinstance(existing, ComponentMonitor) and existing.attached:
        return existing  # observing twice would count everything twice
    monitor: ComponentMonitor
    if isinstance(component, EvolutionEngine):
        monitor = EvolutionMonitor(
            component_id=component_id, engine=engine, metadata=component.config.to_dict()
        ).attach(component)
    elif isinstance(component, KrakenLNN):
        monitor = KrakenMonitor(
            component_id=component_id, engine=engine, metadata=_kraken_metadata(component)
        ).attach(component)
    elif isinstance(component, NLPAgent):
        monitor = AgentMonitor(
            component_id=component_id,
            engine=engine,
            metadata={
                "provider": component.provider_name,
                "model": component.config.model,
                "synthetic": component.synthetic,
            },
        ).attach(component)
    else:
        kind = type(component)
        raise ValidationError(
            f"cannot observe a {kind.__module__}.{kind.__qualname__}; observable components: "
            f"{_OBSERVABLE}"
        )
    setattr(component, _MONITOR_ATTR, monitor)
    return monitor


def create_observable_evolution_engine(
    config: EvolutionConfig | None = None,
    *,
    callback: Callback | None = None,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
) -> ObservableEvolutionEngine:
    """An ``ObservableEvolutionEngine`` for ``config`` (default settings when None)."""
    return ObservableEvolutionEngine(
        config, callback=callback, component_id=component_id, engine=engine
    )


def create_observable_kraken_lnn(
    *args: Any,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
    state_interval_s: float = 1.0,
    **kwargs: Any,
) -> ObservableKrakenLNN:
    """An ``ObservableKrakenLNN``; the arguments are ``KrakenLNN``'s (reservoir_size, ...)."""
    return ObservableKrakenLNN(
        *args,
        component_id=component_id,
        engine=engine,
        state_interval_s=state_interval_s,
        **kwargs,
    )


def create_observable_nlp_agent(
    genome: ConversationalGenome,
    config: AgentConfig,
    *,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
    **kwargs: Any,
) -> ObservableNLPAgent:
    """An ``ObservableNLPAgent`` for ``genome`` and ``config`` (``kwargs`` go to ``NLPAgent``:
    ``transport``, ``provider``, ``sleep``)."""
    return ObservableNLPAgent(genome, config, component_id=component_id, engine=engine, **kwargs)


# -- setup and teardown --------------------------------------------------------------------------
async def setup_observability_monitoring(
    engine: ObservabilityEngine | None = None,
) -> ObservabilityEngine:
    """Start the observability engine (default: the process-wide one) and return it.

    Background sampling, alert evaluation and, when a store is configured
    (``ALLELE_STORE_URI``), persistence start here; starting a running engine does nothing.
    With ``ALLELE_ANOMALY_SERIES`` set, live anomaly detection watches those series
    (``ml_analytics.anomaly.live``).
    """
    target = engine if engine is not None else get_observability_engine()
    started = await target.astart()
    # Live anomaly detection over the series $ALLELE_ANOMALY_SERIES names (off when unset),
    # attached from here so that the core never loads ml_analytics.
    if os.environ.get("ALLELE_ANOMALY_SERIES", "").strip():
        from allele.observability.ml_analytics.anomaly.live import attach_live_detection

        attach_live_detection(target)
    return started


async def teardown_observability_monitoring(engine: ObservabilityEngine | None = None) -> None:
    """Stop the observability engine (default: the process-wide one), flushing what it holds
    to the store. Recording into it stays possible; it is simply no longer sampled."""
    target = engine if engine is not None else get_observability_engine()
    await target.astop()


__all__ = [
    "AgentMonitor",
    "ComponentMonitor",
    "EvolutionMonitor",
    "KrakenMonitor",
    "ObservableEvolutionEngine",
    "ObservableKrakenLNN",
    "ObservableNLPAgent",
    "create_observable_evolution_engine",
    "create_observable_kraken_lnn",
    "create_observable_nlp_agent",
    "observe",
    "setup_observability_monitoring",
    "teardown_observability_monitoring",
]
