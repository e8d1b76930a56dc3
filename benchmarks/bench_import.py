"""``import allele`` time in fresh interpreters, beside ``import numpy`` as the anchor.

Each sample is a new ``python -c`` process timing its own import with a monotonic clock, so
nothing is cached in-process; medians over the samples (alternating the two imports). Also
shown: the workload modules themselves (``allele.evolution``, ``allele.kraken``). Target:
``import allele`` < 0.5 s.

Run: ``.venv/bin/python benchmarks/bench_import.py [--quick]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # inherited by the child interpreters

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

_PROBE = "import time; s = time.perf_counter(); {stmt}; print(time.perf_counter() - s)"
CASES = {
    "allele": "import allele",
    "numpy": "import numpy",
    "allele workloads": "import allele.evolution, allele.kraken, allele.fitness",
}


def sample(stmt: str) -> float:
    """Seconds one fresh interpreter spends on ``stmt``."""
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(stmt=stmt)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    return float(completed.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    samples = 5 if args.quick else 15
    times: dict[str, list[float]] = {name: [] for name in CASES}
    sample("import allele")  # warm the file-system cache once
    for _ in range(samples):
        for name, stmt in CASES.items():
            times[name].append(sample(stmt))
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    for name, median in medians.items():
        print(
            f"import {name}: median {median:.1f} ms over {samples} fresh interpreters "
            f"(min {min(times[name]) * 1e3:.1f} ms)"
        )
    ours, anchor = medians["allele"], medians["numpy"]
    print(
        f"RATIO import allele: ours={ours:.1f}ms numpy={anchor:.1f}ms "
        f"ratio={ours / anchor:.2f} (target ours < 500 ms)"
    )


if __name__ == "__main__":
    main()
