"""Measurement primitives: calibration, sampling, latency figures, memory."""

from __future__ import annotations

import time

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
