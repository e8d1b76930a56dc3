"""Benchmark runner overhead and cost: timing overhead per iteration, wall time per cell.

1. Timing overhead per measured iteration: our round loop around a no-op function (the loop
   step plus the call of the function) against two raw ``perf_counter()`` calls (what timing
   each call on its own costs), loop cost subtracted from the latter. Ours includes the no-op
   call, which the anchor does not, so the ratio errs against us.
2. Wall time to measure one cell (``sorted`` of the same 1000 random floats) for the same
   precision: ours (``run_suite`` at several settings, cheapest first, the first being the
   suite defaults of 3 worker processes x 20 samples of at least 5 ms, each sample the median
   of rounds of about 0.1 ms), ``pyperf timeit --fast`` (10 processes x 2 values) and
   pytest-benchmark with its default settings (one process, about 1 s of one-call rounds),
   each invocation a fresh subprocess.

   Precision is measured directly, the same way for every tool: how well the median a tool
   reports reproduces across independent invocations (the relative standard deviation of the
   medians, on their logs). The invocations go in rounds that interleave the tools, so that the
   machine's drift hits every tool alike; within a round each tool runs twice back to back, and
   the *repeatability* is the spread within those pairs, which leaves out the drift of the
   machine's speed over seconds between rounds (on the shared 2-core machine this drift, +-3 to
   5 % over a few seconds, is the largest term: a tool's precision figure then says as much
   about how calm the machine was as about the tool). For each anchor and each figure, the line
   compares the wall time of our cheapest setting whose figure is at least as good as the
   anchor's (or, if none is, our best one, and says so). Nothing is extrapolated; with 12
   invocations the precision figures themselves are uncertain by about +-21 %, and more on a
   busy machine, so read close calls as ties.

Usage: python benchmarks/bench_runner.py [--quick] [--rounds N] [--settings 3x20x5,...]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

# Pinned before numpy is imported (through allele); the worker subprocesses inherit them.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

from allele.observability.benchmarking.measure import time_loop  # noqa: E402
from allele.observability.benchmarking.runner import run_suite  # noqa: E402
from allele.observability.benchmarking.suites import Suite  # noqa: E402

SETUP = "import random; _r = random.Random(0); data = [_r.random() for _ in range(1000)]"
# Our workers measure exactly what the anchors measure: sorted() of the same 1000 floats in every
# process (the built-in ``python`` kernels seed each process differently, and sorting other data
# takes up to 4 % longer or shorter, a spread between processes that the anchors do not have).
TARGET_MODULE = "bench_runner_sorted"
TARGET_SOURCE = f"""
def make(size):
    {SETUP.replace("1000", "size")}
    return lambda: sorted(data)
