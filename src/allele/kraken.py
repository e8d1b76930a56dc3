"""KrakenLNN: a liquid neural network -- a leaky echo-state reservoir with a ridge readout.

State update, for input ``u(t)`` (length ``input_size``) and state ``x(t)`` (``reservoir_size``):

    x(t) = (1 - a) x(t-1) + a tanh( (W x(t-1) + W_in u(t) + b + noise * xi(t)) / T )

* ``W`` is a sparse random recurrent matrix (``connectivity`` = fraction of non-zero weights,
  normal entries) rescaled so its spectral radius equals ``spectral_radius`` exactly (largest
  eigenvalue modulus computed with LAPACK for small reservoirs, ARPACK otherwise);
* ``W_in`` has uniform entries in ``[-input_scaling, input_scaling]``, ``b`` uniform entries in
  ``[-bias_scaling, bias_scaling]`` (0 by default);
* ``a`` is ``leak_rate`` (1 = no leak, small = slow, smooth "liquid" dynamics);
* ``xi(t)`` is standard normal noise drawn from the network's seeded generator;
* ``T`` is ``temperature``: it divides the pre-activation before ``tanh``. ``T > 1`` keeps the
  units in tanh's near-linear range (softer, more linear dynamics, longer linear memory but
  also an effective spectral radius of ``spectral_radius / T``); ``T < 1`` sharpens the units
  towards saturation (more nonlinear, shorter memory). ``T = 1`` is the classic echo-state net.

The recurrent product ``W x`` dominates a step (about 80% of it at 1000 units), so each network
uses whichever of a dense gemv and a CSR matvec its size and connectivity make cheaper; see
:func:`prefers_sparse` for the cost model and the measurements behind it. The choice is a fixed
function of the parameters, never timed at run time, so equal seeds still give bit-identical
states.

Every processed sequence leaves a trace (its final state) in a temporal memory buffer of
``memory_capacity`` entries; see :class:`TemporalMemory` for the consolidation policy.
"""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from allele.errors import ConfigurationError, ValidationError, check_int, check_real

# Cost model of one recurrent product on one core, in microseconds (see prefers_sparse).
_CSR_CALL_US, _CSR_PER_NNZ_US = 2.5, 0.0005
_DENSE_CALL_US, _DENSE_IN_CACHE_US, _DENSE_OUT_OF_CACHE_US = 1.0, 0.0001, 0.00028
_DENSE_CACHE_BYTES = 2 * 1024 * 1024
#: Reservoirs up to this size get their spectral radius from dense LAPACK eigenvalues; larger
#: ones from ARPACK (dense eig costs 0.5 s at 1000 units on one idle core, far more when busy).
DENSE_EIG_UP_TO = 400
#: ``aprocess_sequence`` runs inline below this many unit-steps (thread hand-off costs more).
INLINE_WORK = 20_000


def prefers_sparse(n: int, nnz: int) -> bool:
    """True when a CSR matvec of an ``n x n`` matrix with ``nnz`` non-zeros beats dense gemv.

    Measured on one core (``np.dot(x, W.T, out=)`` vs ``csr @ x``, then adding the drive): CSR
    costs about 2.5 us of call overhead plus 0.5 ns per non-zero whatever the size; dense gemv
    costs about 1 us plus 0.1 ns per entry while the matrix fits in cache (n <= 512) and
    0.28 ns beyond. So at connectivity 0.1, 100 units stay dense (2.0 vs 3.0 us) and 400 and
    1000 units go sparse (10 vs 19 us, 44 vs 280 us); at connectivity 0.3, 400 units stay dense
    (11 vs 22 us), and a fully connected 1000-unit reservoir is dense (282 vs 549 us).
    """
    per_entry = _DENSE_IN_CACHE_US if n * n * 8 <= _DENSE_CACHE_BYTES else _DENSE_OUT_OF_CACHE_US
    dense = _DENSE_CALL_US + per_entry * n * n
    return _CSR_CALL_US + _CSR_PER_NNZ_US * nnz < dense


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


