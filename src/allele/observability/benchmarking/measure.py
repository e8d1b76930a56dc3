"""Measurement inside a worker process: calibrated timing loops, memory, GPU, latency figures.

A *round* is one tight loop of ``n`` calls between two clock reads::

    t0 = perf_counter(); for _ in repeat(None, n): fn(); t1 = perf_counter()

so the only per-call overhead is the loop step and the call itself. A *sample* (one value of
``time_s``) is the median per-call time of the ``rounds`` rounds that fill at least
``min_time`` seconds. ``n`` is calibrated so that a round lasts at least ``ROUND_TIME`` (or
``min_time`` if that is shorter), capped at ``max_inner_loops``.

Why rounds inside a sample: on a busy machine the scheduler takes the CPU away for a few
milliseconds at a time. A 5 ms loop of calls then nearly always holds such a pause, and its mean
with it; a 0.1 ms round rarely does, and the median of a sample's rounds ignores the few that
do (the effect that makes pytest-benchmark's one-call rounds steady). The clock reads of a round
cost about 75 ns, under 0.1 % of a 0.1 ms round. An operation slower than ``min_time`` is one
call per round and one round per sample, as before.

The garbage collector is off inside a sample (as in ``timeit`` and pytest-benchmark's
``--benchmark-disable-gc``): a collection then runs between samples, outside the timed window,
instead of landing in whichever call happened to cross the allocation threshold. The cost of
collecting an operation's garbage is therefore not in ``time_s``. CPU time (``process_time``,
a system call) is read once per sample, outside the rounds' clock reads.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat

# Target duration of one round: long enough that the two clock reads (about 75 ns) are below
# 0.1 % of it, short enough that few rounds hold a scheduler preemption on a busy machine.
ROUND_TIME = 100e-6


def time_loop(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``n`` back-to-back calls of ``fn`` (garbage collector off)."""
    perf_counter = time.perf_counter
    process_time = time.process_time
    loops = repeat(None, n)
    collecting = gc.isenabled()
    gc.disable()
    try:
        c0 = process_time()
        t0 = perf_counter()
        for _ in loops:
            fn()
        t1 = perf_counter()
        c1 = process_time()
    finally:
        if collecting:
            gc.enable()
    return t1 - t0, c1 - c0


def time_sample(fn: Callable[[], object], n: int, rounds: int) -> tuple[float, float]:
    """Median wall seconds per call over ``rounds`` rounds of ``n`` calls, and mean CPU seconds.

    The garbage collector is off for the whole sample; the CPU clock is read around the sample
    only, so a round costs two ``perf_counter`` reads and nothing else.
    """
    perf_counter = time.perf_counter
    walls = [0.0] * rounds
    collecting = gc.isenabled()
    gc.disable()
    try:
        c0 = time.process_time()
        for index in range(rounds):
            loops = repeat(None, n)
            t0 = perf_counter()
            for _ in loops:
                fn()
            walls[index] = perf_counter() - t0
        c1 = time.process_time()
    finally:
        if collecting:
            gc.enable()
    return statistics.median(walls) / n, (c1 - c0) / (rounds * n)