"""
# Our settings (processes per cell, samples per process, seconds per sample), cheapest first:
# the suite defaults, then more samples per process (the start-up of a worker, about 45 ms, is
# paid once per process, so more time per process is the cheaper way to more precision).
OUR_SETTINGS = ((3, 20, 0.005), (3, 40, 0.005), (3, 60, 0.005), (3, 80, 0.005))
PYPERF = "pyperf timeit --fast"
PYTEST_BENCHMARK = "pytest-benchmark defaults"


def _noop() -> None:
    pass


def timing_overhead(repeats: int, n: int) -> tuple[float, float]:
    """Median ns per iteration: our loop around a no-op, and two perf_counter calls."""
    perf_counter = time.perf_counter

    def two_calls() -> float:
        t0 = perf_counter()
        for _ in repeat(None, n):
            perf_counter()
            perf_counter()
        return perf_counter() - t0

    def empty() -> float:
        t0 = perf_counter()
        for _ in repeat(None, n):
            pass
        return perf_counter() - t0

    ours, anchor = [], []
    for _ in range(repeats):
        ours.append(time_loop(_noop, n)[0] / n)
        anchor.append((two_calls() - empty()) / n)
    return statistics.median(ours) * 1e9, statistics.median(anchor) * 1e9


@dataclass(frozen=True)
class Row:
    """One invocation of one tool: wall time, reported median, samples, per-process medians."""

    wall: float
    median: float
    samples: int
    per_process: list[float]


def ours_cell(setting: tuple[int, int, float]) -> Row:
    """One run of the one-cell suite with ``setting`` (processes, samples, seconds per sample)."""
    processes, samples, min_time = setting
    suite = Suite(
        name="runner-overhead",
        component="function",
        target=f"{TARGET_MODULE}:make",
        matrix={"size": [1000]},
        runs=processes,
        samples=samples,
        min_time=min_time,
        workers=1,
        timeout=120,
    )
    t0 = time.perf_counter()
    run = run_suite(suite)
    wall = time.perf_counter() - t0
    values = run.cells[0].samples["time_s"]
    per_process = [
        statistics.median(values[i * samples : (i + 1) * samples]) for i in range(processes)
    ]
    return Row(wall, statistics.median(values), len(values), per_process)


def pyperf_cell(folder: Path) -> Row:
    out = folder / f"pyperf-{time.monotonic_ns()}.json"  # pyperf refuses to overwrite
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyperf",
            "timeit",
            "--fast",
            "-q",
            "-o",
            str(out),
            "-s",
            SETUP,
            "sorted(data)",
        ],
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - t0
    import pyperf

    values = pyperf.Benchmark.load(str(out)).get_values()
    return Row(wall, statistics.median(values), len(values), [])


def pytest_benchmark_cell(folder: Path) -> Row:
    test = folder / "test_sort_bench.py"
    test.write_text(
        textwrap.dedent(
            f"""
            {SETUP}

            def test_sort(benchmark):
                benchmark(sorted, data)
            """
        )
    )
    out = folder / "pb.json"
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(test),
            f"--benchmark-json={out}",
            "--rootdir",
            str(folder),
        ],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    wall = time.perf_counter() - t0
    stats = json.loads(out.read_text())["benchmarks"][0]["stats"]
    return Row(wall, stats["median"], stats["rounds"], [])


def spread(medians: list[float]) -> float:
    """Precision of a tool: the relative standard deviation of its reported medians.

    Computed on the log of the medians (so it is a relative figure, symmetric for faster and
    slower invocations); the plain standard deviation rather than the MAD, because with a
    handful of invocations it is the steadier estimate.
    """
    return statistics.stdev(math.log(m) for m in medians)


def robust_spread(medians: list[float]) -> float:
    """The same from the MAD (x 1.4826): what the spread is without the rare disturbed runs."""
    logs = [math.log(m) for m in medians]
    centre = statistics.median(logs)
    return 1.4826 * statistics.median(abs(x - centre) for x in logs)


def parse_settings(text: str) -> tuple[tuple[int, int, float], ...]:
    """``"3x20x5,5x20x5"`` (processes x samples x milliseconds per sample) as settings."""
    settings = []
    for item in text.split(","):
        processes, samples, ms = item.split("x")
        settings.append((int(processes), int(samples), float(ms) / 1000))
    return tuple(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer invocations")
    parser.add_argument(
        "--rounds", type=int, help="rounds of two invocations per tool (default 6, quick 3)"
    )
    parser.add_argument(
        "--settings",
        type=parse_settings,
        default=OUR_SETTINGS,
        help="our settings, cheapest first, as PROCESSESxSAMPLESxMS[,...]",
    )
    parser.add_argument("--no-pyperf", action="store_true", help="leave pyperf out")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 6)

    ours_ns, anchor_ns = timing_overhead(repeats=15 if args.quick else 41, n=200_000)
    print(
        f"RATIO timing overhead per iteration: ours={ours_ns:.1f}ns "
        f"two_perf_counter={anchor_ns:.1f}ns ratio={ours_ns / anchor_ns:.2f} (target <= 1.2x)"
    )

    tools: dict[str, Any] = {
        f"ours {p} proc x {n} samples of {t * 1000:g}ms": (p, n, t) for p, n, t in args.settings
    }
    anchors = ([] if args.no_pyperf else [PYPERF]) + [PYTEST_BENCHMARK]
    rows: dict[str, list[Row]] = {name: [] for name in [*tools, *anchors]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{TARGET_MODULE}.py").write_text(TARGET_SOURCE)
        sys.path.insert(0, str(folder))  # the workers inherit the parent's import path
        calls: dict[str, Callable[[], Row]] = {
            name: functools.partial(ours_cell, setting) for name, setting in tools.items()
        }
        calls[PYPERF] = functools.partial(pyperf_cell, folder)
        calls[PYTEST_BENCHMARK] = functools.partial(pytest_benchmark_cell, folder)
        # Rounds interleave the tools, so the machine's drift hits every tool alike; within a
        # round each tool runs twice back to back, a pair for the repeatability figure.
        for _ in range(rounds):
            for name in rows:
                rows[name].extend((calls[name](), calls[name]()))

    print(
        f"sorted() of 1000 floats, {rounds} rounds x 2 back-to-back invocations per tool, the "
        "tools interleaved. precision = relative stddev of all the reported medians "
        f"(uncertain by about +-{100 / math.sqrt(2 * (2 * rounds - 1)):.0f}% of its value); "
        "repeatability = the same from the back-to-back pairs (stddev of log(first/second) / "
        "sqrt 2), which leaves out the machine's drift over seconds between rounds:"
    )
    table: dict[str, tuple[float, float, float]] = {}
    for name, items in rows.items():
        wall = statistics.median(r.wall for r in items)
        precision = spread([r.median for r in items])
        pairs = [
            math.log(a.median / b.median) for a, b in zip(items[::2], items[1::2], strict=True)
        ]
        repeatability = math.sqrt(statistics.fmean(x * x for x in pairs) / 2)
        table[name] = (wall, precision, repeatability)
        extra = ""
        if name in tools:
            # How far the processes of one invocation disagree (median over invocations).
            within = statistics.median(
                spread(r.per_process) if len(r.per_process) > 1 else 0.0 for r in items
            )
            extra = f" between-process={within * 100:4.2f}%"
        print(
            f"  {name:<34} wall/cell={wall:5.2f}s precision={precision * 100:5.2f}% "
            f"repeatability={repeatability * 100:5.2f}% "
            f"median={statistics.median(r.median for r in items) * 1e6:6.2f}us "
            f"samples={items[0].samples}{extra}"
        )
    ours = list(tools)  # cheapest first
    for column, label in ((1, "precision"), (2, "repeatability")):
        for anchor in anchors:
            a_wall, a_precision = table[anchor][0], table[anchor][column]
            matched = next((o for o in ours if table[o][column] <= a_precision), None)
            chosen = matched or min(ours, key=lambda o: table[o][column])
            o_wall, o_precision = table[chosen][0], table[chosen][column]
            note = "" if matched else "; no setting of ours reached the anchor's figure"
            print(
                f"RATIO wall time per cell at the same or better {label} vs {anchor}: "
                f"ours={o_wall:.2f}s ({chosen}, {o_precision * 100:.2f}%) "
                f"anchor={a_wall:.2f}s ({a_precision * 100:.2f}%) "
                f"ratio={o_wall / a_wall:.2f} (target <= 1.0{note})"
            )


if __name__ == "__main__":
    main()
