"""Executors: the local process pool and a real local Ray instance with 2 CPUs."""

from __future__ import annotations

import os
import socket
from collections.abc import Generator, Iterator

import pytest

from allele.errors import ConfigurationError
from allele.observability.benchmarking.executors import Job, create_executor
from allele.observability.benchmarking.executors.local import LocalExecutor
from allele.observability.benchmarking.runner import run_suite
from allele.observability.benchmarking.suites import Suite

IN_CI = os.environ.get("CI", "").lower() == "true"


def _job(cell: int, run: int, **params: object) -> Job:
    return Job(
        cell_index=cell,
        run_index=run,
        component="python",
        params={"kernel": "sum", "size": 50, **params},
        samples=2,
        warmup=0,
        min_time=0.001,
        timeout=60,
    )


def test_local_executor_runs_each_job_once_in_its_own_process() -> None:
    jobs = [_job(c, r) for r in range(2) for c in range(3)]
    results = list(LocalExecutor(workers=2).run(jobs))
    assert sorted((r.cell_index, r.run_index) for r in results) == sorted(
        (j.cell_index, j.run_index) for j in jobs
    )
    assert all(r.status == "ok" and r.node == socket.gethostname() for r in results)
    assert all(len(r.samples["time_s"]) == 2 and r.samples["items_per_s"] for r in results)


def test_local_executor_pulls_jobs_lazily() -> None:
    pulled = []

    def jobs() -> Iterator[Job]:
        for cell in range(3):
            pulled.append(cell)
            yield _job(cell, 0)

    results = LocalExecutor(workers=1).run(jobs())
    first = next(results)
    assert first.cell_index == 0 and pulled == [0]
    assert isinstance(results, Generator)
    results.close()


def test_a_bad_workload_parameter_is_an_error_result() -> None:
    [result] = list(LocalExecutor().run([_job(0, 0, kernel="nope")]))
    assert result.status == "error" and "python kernel 'nope' is unknown" in (result.error or "")


def test_unknown_executor_and_misplaced_address() -> None:
    with pytest.raises(ConfigurationError, match="unknown executor 'dask'"):
        create_executor("dask")
    with pytest.raises(ConfigurationError, match="--address is only used with --executor ray"):
        create_executor("local", address="auto")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[object]:
    try:
        import ray
    except ImportError:
        if IN_CI:
            pytest.fail("ray is not importable; CI=true requires it")
        pytest.skip("ray is not installed; pip install 'allele[ray]' to run this test")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.ray
def test_ray_executor_runs_a_tiny_suite_and_records_the_node(local_ray: object) -> None:
    import ray

    suite = Suite(
        name="tiny-ray",
        component="python",
        matrix={"kernel": ["sort", "sum"], "size": [50]},
        runs=2,
        samples=3,
        warmup=0,
        min_time=0.001,
        timeout=120,
    )
    run = run_suite(suite, executor="ray")
    node_id = ray.get_runtime_context().get_node_id()
    assert run.config["executor"] == "ray"
    for cell in run.cells:
        assert cell.status == "ok", cell.error
        assert sorted(cell.run_indices) == [0, 1]
        assert len(cell.samples["time_s"]) == 6
        assert cell.node == f"{socket.gethostname()}/ray:{node_id[:12]}"


@pytest.mark.ray
def test_ray_executor_kills_a_job_past_its_timeout(local_ray: object) -> None:
    from allele.observability.benchmarking.executors.ray import RayExecutor

    # A sort of 10 million floats cannot be prepared and timed within 0.5 s.
    slow = Job(
        cell_index=0,
        run_index=0,
        component="python",
        params={"kernel": "sort", "size": 10_000_000},
        samples=5,
        timeout=0.5,
    )
    [result] = list(RayExecutor(workers=1).run([slow]))
    assert result.status == "timeout" and "0.5 s timeout" in (result.error or "")
