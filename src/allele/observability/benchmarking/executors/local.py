"""The local executor: a fresh Python process per job, ``workers`` of them at once.

Each job starts ``python -m allele.observability.benchmarking.worker`` in a session of its own
(so a timeout kills the worker and anything it started), with the job as JSON on stdin. BLAS and
OpenMP pools are pinned to one thread unless the caller set them: jobs run side by side and
oversubscribed thread pools would make the timings say more about scheduling than the code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from allele.observability.benchmarking.executors.base import Executor, Job, JobResult

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_STDERR_TAIL = 4000
_POLL_S = 0.005


@dataclass
class _Running:
    job: Job
    process: subprocess.Popen[bytes]
    started: datetime
    deadline: float
    result_path: Path
    stderr: IO[bytes]
    timed_out: bool = False


class LocalExecutor(Executor):
    """Runs each job in a new local worker process."""

    name = "local"

    def __init__(self, workers: int = 1, python: str | None = None) -> None:
        super().__init__(workers)
        self.python = python or sys.executable
        self.node = socket.gethostname()

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        pending = iter(jobs)
        running: list[_Running] = []
        exhausted = False
        with tempfile.TemporaryDirectory(prefix="allele-bench-") as folder:
            try:
                while True:
                    while not exhausted and len(running) < self.workers:
                        job = next(pending, None)
                        if job is None:
                            exhausted = True
                            break
                        running.append(self._start(job, Path(folder)))
                    if not running:
                        return
                    finished = self._reap(running)
                    if not finished:
                        time.sleep(_POLL_S)
                    for item in finished:
                        running.remove(item)
                        yield self._collect(item)
            finally:
                for item in running:
                    _kill(item.process)
                    item.stderr.close()

    def _start(self, job: Job, folder: Path) -> _Running:
        result_path = folder / f"job-{job.cell_index}-{job.run_index}.json"
        # Closed in _collect (or on shutdown): it must outlive this function.
        stderr = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        env = dict(os.environ)
        for name in _THREAD_VARIABLES:
            env.setdefault(name, "1")
        # The worker sees the caller's import path, so suites may name modules it can import.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        started = datetime.now(UTC)
        process = subprocess.Popen(
            [self.python, "-m", "allele.observability.benchmarking.worker", str(result_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            start_new_session=True,
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(job.to_dict()).encode())
        process.stdin.close()
        return _Running(job, process, started, time.monotonic() + job.timeout, result_path, stderr)

    def _reap(self, running: list[_Running]) -> list[_Running]:
        now = time.monotonic()
        done = []
        for item in running:
            if item.process.poll() is not None:
                done.append(item)
            elif now >= item.deadline:
                _kill(item.process)
                item.timed_out = True
                done.append(item)
        return done

    def _collect(self, item: _Running) -> JobResult:
        job = item.job
        try:
            if item.timed_out:
                return JobResult.failed(
                    job,
                    "timeout",
                    f"killed after the {job.timeout:g} s timeout",
                    item.started,
                    self.node,
                )
            if item.result_path.exists():
                data = json.loads(item.result_path.read_text(encoding="utf-8"))
                return JobResult.from_dict(data)
            item.stderr.seek(0)
            tail = item.stderr.read().decode(errors="replace")[-_STDERR_TAIL:]
            return JobResult.failed(
                job,
                "error",
                f"worker exited with code {item.process.returncode} without a result\n{tail}",
                item.started,
                self.node,
            )
        finally:
            item.stderr.close()
            item.result_path.unlink(missing_ok=True)


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
