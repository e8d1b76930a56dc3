"""Hot-path cost of recording: our handles vs prometheus_client and the OpenTelemetry SDK.

Each operation runs in a timeit loop of ``--ops`` calls, repeated ``--repeats`` times in
interleaved rounds (ours, prometheus_client, OpenTelemetry, then again) so that machine noise
hits all three alike; the reported figure is the median over repeats of nanoseconds per call.
The cost of the empty loop is NOT subtracted from anyone (every figure includes the same
~5-10 ns of loop overhead, which makes our ratios slightly pessimistic).

Our recording appends to a buffer; to keep the comparison honest the buffer is folded
(validated, stamped, retained -- the work our collector defers) after every repeat, and that
fold time is reported separately as amortised ns per observation, and a second ratio adds it
to our hot-path figure (the whole CPU cost of a recorded value, wherever it is paid).

    .venv/bin/python benchmarks/bench_metrics.py [--quick]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402
from collections.abc import Callable  # noqa: E402

from allele.observability.collector import MetricsCollector  # noqa: E402


def _per_call_ns(fn: Callable[[], object], ops: int) -> float:
    return timeit.timeit(fn, number=1) / ops * 1e9  # fn runs the whole loop itself


def _loop(stmt: str, env: dict[str, object], ops: int) -> Callable[[], object]:
    # A compiled timeit loop: the same loop machinery for every contender.
    timer = timeit.Timer(stmt, globals=env)
    return lambda: timer.timeit(number=ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer ops and repeats")
    parser.add_argument("--ops", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    ops = args.ops or (50_000 if args.quick else 200_000)
    repeats = args.repeats or (5 if args.quick else 11)

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from prometheus_client import CollectorRegistry, Counter, Histogram

    collector = MetricsCollector(capacity=4096)
    ours_counter = collector.counter("bench_requests_total", {"route": "chat"})
    ours_hist = collector.histogram("bench_latency_seconds", {"route": "chat"})

    registry = CollectorRegistry()
    prom_counter = Counter("bench_requests", "requests", ["route"], registry=registry).labels(
        route="chat"
    )
    prom_hist = Histogram("bench_latency_seconds", "latency", ["route"], registry=registry).labels(
        route="chat"
    )

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    otel_counter = meter.create_counter("bench_requests")
    otel_hist = meter.create_histogram("bench_latency_seconds")
    otel_attrs = {"route": "chat"}

    env: dict[str, object] = {
        "oc": ours_counter,
        "oh": ours_hist,
        "pc": prom_counter,
        "ph": prom_hist,
        "tc": otel_counter,
        "th": otel_hist,
        "attrs": otel_attrs,
    }
    cases = {
        "counter.inc": {
            "ours": "oc.inc()",
            "prometheus_client": "pc.inc()",
            "OpenTelemetry": "tc.add(1, attrs)",
        },
        "histogram.observe": {
            "ours": "oh.observe(0.0125)",
            "prometheus_client": "ph.observe(0.0125)",
            "OpenTelemetry": "th.record(0.0125, attrs)",
        },
    }
    results: dict[str, dict[str, list[float]]] = {
        case: {who: [] for who in stmts} for case, stmts in cases.items()
    }
    fold_ns: dict[str, list[float]] = {case: [] for case in cases}
    for case, stmts in cases.items():
        loops = {who: _loop(stmt, env, ops) for who, stmt in stmts.items()}
        for loop in loops.values():  # warm up
            loop()
        collector.drain()
        for _ in range(repeats):
            for who, loop in loops.items():
                results[case][who].append(_per_call_ns(loop, ops))
            start = time.perf_counter()
            collector.drain()  # fold + hand over: the deferred work of our ops
            fold_ns[case].append((time.perf_counter() - start) / ops * 1e9)
            reader.get_metrics_data()  # let the SDK aggregate too, so memory stays flat

    print(f"# {ops} ops per loop, {repeats} repeats, medians; empty-loop cost not subtracted")
    for case, by_who in results.items():
        med = {who: statistics.median(v) for who, v in by_who.items()}
        ours, prom, otel = med["ours"], med["prometheus_client"], med["OpenTelemetry"]
        print(
            f"RATIO {case}: ours={ours:.1f}ns prometheus_client={prom:.1f}ns "
            f"ratio={ours / prom:.3f}x (target <= 0.5x, stretch 0.1x)"
        )
        print(
            f"RATIO {case} vs OpenTelemetry: ours={ours:.1f}ns OpenTelemetry={otel:.1f}ns "
            f"ratio={ours / otel:.3f}x (target <= 0.1x)"
        )
        fold = statistics.median(fold_ns[case])
        print(
            f"RATIO {case} incl. deferred fold: ours={ours + fold:.1f}ns "
            f"prometheus_client={prom:.1f}ns ratio={(ours + fold) / prom:.3f}x "
            f"(fold {fold:.1f}ns per value, paid on the background tick; target <= 0.5x)"
        )
    print(f"INFO dropped during the run: {collector.dropped()}")


if __name__ == "__main__":
    main()