# -- temporal memory -------------------------------------------------------------------------
@dataclass
class MemoryTrace:
    """One entry of the temporal memory: the (count-weighted mean) final state of the
    sequences it stands for, the range of their sequence numbers and when it was written."""

    vector: np.ndarray
    count: int
    first_sequence: int
    last_sequence: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the trace."""
        return {
            "vector": self.vector.tolist(),
            "count": self.count,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    squared = float(a @ a) * float(b @ b)
    if squared == 0.0:
        # Two silent states are identical; a silent and an active one are unrelated.
        return 1.0 if not a.any() and not b.any() else 0.0
    return float(a @ b) / math.sqrt(squared)


class TemporalMemory:
    """A time-ordered buffer of at most ``capacity`` memory traces.

    Consolidation policy: a new trace is appended at the end; when that makes the buffer
    exceed ``capacity``, the two *adjacent* traces with the highest cosine similarity are
    merged into one (vector = count-weighted mean, count = sum, sequence range = union; the
    earliest ``created_at`` is kept). Time order is preserved, redundant stretches are
    compressed and distinct episodes survive. Ties go to the oldest pair. Adjacent
    similarities are cached and only the neighbours of a merge are recomputed, so a write costs
    O(capacity + reservoir_size). ``capacity = 0`` disables the buffer.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_int("memory_capacity", capacity, 0, 1_000_000)
        self._traces: list[MemoryTrace] = []
        # _similarity[i] = cos(trace i, trace i + 1) for the first len - 1 slots; a fixed
        # array so that finding the best pair is one argmax, not a list conversion.
        self._similarity = np.empty(self.capacity + 1)
        self.consolidations = 0

    def __len__(self) -> int:
        return len(self._traces)

    def add(self, vector: np.ndarray, sequence: int) -> None:
        """Record the trace of sequence number ``sequence``; consolidate when over capacity."""
        if self.capacity == 0:
            return
        now = datetime.now(UTC)
        trace = MemoryTrace(np.array(vector, dtype=float), 1, sequence, sequence, now, now)
        if self._traces:
            self._similarity[len(self._traces) - 1] = _cosine(self._traces[-1].vector, trace.vector)
        self._traces.append(trace)
        if len(self._traces) > self.capacity:
            self._merge(int(np.argmax(self._similarity[: len(self._traces) - 1])))

    def _merge(self, i: int) -> None:
        a, b = self._traces[i], self._traces[i + 1]
        total = a.count + b.count
        a.vector = (a.vector * a.count + b.vector * b.count) / total
        a.count = total
        a.last_sequence = b.last_sequence
        a.updated_at = max(a.updated_at, b.updated_at)
        pairs = len(self._traces) - 1  # similarities before the merge
        del self._traces[i + 1]
        sim = self._similarity
        sim[i : pairs - 1] = sim[i + 1 : pairs]  # drop slot i (the merged pair)
        if i > 0:
            sim[i - 1] = _cosine(self._traces[i - 1].vector, a.vector)
        if i < pairs - 1:
            sim[i] = _cosine(a.vector, self._traces[i + 1].vector)
        self.consolidations += 1

    def traces(self) -> list[MemoryTrace]:
        """Copies of the traces, oldest first."""
        return [
            MemoryTrace(
                t.vector.copy(),
                t.count,
                t.first_sequence,
                t.last_sequence,
                t.created_at,
                t.updated_at,
            )
            for t in self._traces
        ]

    def recall(self, state: np.ndarray, k: int = 1) -> list[MemoryTrace]:
        """Copies of the ``k`` traces most similar (cosine) to ``state``, best first."""
        check_int("k", k, 1, 1_000_000)
        query = np.asarray(state, dtype=float)
        ranked = sorted(
            range(len(self._traces)), key=lambda i: -_cosine(self._traces[i].vector, query)
        )
        copies = self.traces()
        return [copies[i] for i in ranked[:k]]

    def clear(self) -> None:
        """Forget every trace."""
        self._traces.clear()


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


