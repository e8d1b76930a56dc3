"""Measurement primitives: calibration, sampling, latency figures, memory."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from allele.observability.benchmarking import measure


def test_calibration_stops_at_the_cap_for_a_cheap_call() -> None:
    assert measure.calibrate(lambda: None, min_time=10.0, max_inner_loops=64) == 64


def test_calibration_keeps_one_loop_when_one_call_lasts_long_enough() -> None:
    assert measure.calibrate(lambda: time.sleep(0.02), min_time=0.01, max_inner_loops=1000) == 1


def test_calibration_aims_20_percent_above_min_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake clock on which every call lasts exactly 1 ms.
    now = [0.0]

    def call() -> None:
        now[0] += 0.001

    monkeypatch.setattr(measure.time, "perf_counter", lambda: now[0])
    # 1 call = 1 ms < 10 ms, so aim at 10 ms * 1.2 = 12 calls, which pass.
    assert measure.calibrate(call, min_time=0.01, max_inner_loops=10_000) == 12


def test_take_samples_counts_warmup_and_samples() -> None:
    calls = []
    wall, cpu = measure.take_samples(lambda: calls.append(1), n=5, samples=4, warmup=2)
    assert len(calls) == (2 + 4) * 5
    assert len(wall) == len(cpu) == 4
    assert all(w > 0 for w in wall)


def test_time_loop_measures_sleeping_wall_time_but_little_cpu() -> None:
    wall, cpu = measure.time_loop(lambda: time.sleep(0.01), 3)
    assert wall >= 0.03
    assert cpu < wall


def test_latency_metrics_exact_percentiles() -> None:
    figures = measure.latency_metrics([float(i) for i in range(1, 101)])
    assert figures["latency_p50_s"] == pytest.approx(50.5)
    assert figures["latency_p95_s"] == pytest.approx(95.05)
    assert figures["latency_p99_s"] == pytest.approx(99.01)
    assert figures["ops_per_s"] == pytest.approx(1 / 50.5)
    assert measure.latency_metrics([]) == {}


def test_throughput_samples_per_unit() -> None:
    out = measure.throughput_samples([0.5, 0.25], {"generations": 10.0, "items": 1.0})
    assert out == {"generations_per_s": [20.0, 40.0], "items_per_s": [2.0, 4.0]}


def test_tracemalloc_peak_sees_a_large_allocation() -> None:
    peak = measure.tracemalloc_peak_bytes(lambda: bytearray(2_000_000))
    assert peak >= 2_000_000


def test_peak_rss_is_positive_and_plausible() -> None:
    assert 1e6 < measure.peak_rss_bytes() < 1e12


def test_gpu_metrics_report_availability() -> None:
    figures = measure.gpu_metrics()
    assert figures["gpu_available"] in (0.0, 1.0)
    if figures["gpu_available"] == 1.0:
        assert figures["gpu_count"] >= 1


def test_calibration_is_not_fooled_by_one_slow_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every call lasts 1 ms on a fake clock, except the very first, which is 50 ms (a cold
    # call, or the process preempted): one reading alone would stop calibration at 1 loop.
    now = [0.0]
    calls = [0]

    def call() -> None:
        calls[0] += 1
        now[0] += 0.05 if calls[0] == 1 else 0.001

    monkeypatch.setattr(measure.time, "perf_counter", lambda: now[0])
    assert measure.calibrate(call, min_time=0.01, max_inner_loops=10_000) == 12


def test_the_garbage_collector_is_off_inside_samples_and_restored_after() -> None:
    import gc

    seen = []
    assert gc.isenabled()
    measure.take_samples(lambda: seen.append(gc.isenabled()), n=3, samples=2, warmup=1, rounds=4)
    measure.time_loop(lambda: seen.append(gc.isenabled()), 2)
    assert seen == [False] * (3 * 3 * 4 + 2)
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    import gc

    gc.disable()
    try:
        measure.take_samples(lambda: None, n=2, samples=1, warmup=0, rounds=2)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_sample_is_the_median_round_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rounds of 2 calls on a fake clock: each call lasts 1 ms, except that one round holds a
    # 50 ms pause (a preemption). The sample is the median round per call: 1 ms, the pause
    # ignored; the CPU figure is the mean per call over the whole sample.
    now = [0.0]
    calls = [0]

    def call() -> None:
        calls[0] += 1
        now[0] += 0.051 if calls[0] == 3 else 0.001

    monkeypatch.setattr(measure.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(measure.time, "process_time", lambda: now[0])
    wall, cpu = measure.time_sample(call, n=2, rounds=5)
    assert wall == pytest.approx(0.001)
    assert cpu == pytest.approx((10 * 0.001 + 0.05) / 10)


def test_count_rounds_fills_min_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]

    def call() -> None:
        now[0] += 0.001

    monkeypatch.setattr(measure.time, "perf_counter", lambda: now[0])
    # Rounds of 3 calls = 3 ms; 10 ms are filled after 4 rounds.
    assert measure.count_rounds(call, n=3, min_time=0.01) == 4
    # An operation longer than min_time is one round per sample.
    assert measure.count_rounds(call, n=20, min_time=0.01) == 1


def test_take_samples_runs_rounds_of_calls_per_sample() -> None:
    calls = []
    wall, cpu = measure.take_samples(lambda: calls.append(1), n=2, samples=3, warmup=1, rounds=5)
    assert len(calls) == (1 + 3) * 5 * 2
    assert len(wall) == len(cpu) == 3


def test_the_worker_module_does_not_load_numpy() -> None:
    # Its start-up is paid once per process run of every cell; numpy alone doubles it.
    import subprocess
    import sys

    code = "import sys, allele.observability.benchmarking.worker; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


MEGABYTES_100 = 100 * 2**20

# A workload whose every call builds (and touches: bytes * n writes every byte) 100 MB.
ALLOCATING = """
def hundred_megabytes(**_):
    return lambda: len(b"\\x01" * (100 * 2**20))
"""


def test_a_workload_allocating_100_mb_shows_about_100_mb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.suites import Suite

    (tmp_path / "allocating_fake.py").write_text(ALLOCATING)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = Suite(
        name="mem",
        component="function",
        target="allocating_fake:hundred_megabytes",
        matrix={"n": [1]},
        runs=2,
        samples=2,
        warmup=0,
        min_time=0.0,
        max_inner_loops=1,
        timeout=120,
        measure_memory=True,
    )
    cell = run_suite(suite).cells[0]
    assert cell.status == "ok", cell.error
    # The workload's own memory, not the interpreter's: ~100 MB, whatever the process holds.
    tracemalloc_peak = cell.metrics["tracemalloc_peak_bytes"]
    assert 0.95 * MEGABYTES_100 <= tracemalloc_peak <= 1.1 * MEGABYTES_100
    if "rss_growth_bytes" in cell.metrics:  # known wherever the kernel's peak can be read
        assert 0.9 * MEGABYTES_100 <= cell.metrics["rss_growth_bytes"] <= 1.3 * MEGABYTES_100
    else:
        assert not sys.platform.startswith("linux")
    assert cell.metrics["peak_rss_bytes"] > cell.metrics.get("rss_growth_bytes", 0.0)


def test_rss_growth_of_a_small_workload_is_small() -> None:
    growth = measure.RssGrowth()
    growth.start()
    sum(range(1000))
    value = growth.stop()
    if sys.platform.startswith("linux"):
        assert value is not None and value < 5 * 2**20