def calibrate(fn: Callable[[], object], min_time: float, max_inner_loops: int) -> int:
    """The inner loop count that makes one loop last at least ``min_time`` seconds (capped).

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


def count_rounds(fn: Callable[[], object], n: int, min_time: float) -> int:
    """How many rounds of ``n`` calls fill ``min_time`` seconds: the rounds of one sample.

    Runs them (the caller discards them as a warmup sample). A preemption during this sample
    only makes the later samples hold fewer rounds, never a wrong time.
    """
    perf_counter = time.perf_counter
    rounds = 0
    start = perf_counter()
    while True:
        time_loop(fn, n)
        rounds += 1
        if perf_counter() - start >= min_time:
            return rounds


def take_samples(
    fn: Callable[[], object], n: int, samples: int, warmup: int, rounds: int = 1
) -> tuple[list[float], list[float]]:
    """Per-call wall and CPU seconds of ``samples`` samples after ``warmup`` discarded ones.

    Each sample is ``rounds`` rounds of ``n`` calls (see ``time_sample``).
    """
    for _ in range(warmup):
        time_sample(fn, n, rounds)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(samples):
        w, c = time_sample(fn, n, rounds)
        wall.append(w)
        cpu.append(c)
    return wall, cpu


@dataclass(frozen=True)
class Timing:
    """What ``measure_calls`` found: calls per round, rounds per sample, per-call seconds."""

    loops: int
    rounds: int
    wall: list[float]
    cpu: list[float]


def measure_calls(
    fn: Callable[[], object],
    *,
    min_time: float,
    max_inner_loops: int,
    samples: int,
    warmup: int,
    loops: int | None = None,
) -> Timing:
    """The whole timing protocol of a cell, used by the worker and the pytest fixture alike.

    Calls per round are calibrated to ``min(min_time, ROUND_TIME)`` unless ``loops`` is given
    (later processes of a cell reuse the first one's count so every sample is timed the same
    way); rounds per sample are counted by running one sample's worth of rounds, which then
    counts as the first warmup sample.
    """
    n = loops or calibrate(fn, min(min_time, ROUND_TIME), max_inner_loops)
    rounds = count_rounds(fn, n, min_time)
    wall, cpu = take_samples(fn, n, samples, max(0, warmup - 1), rounds)
    return Timing(n, rounds, wall, cpu)


@dataclass(frozen=True)
class ResourceMeasurement:
    """What one process run of a cell used, besides time (bytes; None where not measured).

    ``rss_growth_bytes`` and ``tracemalloc_peak_bytes`` are the workload's own (see
    ``RssGrowth`` and ``tracemalloc_peak_bytes``); ``peak_rss_bytes`` is the whole process's,
    interpreter and imports included. CPU time is a timing sample (``cpu_time_s``), not here.
    """

    rss_growth_bytes: float | None = None
    tracemalloc_peak_bytes: float | None = None
    peak_rss_bytes: float | None = None
    gpu_memory_used_bytes: float | None = None

    def to_metrics(self) -> dict[str, float]:
        """The measured figures as cell metrics (names as the fields; unmeasured left out)."""
        return {k: float(v) for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_metrics(cls, metrics: dict[str, float]) -> ResourceMeasurement:
        """The figures a cell's (or a job's) metrics hold."""
        return cls(**{k: metrics[k] for k in cls.__dataclass_fields__ if k in metrics})


class RssGrowth:
    """How far the resident set grew above its level at ``start()``, at its highest, until
    ``stop()``: the memory the measured phase itself used, not the interpreter's and imports'.

    On Linux the kernel's high-water mark (``VmHWM``) is reset at the start (``clear_refs``
    5), so the peak read at the end is the phase's own. Elsewhere, or where the reset is
    refused, the process's lifetime peak (``ru_maxrss``) stands in, which is the phase's peak
    only when the phase raised it; otherwise the growth is unknown (None).
    """

    def __init__(self) -> None:
        self._base = 0.0
        self._reset = False
        self._peak_before = 0.0

    def start(self) -> None:
        self._reset = _reset_peak_rss()
        self._peak_before = peak_rss_bytes()
        self._base = current_rss_bytes()

    def stop(self) -> float | None:
        if self._reset:
            return max(0.0, _proc_status_bytes("VmHWM") - self._base)
        peak = peak_rss_bytes()
        if peak <= self._peak_before:
            return None  # the phase stayed under an earlier peak: its own is not known
        return max(0.0, peak - self._base)


def _reset_peak_rss() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/clear_refs", "w") as out:
            out.write("5")
    except OSError:
        return False
    return True


def _proc_status_bytes(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return float(line.split()[1]) * 1024.0  # reported in kB
    raise OSError(f"/proc/self/status has no {field}")


def current_rss_bytes() -> float:
    """The resident set size of this process now, in bytes."""
    if sys.platform.startswith("linux"):
        return _proc_status_bytes("VmRSS")
    import psutil

    return float(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> float:
    """The peak resident set size of this process in bytes (``ru_maxrss``)."""
    import resource

    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    # Linux reports kilobytes, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024.0


def tracemalloc_peak_bytes(fn: Callable[[], object]) -> float:
    """Peak bytes allocated during one call of ``fn`` above what was allocated before it
    (tracemalloc: the Python heap, and numpy's buffers, which numpy reports to it)."""
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
            "gpu_utilization_pct": statistics.fmean(utilisation),
        }
    except Exception:
        return {"gpu_available": 0.0}
    finally:
        pynvml.nvmlShutdown()


def latency_metrics(times: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 of per-operation times (seconds) and the median operations per second."""
    if len(times) == 0:
        return {}
    import numpy as np  # here, not at the top: the worker process need not load numpy

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