# -- numerics --------------------------------------------------------------------------------
def _float_array(value: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be an array of numbers, got {value!r:.80}") from exc
    if not np.isfinite(arr).all():
        raise ValidationError(f"{name} contains NaN or infinite values")
    return arr


def _spectral_radius(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int) -> float:
    """Largest eigenvalue modulus of the sparse matrix given by (rows, cols, data)."""
    if n <= DENSE_EIG_UP_TO:
        dense = np.zeros((n, n))
        dense[rows, cols] = data
        return float(np.abs(np.linalg.eigvals(dense)).max())
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    matrix = csr_matrix((data, (rows, cols)), shape=(n, n))
    # Several eigenvalues, not one, and a fixed start vector so the result is reproducible.
    # A wide Krylov space (ncv=80) matters: the spectrum of a random matrix fills a disc, so
    # many eigenvalues share nearly the largest modulus and a narrow one can miss the top.
    start = np.random.default_rng(n).standard_normal(n)
    try:
        values = eigs(
            matrix, k=8, ncv=min(n - 1, 80), which="LM", tol=1e-14, maxiter=50 * n, v0=start,
            return_eigenvectors=False,
        )  # fmt: skip
    except ArpackNoConvergence:  # rare; the dense route is slow but exact
        return float(np.abs(np.linalg.eigvals(matrix.toarray())).max())
    return float(np.abs(values).max())


def _ridge(states: np.ndarray, targets: np.ndarray, lam: float) -> np.ndarray:
    """Readout ``(1 + n) x k``: row 0 the bias, then the weights; the bias is not penalised."""
    features = np.hstack([np.ones((len(states), 1)), states])
    gram = features.T @ features
    penalty = np.full(len(gram), lam)
    penalty[0] = 0.0
    gram[np.diag_indices_from(gram)] += penalty
    from scipy.linalg import solve

    return np.asarray(solve(gram, features.T @ targets, assume_a="pos"))


# -- quality ---------------------------------------------------------------------------------
def memory_capacity_profile(
    kraken: KrakenLNN,
    *,
    max_delay: int | None = None,
    n_train: int = 2000,
    n_test: int = 1000,
    washout: int | None = None,
    ridge: float = 1e-5,
    seed: int = 0,
) -> np.ndarray:
    """Jaeger's linear memory capacity per delay: for k = 1..max_delay, the squared
    correlation between ``u(t-k)`` and a ridge readout trained to recall it.

    Input ``u`` is i.i.d. uniform in [-0.5, 0.5] on input channel 0 (other channels zero).
    Readouts for all delays are trained together on ``n_train`` steps and scored on the next
    ``n_test``. The network's weights are used as they are; its readout, memory buffer and
    counters are left untouched. ``max_delay`` defaults to ``2 * reservoir_size`` (capacity
    cannot exceed the reservoir size, so later delays only add estimation noise).
    ``ridge`` is added to the diagonal of the raw Gram matrix: 1e-5 keeps the score rising with
    reservoir size both for saturated (default) and near-linear reservoirs, where 1e-8 let a
    500-unit default reservoir overfit its 2000 training steps and score below a 100-unit one.
    """
    n = kraken.reservoir_size
    k_max = 2 * n if max_delay is None else check_int("max_delay", max_delay, 1, 100_000)
    skip = max(100, k_max) if washout is None else check_int("washout", washout, 0, 10**7)
    skip = max(skip, k_max)  # every target u(t - k) must exist
    check_int("n_train", n_train, n + 2, 10**7)
    check_int("n_test", n_test, 10, 10**7)
    rng = np.random.default_rng(seed)
    length = skip + n_train + n_test
    u = rng.uniform(-0.5, 0.5, length)
    inputs = np.zeros((length, kraken.input_size))
    inputs[:, 0] = u
    states = kraken._drive(inputs, np.zeros(n), rng)
    delays = np.arange(1, k_max + 1)
    t_idx = np.arange(skip, length)
    targets = u[t_idx[:, None] - delays[None, :]]  # (steps, k_max)
    train, test = slice(0, n_train), slice(n_train, None)
    readout = _ridge(states[t_idx][train], targets[train], check_real("ridge", ridge, 0.0, 1e6))
    predicted = states[t_idx][test] @ readout[1:] + readout[0]
    return _squared_correlation(predicted, targets[test])


def memory_capacity_score(kraken: KrakenLNN, **options: Any) -> float:
    """Jaeger's linear memory capacity (sum over delays of the squared recall correlation);
    options as in :func:`memory_capacity_profile`. Bounded by ``reservoir_size``."""
    return float(memory_capacity_profile(kraken, **options).sum())


def _squared_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (a * b).sum(axis=0) / denom, 0.0)
    return np.asarray(r * r)
