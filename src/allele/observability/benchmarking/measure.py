"""Measurement inside a worker process: calibrated timing loops, memory, GPU, latency figures.

A sample is one tight loop of ``n`` calls between two clock reads, divided by ``n``::

    t0 = perf_counter(); for _ in repeat(None, n): fn(); t1 = perf_counter()

so the only per-call overhead is the loop step and the call itself. ``n`` (the inner loop count)
is calibrated so that one sample lasts at least ``min_time`` seconds, capped at
``max_inner_loops``. CPU time (``process_time``) is read outside the wall-clock window.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from itertools import repeat

import numpy as np


def time_loop(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``n`` back-to-back calls of ``fn``."""
    perf_counter = time.perf_counter
    process_time = time.process_time
    loops = repeat(None, n)
    c0 = process_time()
    t0 = perf_counter()
    for _ in loops:
        fn()
    t1 = perf_counter()
    c1 = process_time()
    return t1 - t0, c1 - c0


def calibrate(fn: Callable[[], object], min_time: float, max_inner_loops: int) -> int:
    """The inner loop count that makes one sample last at least ``min_time`` seconds (capped).

    A count is accepted only when two loops in a row reach ``min_time``: a single reading can be
    inflated by a cold first call or by the process being preempted on a busy machine, and a
    count fixed too low then makes every later sample of the cell too short to time well.
    """
    n = 1
    while True:
        wall, _ = time_loop(fn, n)
        if n >= max_inner_loops:
            return n
        if wall >= min_time:
            wall, _ = time_loop(fn, n)
            if wall >= min_time:
                return n
        # Aim 20% above the threshold so that noise does not leave a sample just below it.
        target = n * 10 if wall <= 0.0 else math.ceil(n * min_time * 1.2 / wall)
        n = min(max_inner_loops, max(n * 2, target))


def take_samples(
    fn: Callable[[], object], n: int, samples: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Per-call wall and CPU seconds of ``samples`` loops of ``n`` calls after ``warmup`` loops."""
    for _ in range(warmup):
        time_loop(fn, n)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(samples):
        w, c = time_loop(fn, n)
        wall.append(w / n)
        cpu.append(c / n)
    return wall, cpu


def peak_rss_bytes() -> float:
    """The peak resident set size of this process in bytes (``ru_maxrss``)."""
    import resource

    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    # Linux reports kilobytes, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024.0


def tracemalloc_peak_bytes(fn: Callable[[], object]) -> float:
    """Peak bytes allocated by the Python heap during one call of ``fn`` (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return float(peak)


def gpu_metrics() -> dict[str, float]:
    """GPU memory (bytes) and utilisation (%) of every device via NVML, or gpu_available=0."""
    try:
        import pynvml  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return {"gpu_available": 0.0}
    try:
        pynvml.nvmlInit()
    except Exception:  # NVML present but no driver or no GPU: the figure is unavailable
        return {"gpu_available": 0.0}
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return {"gpu_available": 0.0}
        used = 0.0
        utilisation = []
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            used += float(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
            utilisation.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        return {
            "gpu_available": 1.0,
            "gpu_count": float(count),
            "gpu_memory_used_bytes": used,
            "gpu_utilization_pct": float(np.mean(utilisation)),
        }
    except Exception:
        return {"gpu_available": 0.0}
    finally:
        pynvml.nvmlShutdown()


def latency_metrics(times: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 of per-operation times (seconds) and the median operations per second."""
    if len(times) == 0:
        return {}
    values = np.asarray(times, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50.0, 95.0, 99.0])
    return {
        "latency_p50_s": float(p50),
        "latency_p95_s": float(p95),
        "latency_p99_s": float(p99),
        "ops_per_s": float(1.0 / p50) if p50 > 0 else math.inf,
    }


def throughput_samples(times: Sequence[float], units: dict[str, float]) -> dict[str, list[float]]:
    """``<unit>_per_s`` samples for each unit a workload reports per operation."""
    return {
        f"{unit}_per_s": [amount / t if t > 0 else math.inf for t in times]
        for unit, amount in units.items()
    }
