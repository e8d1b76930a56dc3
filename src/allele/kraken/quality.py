"""How much of its past input the reservoir remembers: the memory-capacity profile and score."""

from __future__ import annotations

from typing import Any

import numpy as np

from allele.errors import check_int, check_real
from allele.kraken.network import KrakenLNN
from allele.kraken.numerics import _ridge


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
