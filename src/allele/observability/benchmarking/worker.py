"""The worker side of a benchmark job: prepare the workload, calibrate, warm up, sample.

See ``measure`` for what a round and a sample are. The worker imports only what measuring needs
(no numpy unless the workload does): its start-up is paid once per process run of every cell.

Run as ``python -m allele.observability.benchmarking.worker RESULT_PATH [WATCHDOG_FD]`` with
the job as JSON on stdin; the result is written as JSON to RESULT_PATH (written to a temporary
name and renamed, so a killed worker never leaves half a file). The workload's own stdout and
stderr stay free. A workload exception becomes an ``error`` result carrying the traceback.

A worker never outlives its runner nor its timeout, even when the workload holds the GIL:

- on Linux the kernel kills it when the runner dies (``PR_SET_PDEATHSIG``);
- everywhere, a thread blocks on the read end of the runner's watchdog pipe (``WATCHDOG_FD``);
  the runner holds the write end, so its death, however abrupt, is an end of file here, and the
  worker kills its process group (itself and whatever the workload started);
- the job's timeout is an interval timer whose ``SIGALRM`` keeps its default action (end the
  process, done by the kernel): the runner reads that signal as "timed out in the worker".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
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
        # The measured phase starts here: set-up (imports, building the workload) is not the
        # workload's per-operation memory.
        growth = measure.RssGrowth()
        growth.start()
        timing = measure.measure_calls(
            fn,
            min_time=job.min_time,
            max_inner_loops=job.max_inner_loops,
            samples=job.samples,
            warmup=job.warmup,
            loops=job.inner_loops,
        )
        rss_growth = growth.stop()  # before the quality figures, which are not the workload
        wall, cpu, loops = timing.wall, timing.cpu, timing.loops
        quality = {k: float(v) for k, v in prepared.quality().items()}
        gpu = measure.gpu_metrics()
        resources = measure.ResourceMeasurement(
            rss_growth_bytes=rss_growth,
            # After the timed samples: tracing allocations slows every call several-fold.
            tracemalloc_peak_bytes=(
                measure.tracemalloc_peak_bytes(fn) if job.measure_memory else None
            ),
            peak_rss_bytes=measure.peak_rss_bytes(),
            gpu_memory_used_bytes=gpu.get("gpu_memory_used_bytes"),
        )
        metrics = {"rounds_per_sample": float(timing.rounds), **gpu, **resources.to_metrics()}
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


#: The runner's pid, set by the local executor, so that a worker started after the runner
#: already died notices it.
PARENT_PID_VARIABLE = "ALLELE_BENCH_PARENT_PID"
#: How much later than the runner's deadline the worker's own timer fires: the runner reports
#: the timeout with its message when it is alive; the worker's timer is for when it is not.
TIMEOUT_GRACE_S = 1.0


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    expected = os.environ.get(PARENT_PID_VARIABLE)
    if expected and os.getppid() != int(expected):
        os._exit(1)  # the runner died before the request took effect


def watch_parent(fd: int) -> None:
    """Kill this worker's process group once the runner's end of the pipe ``fd`` closes."""

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        _kill_own_group()

    threading.Thread(target=watch, name="allele-bench-watchdog", daemon=True).start()


def limit_time(seconds: float) -> None:
    """End this process after ``seconds`` of wall time, by the kernel (SIGALRM's default)."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _kill_own_group() -> None:
    # The worker leads its own session: its group is itself and what the workload started.
    with contextlib.suppress(OSError):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process (see the module docstring)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print(
            "usage: python -m allele.observability.benchmarking.worker RESULT_PATH [WATCHDOG_FD]",
            file=sys.stderr,
        )
        return 2
    die_with_parent()
    if len(args) == 2:
        watch_parent(int(args[1]))
    job = Job.from_dict(json.loads(sys.stdin.read()))
    limit_time(job.timeout + TIMEOUT_GRACE_S)
    result = run_job(job)
    signal.setitimer(signal.ITIMER_REAL, 0)  # measured in time: writing the result is not
    path = args[0]
    partial = f"{path}.part"
    with open(partial, "w", encoding="utf-8") as out:
        json.dump(result.to_dict(), out)
    os.replace(partial, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
