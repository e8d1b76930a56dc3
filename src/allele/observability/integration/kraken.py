"""The Kraken monitor: each sequence (and batch) a ``KrakenLNN`` processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from allele.errors import ValidationError
from allele.kraken import BatchResult, KrakenLNN, ReservoirResult
from allele.observability.engine import ObservabilityEngine
from allele.observability.integration.base import ComponentMonitor
from allele.observability.metric_names import (
    KRAKEN_ACTIVATION_MAX_ABS,
    KRAKEN_ACTIVATION_MEAN,
    KRAKEN_ACTIVATION_STD,
    KRAKEN_CONSOLIDATIONS,
    KRAKEN_MEMORY_CAPACITY,
    KRAKEN_MEMORY_SIZE,
    KRAKEN_SEQUENCES,
    KRAKEN_STEPS,
    LATENCY_METRIC,
)
from allele.observability.types import ComponentType


class KrakenMonitor(ComponentMonitor):
    """Records each sequence (and batch) a ``KrakenLNN`` processes.

    The processing thread pays one ``list.append`` per sequence: its latency (two
    ``perf_counter`` reads around the call). Everything else is derived in bulk when the
    engine ticks (``push()``, before the tick's fold), from the latencies taken since the
    previous tick and from the network itself:

    * the latencies (timer of operation ``sequence``, stamped with the fold's time like every
      timer observation) and as many successes;
    * ``allele_kraken_sequences_total`` and ``allele_kraken_steps_total``: what the network's
      own ``sequences_processed`` / ``steps_processed`` counters grew by since the previous
      tick (batches included; counted from ``attach``);
    * the memory-buffer fill ``allele_kraken_memory_size`` when the network processed anything;
    * at most once per ``state_interval_s`` seconds: reservoir state statistics (mean, std and
      max |x| of the last sequence's states, as ``get_network_state()`` reports them), the
      memory consolidations, and the heartbeat. Three reductions over a ``T x reservoir_size``
      array cost several times the rest of the recording, and a once-a-second view of the
      activations is what a dashboard shows. ``state_interval_s=0`` takes them at every tick.

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
        self._push_lock = threading.Lock()

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
        self.engine.add_recorder(self.push)
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
        wrapped = target is not None and self.attached
        super().detach()
        if wrapped and not isinstance(target, ObservableKrakenLNN):
            for name in ("process_sequence", "process_batch"):
                target.__dict__.pop(name, None)

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

    def push(self) -> None:
        """Turn what was processed since the previous call into points (see the class
        docstring). The engine calls it on every tick, before the fold; never raises."""
        target = self._target
        if target is None or not self.attached:
            return
        with self._push_lock:  # a tick and an explicit flush may push at once
            self._push(target)

    def _push(self, target: KrakenLNN) -> None:
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
            metadata=kraken_metadata(self),
            state_interval_s=state_interval_s,
        ).attach(self)
        self._latencies = self.monitor.latencies

    def process_sequence(
        self, sequence: object, *, continue_state: bool = False
    ) -> ReservoirResult:
        """``KrakenLNN.process_sequence``, recorded (latency; memory fill and state statistics
        on the engine's next tick)."""
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


def kraken_metadata(kraken: KrakenLNN) -> dict[str, Any]:
    return {
        "reservoir_size": kraken.reservoir_size,
        "connectivity": kraken.connectivity,
        "spectral_radius": kraken.spectral_radius,
        "leak_rate": kraken.leak_rate,
        "temperature": kraken.temperature,
        "input_size": kraken.input_size,
        "memory_capacity": kraken.memory_capacity,
    }
