"""The executor interface: jobs (one cell, one process run) in, job results out as they finish.

An executor runs up to ``workers`` jobs at once, each in a process of its own, pulls the next job
only when a slot frees (so the runner can still skip jobs of a cell that already failed), kills a
job that outlives its timeout and reports it as a ``timeout`` result. Closing the iterator
(Ctrl-C in the runner) stops every job still running.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Job:
    """One process run of one cell: what the worker measures and how."""

    cell_index: int
    run_index: int
    component: str
    params: dict[str, Any]
    target: str | None = None
    samples: int = 20
    warmup: int = 1
    min_time: float = 0.005
    max_inner_loops: int = 1_000_000
    inner_loops: int | None = None
    measure_memory: bool = True
    timeout: float = 300.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(**data)


@dataclass
class JobResult:
    """What one process run produced: samples and figures, or a timeout or an error."""

    cell_index: int
    run_index: int
    status: str = "ok"
    samples: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    inner_loops: int = 1
    error: str | None = None
    node: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    signal: int | None = None  # the signal that killed the worker (status "killed")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        data = dict(data)
        for key in ("started_at", "finished_at"):
            if data.get(key) is not None:
                data[key] = datetime.fromisoformat(data[key])
        return cls(**data)

    @classmethod
    def failed(
        cls,
        job: Job,
        status: str,
        error: str,
        started_at: datetime,
        node: str | None = None,
        signal: int | None = None,
    ) -> JobResult:
        """A result for a job that timed out, crashed or was killed before reporting."""
        return cls(
            cell_index=job.cell_index,
            run_index=job.run_index,
            status=status,
            error=error,
            node=node or socket.gethostname(),
            started_at=started_at,
            finished_at=datetime.now(UTC),
            signal=signal,
        )


class Executor(ABC):
    """Runs jobs in worker processes, ``workers`` at a time."""

    name: str = "executor"

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    @abstractmethod
    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Results of ``jobs`` in completion order; jobs are pulled lazily as slots free."""


def create_executor(name: str, workers: int = 1, address: str | None = None) -> Executor:
    """The executor called ``name`` ("local" or "ray"); ``workers=0`` on Ray means every CPU."""
    from allele.errors import ConfigurationError

    if name == "local":
        from allele.observability.benchmarking.executors.local import LocalExecutor

        if address is not None:
            raise ConfigurationError("--address is only used with --executor ray")
        return LocalExecutor(workers=max(1, workers))
    if name == "ray":
        from allele.observability.benchmarking.executors.ray import RayExecutor

        return RayExecutor(workers=workers, address=address)
    raise ConfigurationError(f"unknown executor {name!r}; allowed: local, ray")
