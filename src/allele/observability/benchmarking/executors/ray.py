"""The Ray executor: jobs as Ray tasks on an existing cluster (``--executor ray --address auto``).

Each job is a task with ``num_cpus=1`` and ``max_calls=1``, so Ray gives it a fresh worker
process (the same isolation as the local executor) on whichever node has a free CPU; the result
names that node (hostname and Ray node id). A task that outlives its timeout is cancelled with
``force=True``, which kills its worker process. Ray is imported only when this executor runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from allele.errors import BenchmarkError, require
from allele.observability.benchmarking.executors.base import Executor, Job, JobResult

_THREAD_VARIABLES = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run_remote(job_data: dict[str, Any]) -> dict[str, Any]:
    """The task body, run in a Ray worker process: measure the job, name the node."""
    import socket

    import ray

    from allele.observability.benchmarking.worker import run_job

    node = f"{socket.gethostname()}/ray:{ray.get_runtime_context().get_node_id()[:12]}"
    return run_job(Job.from_dict(job_data), node=node).to_dict()


class RayExecutor(Executor):
    """Runs each job as a Ray task in a fresh worker process on the cluster."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        super().__init__(workers or 0)
        self.address = address

    def _connect(self) -> Any:
        ray: Any = require("ray", "ray")
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": _THREAD_VARIABLES},
                )
            except ConnectionError as exc:
                raise BenchmarkError(
                    f"cannot reach a Ray cluster at address {self.address!r}: {exc}; start one "
                    "with `ray start --head` or pass --address"
                ) from exc
        return ray

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        ray = self._connect()
        # Without an explicit worker count, use every CPU of the cluster.
        slots = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=1, max_calls=1, max_retries=0)(_run_remote)
        pending = iter(jobs)
        running: dict[Any, tuple[Job, float, datetime]] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(running) < slots:
                    job = next(pending, None)
                    if job is None:
                        exhausted = True
                        break
                    ref = task.remote(job.to_dict())
                    running[ref] = (job, time.monotonic() + job.timeout, datetime.now(UTC))
                if not running:
                    return
                next_deadline = min(deadline for _, deadline, _ in running.values())
                wait_s = max(0.0, min(1.0, next_deadline - time.monotonic()))
                ready, _ = ray.wait(list(running), num_returns=1, timeout=wait_s)
                for ref in ready:
                    job, _, started = running.pop(ref)
                    yield self._collect(ray, ref, job, started)
                now = time.monotonic()
                for ref, (job, deadline, started) in list(running.items()):
                    if now >= deadline:
                        ray.cancel(ref, force=True)
                        del running[ref]
                        yield JobResult.failed(
                            job, "timeout", f"killed after the {job.timeout:g} s timeout", started
                        )
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    @staticmethod
    def _collect(ray: Any, ref: Any, job: Job, started: datetime) -> JobResult:
        try:
            return JobResult.from_dict(ray.get(ref))
        except Exception as exc:  # the worker process died (crash, OOM kill) before reporting
            return JobResult.failed(job, "error", f"Ray task failed: {exc}", started)
