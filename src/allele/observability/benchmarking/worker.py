"""The worker side of a benchmark job: prepare the workload, calibrate, warm up, sample.

See ``measure`` for what a round and a sample are. The worker imports only what measuring needs
(no numpy unless the workload does): its start-up is paid once per process run of every cell.

Run as ``python -m allele.observability.benchmarking.worker RESULT_PATH`` with the job as JSON
on stdin; the result is written as JSON to RESULT_PATH (written to a temporary name and renamed,
so a killed worker never leaves half a file). The workload's own stdout and stderr stay free.
A workload exception becomes an ``error`` result carrying the traceback.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from datetime import UTC, datetime

from allele.observability.benchmarking import measure
from allele.observability.benchmarking.executors.base import Job, JobResult
from allele.observability.benchmarking.workloads import prepare


def run_job(job: Job, node: str | None = None) -> JobResult:
    """Measure ``job`` in this process; a failing workload gives an ``error`` result."""
    started = datetime.now(UTC)
    node = node or socket.gethostname()
    try:
        return _measure(job, started, node)
    except Exception:
        return JobResult.failed(job, "error", traceback.format_exc(), started, node)


def _measure(job: Job, started: datetime, node: str) -> JobResult:
    prepared = prepare(job.component, job.params, job.target, job.run_index)
    try:
        fn = prepared.operation
        timing = measure.measure_calls(
            fn,
            min_time=job.min_time,
            max_inner_loops=job.max_inner_loops,
            samples=job.samples,
            warmup=job.warmup,
            loops=job.inner_loops,
        )
        wall, cpu, loops = timing.wall, timing.cpu, timing.loops
        quality = {k: float(v) for k, v in prepared.quality().items()}
        metrics = {
            "peak_rss_bytes": measure.peak_rss_bytes(),
            "rounds_per_sample": float(timing.rounds),
        }
        if job.measure_memory:
            # After the timed samples: tracing allocations slows every call several-fold.
            metrics["tracemalloc_peak_bytes"] = measure.tracemalloc_peak_bytes(fn)
        metrics.update(measure.gpu_metrics())
    finally:
        prepared.close()
    samples = {"time_s": wall, "cpu_time_s": cpu}
    samples.update(measure.throughput_samples(wall, prepared.units))
    return JobResult(
        cell_index=job.cell_index,
        run_index=job.run_index,
        samples=samples,
        metrics=metrics,
        quality=quality,
        inner_loops=loops,
        node=node,
        started_at=started,
        finished_at=datetime.now(UTC),
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process (see the module docstring)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            "usage: python -m allele.observability.benchmarking.worker RESULT_PATH", file=sys.stderr
        )
        return 2
    job = Job.from_dict(json.loads(sys.stdin.read()))
    result = run_job(job)
    path = args[0]
    partial = f"{path}.part"
    with open(partial, "w", encoding="utf-8") as out:
        json.dump(result.to_dict(), out)
    os.replace(partial, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
