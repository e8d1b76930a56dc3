"""``KrakenLNN``: the reservoir itself (weights, state updates, single and batched sequences,
the readout's fit and predict) and what processing returns."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from allele.errors import ConfigurationError, ValidationError, check_int, check_real
from allele.kraken.memory import TemporalMemory
from allele.kraken.numerics import (
    INLINE_WORK,
    _float_array,
    _ridge,
    _spectral_radius,
    prefers_sparse,
)


# -- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReservoirResult:
    """One processed sequence: ``states`` (T x reservoir_size), the ``final_state`` and, when a
    readout is fitted, ``outputs`` (T x n_outputs)."""

    states: np.ndarray
    final_state: np.ndarray
    outputs: np.ndarray | None

    @property
    def steps(self) -> int:
        """Number of time steps processed."""
        return len(self.states)


@dataclass(frozen=True)
class BatchResult:
    """A processed batch: ``states`` (B x T x reservoir_size), ``final_states`` (B x size) and,
    when a readout is fitted, ``outputs`` (B x T x n_outputs)."""

    states: np.ndarray
    final_states: np.ndarray
    outputs: np.ndarray | None


# -- the network -----------------------------------------------------------------------------
class KrakenLNN:
    """A liquid (leaky echo-state) reservoir with batched processing, a ridge readout and a
    temporal memory buffer. Same parameters and ``seed`` -> identical weights and results.

    >>> k = KrakenLNN(reservoir_size=50, seed=0)
    >>> k.process_sequence(np.sin(np.linspace(0, 3, 20))).states.shape
    (20, 50)
    """

    def __init__(
        self,
        reservoir_size: int = 100,
        connectivity: float = 0.1,
        spectral_radius: float = 0.95,
        input_scaling: float = 1.0,
        leak_rate: float = 0.3,
        noise: float = 0.0,
        temperature: float = 1.0,
        seed: int | None = None,
        input_size: int = 1,
        memory_capacity: int = 1000,
        bias_scaling: float = 0.0,
    ) -> None:
        self.reservoir_size = check_int("reservoir_size", reservoir_size, 1, 100_000)
        self.connectivity = check_real("connectivity", connectivity, 0.0, 1.0, low_open=True)
        self.spectral_radius = check_real(
            "spectral_radius", spectral_radius, 0.0, 10.0, low_open=True
        )
        self.input_scaling = check_real("input_scaling", input_scaling, 0.0, 100.0, low_open=True)
        self.leak_rate = check_real("leak_rate", leak_rate, 0.0, 1.0, low_open=True)
        self.noise = check_real("noise", noise, 0.0, 10.0)
        self.temperature = check_real("temperature", temperature, 0.0, 100.0, low_open=True)
        self.seed = None if seed is None else check_int("seed", seed, 0, 2**63 - 1)
        self.input_size = check_int("input_size", input_size, 1, 100_000)
        self.memory_capacity = check_int("memory_capacity", memory_capacity, 0, 1_000_000)
        self.bias_scaling = check_real("bias_scaling", bias_scaling, 0.0, 100.0)

        self._rng = np.random.default_rng(self.seed)
        self._build_weights()
        self.memory = TemporalMemory(self.memory_capacity)
        self.readout_: np.ndarray | None = None
        self.state_ = np.zeros(self.reservoir_size)
        self.sequences_processed = 0
        self.steps_processed = 0
        self._last_states: np.ndarray | None = None
        self._lock = threading.Lock()

    # -- weights --------------------------------------------------------------------------------
    def _build_weights(self) -> None:
        n, rng = self.reservoir_size, self._rng
        nnz = max(1, round(self.connectivity * n * n))
        for _ in range(20):
            flat = rng.choice(n * n, size=nnz, replace=False)
            data = rng.standard_normal(nnz)
            rows, cols = np.divmod(flat, n)
            radius = _spectral_radius(rows, cols, data, n)
            if radius > 1e-9:
                break
        else:  # every draw was nilpotent (no cycle through the sparse graph)
            raise ConfigurationError(
                f"connectivity={self.connectivity} is too low for reservoir_size={n}: the "
                "recurrent weights have no cycle; raise connectivity or reservoir_size"
            )
        factor = self.spectral_radius / radius
        data *= factor
        # Eigenvalues scale linearly with the matrix, so the radius is now exactly the target
        # up to rounding; the tests check it against an independent eigen-decomposition.
        self.measured_spectral_radius = radius * factor
        self.density = nnz / (n * n)
        # Folding 1/T into the weights saves one multiply per step.
        scale = 1.0 / self.temperature
        self._sparse = prefers_sparse(n, nnz)
        if self._sparse:
            from scipy.sparse import csr_matrix

            self._w: Any = csr_matrix((data * scale, (rows, cols)), shape=(n, n))
        else:
            dense_t = np.zeros((n, n))
            dense_t[cols, rows] = data * scale  # transposed: states are row vectors
            self._w = dense_t
        self._w_in_t = rng.uniform(-1.0, 1.0, (self.input_size, n)) * (self.input_scaling * scale)
        self._bias = rng.uniform(-1.0, 1.0, n) * (self.bias_scaling * scale)

    @property
    def recurrent_weights(self) -> np.ndarray:
        """The recurrent matrix ``W`` (dense copy, before temperature scaling)."""
        w = self._w.toarray() if self._sparse else self._w.T.copy()
        return w * self.temperature

    @property
    def input_weights(self) -> np.ndarray:
        """The input matrix ``W_in`` (reservoir_size x input_size, before temperature scaling)."""
        return self._w_in_t.T * self.temperature

    # -- input checks ---------------------------------------------------------------------------
    def _sequence(self, seq: object, name: str = "sequence") -> np.ndarray:
        arr = _float_array(seq, name)
        if arr.ndim == 1 and self.input_size == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.input_size or len(arr) == 0:
            raise ValidationError(
                f"{name} must have shape (T, {self.input_size}) with T >= 1"
                + (" or (T,)" if self.input_size == 1 else "")
                + f", got {arr.shape}"
            )
        return arr

    def _batch(self, sequences: object, name: str = "sequences") -> np.ndarray:
        arr = _float_array(sequences, name)
        if arr.ndim == 2 and self.input_size == 1:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] != self.input_size or 0 in arr.shape:
            raise ValidationError(
                f"{name} must be equal-length sequences of shape (B, T, {self.input_size})"
                + (" or (B, T)" if self.input_size == 1 else "")
                + f" with B, T >= 1, got {arr.shape}"
            )
        return arr

    # -- dynamics -------------------------------------------------------------------------------
    def _drive(self, inputs: np.ndarray, x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """States for ``inputs`` of shape (T, in) or (B, T, in) from initial state ``x0``."""
        # One 2-D gemm: a batched 3-D matmul would bypass BLAS.
        flat = inputs.reshape(-1, self.input_size) @ self._w_in_t
        drive = flat.reshape(*inputs.shape[:-1], self.reservoir_size)
        drive += self._bias
        if self.noise:
            drive += rng.standard_normal(drive.shape) * (self.noise / self.temperature)
        if drive.ndim == 2:
            return self._loop_single(drive, x0)
        return self._loop_batch(drive, x0)

    def _loop_single(self, drive: np.ndarray, x0: np.ndarray) -> np.ndarray:
        states = np.empty_like(drive)
        a, w, sparse = self.leak_rate, self._w, self._sparse
        prev = x0
        for t in range(len(drive)):
            row = states[t]
            if sparse:
                np.add(w @ prev, drive[t], out=row)
            else:
                np.dot(prev, w, out=row)
                row += drive[t]
            np.tanh(row, out=row)
            if a != 1.0:  # x = prev + a (tanh(.) - prev)
                row -= prev
                row *= a
                row += prev
            prev = row
        return states

    def _loop_batch(self, drive: np.ndarray, x0: np.ndarray) -> np.ndarray:
        b, steps, n = drive.shape
        states = np.empty((b, steps, n))
        a, w, sparse = self.leak_rate, self._w, self._sparse
        # Two contiguous buffers swapped each step: BLAS gemm needs contiguous operands, and a
        # strided view into ``states`` would send np.dot down a slow generic loop.
        prev = np.empty((b, n))
        prev[:] = x0
        x = np.empty((b, n))
        for t in range(steps):
            if sparse:
                np.add((w @ prev.T).T, drive[:, t], out=x)
            else:
                np.dot(prev, w, out=x)
                x += drive[:, t]
            np.tanh(x, out=x)
            if a != 1.0:
                x -= prev
                x *= a
                x += prev
            states[:, t] = x
            prev, x = x, prev
        return states

    def _outputs(self, states: np.ndarray) -> np.ndarray | None:
        if self.readout_ is None:
            return None
        return states @ self.readout_[1:] + self.readout_[0]

    # -- processing -----------------------------------------------------------------------------
    def process_sequence(
        self, sequence: object, *, continue_state: bool = False
    ) -> ReservoirResult:
        """Run one sequence (shape ``(T, input_size)``, or ``(T,)`` when ``input_size == 1``)
        through the reservoir from the zero state (or from the last final state when
        ``continue_state``); records its final state in the temporal memory."""
        inputs = self._sequence(sequence)
        with self._lock:
            x0 = self.state_ if continue_state else np.zeros(self.reservoir_size)
            states = self._drive(inputs, x0, self._rng)
            final = states[-1].copy()
            self.state_ = final
            self._last_states = states
            self.memory.add(final, self.sequences_processed)
            self.sequences_processed += 1
            self.steps_processed += len(states)
        # The caller gets its own arrays; the network keeps its copy for get_network_state().
        return ReservoirResult(states.copy(), final.copy(), self._outputs(states))

    async def aprocess_sequence(
        self, sequence: object, *, continue_state: bool = False
    ) -> ReservoirResult:
        """``process_sequence`` for async callers: long sequences / large reservoirs run in a
        worker thread so the event loop is not blocked; tiny ones run inline."""
        inputs = self._sequence(sequence)
        if len(inputs) * self.reservoir_size < INLINE_WORK:
            return self.process_sequence(inputs, continue_state=continue_state)
        return await asyncio.to_thread(self.process_sequence, inputs, continue_state=continue_state)

    process_sequence_async = aprocess_sequence

    def process_batch(self, sequences: object) -> BatchResult:
        """Run ``B`` equal-length sequences (shape ``(B, T, input_size)``) in one vectorised
        pass, each from the zero state; records each final state in the temporal memory."""
        inputs = self._batch(sequences)
        with self._lock:
            states = self._drive(inputs, np.zeros(self.reservoir_size), self._rng)
            finals = states[:, -1].copy()
            self.state_ = finals[-1].copy()
            self._last_states = states
            for final in finals:
                self.memory.add(final, self.sequences_processed)
                self.sequences_processed += 1
            self.steps_processed += states.shape[0] * states.shape[1]
        return BatchResult(states.copy(), finals.copy(), self._outputs(states))

    async def aprocess_batch(self, sequences: object) -> BatchResult:
        """``process_batch`` in a worker thread."""
        return await asyncio.to_thread(self.process_batch, sequences)

    # -- readout --------------------------------------------------------------------------------
    def fit(
        self, inputs: object, targets: object, *, washout: int = 0, ridge: float = 1e-6
    ) -> KrakenLNN:
        """Train the linear readout by ridge regression on the reservoir states; returns self.

        ``inputs``: one sequence ``(T, input_size)`` or a batch ``(B, T, input_size)``;
        ``targets``: ``(T,)``/``(T, k)`` or ``(B, T)``/``(B, T, k)``. The first ``washout`` steps
        of each sequence are dropped (initial transient). The readout is
        ``y = W_out [1; x]``; the bias is not penalised. Training does not touch the memory
        buffer or the processing counters.
        """
        x, batched = self._inputs_any(inputs)
        y = _float_array(targets, "targets")
        steps = x.shape[1] if batched else x.shape[0]
        expected = x.shape[:2] if batched else x.shape[:1]
        if y.shape[: len(expected)] != expected or y.ndim not in (len(expected), len(expected) + 1):
            raise ValidationError(
                f"targets must have shape {expected} or {(*expected, 'k')}, got {y.shape}"
            )
        check_int("washout", washout, 0, steps - 1)
        lam = check_real("ridge", ridge, 0.0, 1e6)
        rng = np.random.default_rng(None if self.seed is None else self.seed + 1)
        states = self._drive(x, np.zeros(self.reservoir_size), rng)
        if y.ndim == len(expected):
            y = y[..., None]
        s = states[:, washout:].reshape(-1, self.reservoir_size) if batched else states[washout:]
        t = y[:, washout:].reshape(-1, y.shape[-1]) if batched else y[washout:]
        self.readout_ = _ridge(s, t, lam)
        self.n_outputs_ = y.shape[-1]
        return self

    def predict(self, inputs: object) -> np.ndarray:
        """Readout outputs for ``inputs`` (one sequence -> ``(T, k)``, a batch -> ``(B, T, k)``),
        run from the zero state without touching memory or counters."""
        if self.readout_ is None:
            raise ValidationError("the readout is not fitted; call fit(inputs, targets) first")
        x, _ = self._inputs_any(inputs)
        rng = np.random.default_rng(None if self.seed is None else self.seed + 2)
        states = self._drive(x, np.zeros(self.reservoir_size), rng)
        outputs = self._outputs(states)
        assert outputs is not None
        return outputs

    def _inputs_any(self, inputs: object) -> tuple[np.ndarray, bool]:
        arr = _float_array(inputs, "inputs")
        batched = arr.ndim == 3 or (arr.ndim == 2 and self.input_size == 1 and arr.shape[1] > 1)
        if arr.ndim == 2 and self.input_size == 1 and arr.shape[1] == 1:
            batched = False
        return (
            (self._batch(arr, "inputs"), True)
            if batched
            else (self._sequence(arr, "inputs"), False)
        )

    # -- state ----------------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Set the carried-over state (used by ``continue_state=True``) back to zero."""
        with self._lock:
            self.state_ = np.zeros(self.reservoir_size)

    def get_network_state(self) -> dict[str, Any]:
        """Statistics of the network: activations of the last processed sequence or batch
        (mean, std, max |x|), weights, memory buffer fill and processing counters."""
        states = self._last_states
        if states is None or states.size == 0:
            mean = std = max_abs = 0.0
        else:
            mean, std = float(states.mean()), float(states.std())
            max_abs = float(np.abs(states).max())
        return {
            "reservoir_size": self.reservoir_size,
            "input_size": self.input_size,
            "connectivity": self.density,
            "spectral_radius": self.measured_spectral_radius,
            "leak_rate": self.leak_rate,
            "temperature": self.temperature,
            "noise": self.noise,
            "sparse": self._sparse,
            "mean_activation": mean,
            "std_activation": std,
            "max_abs_activation": max_abs,
            "memory_size": len(self.memory),
            "memory_capacity": self.memory_capacity,
            "memory_consolidations": self.memory.consolidations,
            "sequences_processed": self.sequences_processed,
            "steps_processed": self.steps_processed,
            "readout_fitted": self.readout_ is not None,
        }

    def __repr__(self) -> str:
        return (
            f"KrakenLNN(reservoir_size={self.reservoir_size}, connectivity={self.connectivity}, "
            f"spectral_radius={self.spectral_radius}, leak_rate={self.leak_rate}, "
            f"temperature={self.temperature}, seed={self.seed})"
        )
