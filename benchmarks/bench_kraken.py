"""A 50-step sequence through a reservoir: KrakenLNN vs reservoirpy's ESN Reservoir.

Both reservoirs have the same size, recurrent connectivity (0.1), spectral radius (0.95),
leak rate (0.3), input scaling (1.0, dense input weights) and get the same 50-step sine
sequence. Calls are interleaved (ours, theirs, ours, ...) so machine noise hits both sides
alike; p50/p95 over the repeats. Ours includes writing the temporal-memory trace. Targets:
p95 <= 1 ms at 100 units, <= 20 ms at 1000 units.

Also printed: the batched path (64 sequences in one pass vs reservoirpy on the same 3-D
array), the dense-vs-CSR matvec costs behind ``prefers_sparse``, and memory capacity by size.

Run: ``.venv/bin/python benchmarks/bench_kraken.py [--quick]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: honest single-thread timings

import argparse  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from reservoirpy.nodes import Reservoir  # noqa: E402
from scipy.sparse import random as sparse_random  # noqa: E402

from allele.kraken import KrakenLNN, memory_capacity_score, prefers_sparse  # noqa: E402

PARAMS = {"connectivity": 0.1, "spectral_radius": 0.95, "leak_rate": 0.3, "input_scaling": 1.0}
TARGET_P95_MS = {100: 1.0, 1000: 20.0}


def build(units: int) -> tuple[KrakenLNN, Reservoir]:
    """Our reservoir and reservoirpy's with the same hyper-parameters."""
    ours = KrakenLNN(
        reservoir_size=units,
        connectivity=PARAMS["connectivity"],
        spectral_radius=PARAMS["spectral_radius"],
        leak_rate=PARAMS["leak_rate"],
        input_scaling=PARAMS["input_scaling"],
        seed=0,
    )
    theirs = Reservoir(
        units=units,
        sr=PARAMS["spectral_radius"],
        lr=PARAMS["leak_rate"],
        input_scaling=PARAMS["input_scaling"],
        rc_connectivity=PARAMS["connectivity"],
        input_connectivity=1.0,
        seed=0,
    )
    return ours, theirs


def interleaved(
    ours_fn: Callable[[], object], theirs_fn: Callable[[], object], repeats: int
) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds per call of each function, calls alternating between the two."""
    ours_t, theirs_t = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours_fn()
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs_fn()
        theirs_t.append(time.perf_counter() - start)
    return np.array(ours_t) * 1e3, np.array(theirs_t) * 1e3


def compare(units: int, seq: np.ndarray, repeats: int) -> None:
    """Print single-sequence and batched timings of both reservoirs at ``units``."""
    ours, theirs = build(units)
    for _ in range(5):  # warm-up
        ours.process_sequence(seq)
        theirs.run(seq)
    o, t = interleaved(lambda: ours.process_sequence(seq), lambda: theirs.run(seq), repeats)
    o50, o95 = np.percentile(o, 50), np.percentile(o, 95)
    t50, t95 = np.percentile(t, 50), np.percentile(t, 95)
    print(
        f"units={units}: ours p50={o50:.3f}ms p95={o95:.3f}ms | "
        f"reservoirpy p50={t50:.3f}ms p95={t95:.3f}ms  ({repeats} interleaved calls)"
    )
    print(
        f"RATIO kraken seq50 units={units}: ours_p95={o95:.3f}ms "
        f"reservoirpy_p95={t95:.3f}ms ratio={o95 / t95:.2f} "
        f"(target p95 <= {TARGET_P95_MS[units]:g} ms)"
    )
    batch = np.repeat(seq[None], 64, axis=0) * np.linspace(0.5, 1.5, 64)[:, None, None]
    ob, tb = interleaved(
        lambda: ours.process_batch(batch), lambda: theirs.run(batch), max(5, repeats // 20)
    )
    b_ours, b_theirs = np.median(ob), np.median(tb)
    print(
        f"RATIO kraken batch64 seq50 units={units}: ours_p50={b_ours:.3f}ms "
        f"reservoirpy_p50={b_theirs:.3f}ms ratio={b_ours / b_theirs:.2f} "
        f"(per sequence ours={b_ours / 64 * 1e3:.1f}us)"
    )


def matvec_costs(quick: bool) -> None:
    """Print dense-vs-CSR recurrent product costs and the form ``prefers_sparse`` picks."""
    print("recurrent product W x + drive, dense gemv vs CSR (* = the form KrakenLNN uses):")
    rng = np.random.default_rng(0)
    for n in (100, 400, 1000):
        cells = []
        for density in (0.01, 0.1) if quick else (0.01, 0.1, 0.3, 1.0):
            csr = sparse_random(n, n, density=density, random_state=rng, format="csr")
            dense = np.ascontiguousarray(csr.toarray().T)
            x, drive, out = rng.random(n), rng.random(n), np.empty(n)

            def dense_step() -> None:
                np.dot(x, dense, out=out)  # noqa: B023
                out.__iadd__(drive)  # noqa: B023

            def csr_step() -> None:
                np.add(csr @ x, drive, out=out)  # noqa: B023

            number = max(50, 100_000 // n)
            d = min(timeit.repeat(dense_step, number=number, repeat=5)) / number
            s = min(timeit.repeat(csr_step, number=number, repeat=5)) / number
            sparse = prefers_sparse(n, csr.nnz)
            cells.append(
                f"c={density:<4g} dense {d * 1e6:6.1f}{' ' if sparse else '*'}"
                f"csr {s * 1e6:6.1f}{'*' if sparse else ' '}"
            )
        print(f"  n={n:5d} us: " + " | ".join(cells))


def step_profile(units: int, seq: np.ndarray, repeats: int) -> None:
    """Print how much of a sequence is the recurrent product alone (the kernel both use)."""
    from scipy.sparse import csr_matrix

    ours, _ = build(units)
    w = csr_matrix(ours.recurrent_weights)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, units)

    def products() -> None:
        for _ in range(len(seq)):
            w @ x

    whole, kernel = interleaved(lambda: ours.process_sequence(seq), products, repeats)
    share = np.median(kernel) / np.median(whole)
    print(
        f"units={units}: {len(seq)} CSR products alone p50={np.median(kernel):.3f}ms of "
        f"p50={np.median(whole):.3f}ms per sequence ({share:.0%}); the rest is input drive, "
        "tanh, leak, copies and the memory trace"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 60 if args.quick else 400
    seq = np.sin(np.linspace(0, 6, 50))[:, None]
    for units in (100, 1000):
        compare(units, seq, repeats)
    step_profile(1000, seq, repeats // 4)
    matvec_costs(args.quick)
    print("memory capacity (Jaeger) by reservoir size, sr=0.9, leak 1, input scaling 0.1:")
    for n in (20, 50, 200) if args.quick else (20, 50, 100, 200, 400):
        k = KrakenLNN(
            reservoir_size=n, spectral_radius=0.9, leak_rate=1.0, input_scaling=0.1, seed=7
        )
        print(f"  units={n:4d}: MC={memory_capacity_score(k, seed=1):6.2f}")


if __name__ == "__main__":
    main()
