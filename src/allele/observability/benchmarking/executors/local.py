"""The local executor: a fresh Python process per job, ``workers`` of them at once.

Each job starts ``python -m allele.observability.benchmarking.worker`` in a session of its own
(so a timeout kills the worker and anything it started), with the job as JSON on stdin and the
read end of a watchdog pipe whose write end only this executor holds: when the runner dies, by
SIGKILL or otherwise, every worker sees the pipe close and ends (see ``worker``). A worker
ended by a signal is reported as ``killed`` with that signal, except the ``SIGALRM`` of its own
timer, which is a ``timeout``. BLAS and
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
from allele.observability.benchmarking.worker import PARENT_PID_VARIABLE

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
        watch_read, watch_write = os.pipe()  # both ends are not inherited unless passed
        with tempfile.TemporaryDirectory(prefix="allele-bench-") as folder:
            try:
                while True:
                    while not exhausted and len(running) < self.workers:
                        job = next(pending, None)
                        if job is None:
                            exhausted = True
                            break
                        running.append(self._start(job, Path(folder), watch_read))
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
                os.close(watch_read)
                os.close(watch_write)

    def _start(self, job: Job, folder: Path, watchdog: int) -> _Running:
        result_path = folder / f"job-{job.cell_index}-{job.run_index}.json"
        # Closed in _collect (or on shutdown): it must outlive this function.
        stderr = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        env = dict(os.environ)
        for name in _THREAD_VARIABLES:
            env.setdefault(name, "1")
        # The worker sees the caller's import path, so suites may name modules it can import.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env[PARENT_PID_VARIABLE] = str(os.getpid())
        started = datetime.now(UTC)
        command = [self.python, "-m", "allele.observability.benchmarking.worker", str(result_path)]
        process = subprocess.Popen(
            [*command, str(watchdog)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            start_new_session=True,
            pass_fds=(watchdog,),
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
            code = item.process.returncode
            if code == -signal.SIGALRM:
                return JobResult.failed(
                    job,
                    "timeout",
                    f"stopped by its own timer after the {job.timeout:g} s timeout",
                    item.started,
                    self.node,
                )
            if code < 0:
                name = _signal_name(-code)
                hint = " (the out-of-memory killer sends it)" if -code == signal.SIGKILL else ""
                return JobResult.failed(
                    job,
                    "killed",
                    f"worker killed by signal {-code} ({name}){hint}\n{tail}",
                    item.started,
                    self.node,
                    signal=-code,
                )
            return JobResult.failed(
                job,
                "error",
                f"worker exited with code {code} without a result\n{tail}",
                item.started,
                self.node,
            )
        finally:
            item.stderr.close()
            item.result_path.unlink(missing_ok=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
