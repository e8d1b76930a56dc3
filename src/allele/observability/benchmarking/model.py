"""The data model of benchmark results: a suite run holds cells, a cell holds raw samples.

Plain dataclasses with a JSON-ready ``to_dict`` / ``from_dict``; the runner produces them, the
storage persists them, statistics, comparison and reports read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allele.observability.benchmarking.measure import ResourceMeasurement

# The primary timing metric of every cell: seconds per operation, one sample per measured repeat.
PRIMARY_METRIC = "time_s"

# "partial": some of the cell's process runs are measured and stored, the run was interrupted
# before the others (``--resume`` measures only the missing ones). "killed": a worker was ended
# by a signal it did not send itself (``signal`` names it; the out-of-memory killer's SIGKILL).
CELL_STATUSES = ("ok", "timeout", "error", "killed", "partial")
#: The statuses of a cell whose failed job ``--resume`` runs again (unless --no-retry-failed).
FAILED_CELL_STATUSES = ("timeout", "error", "killed")

# "running" while the runner works (or after it was killed), "interrupted" after Ctrl-C or
# SIGTERM, "failed" when every job ran but some cells failed, "complete" once every cell is
# measured. All but "complete" are resumable.
RUN_STATUSES = ("running", "interrupted", "failed", "complete")


def cell_key(params: dict[str, Any]) -> str:
    """A stable identifier of a cell from its parameters: ``mutation_rate=0.1,population=50``."""
    return ",".join(f"{k}={params[k]!r}" for k in sorted(params))


class ParameterSet(dict[str, Any]):
    """One combination of a parameter matrix: ``component`` and the parameters of one cell.

    A plain dict (``{'component': 'evolution', 'population_size': 50, ...}``) that also names
    its parts; ``MatrixBenchmarkSettings.create_matrix_combinations`` returns these and
    ``run_benchmark`` measures one.
    """

    @property
    def component(self) -> str:
        return str(self.get("component", ""))

    @property
    def params(self) -> dict[str, Any]:
        """The parameters without the component."""
        return {k: v for k, v in self.items() if k != "component"}

    @property
    def key(self) -> str:
        """The key of the cell these parameters make (``cell_key``)."""
        return cell_key(self.params)


@dataclass
class CellResult:
    """One point of the parameter grid, measured.

    ``samples`` maps a metric name to its raw samples (``time_s`` always, when ``status`` is
    "ok"; also ``cpu_time_s`` and any workload throughput per sample). ``metrics`` holds scalar
    figures of the cell: workload quality (``best_fitness``, ``memory_capacity``...),
    the workload's own memory (``rss_growth_bytes``: how far the resident set grew during the
    measured phase; ``tracemalloc_peak_bytes``: the allocation peak of one call), the process's
    ``peak_rss_bytes`` (interpreter and imports included), GPU figures when present.

    ``run_indices`` lists the process runs that produced the samples, in order: each run
    contributes ``len(samples["time_s"]) / len(run_indices)`` timing samples and one value of
    each per-run figure (quality, memory), so samples can be grouped by process.
    """

    params: dict[str, Any]
    status: str = "ok"
    samples: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inner_loops: int = 1
    processes: int = 1
    error: str | None = None
    node: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_indices: list[int] = field(default_factory=list)
    signal: int | None = None

    @property
    def key(self) -> str:
        return cell_key(self.params)

    @property
    def resources(self) -> ResourceMeasurement:
        """The cell's memory figures (the largest over its process runs) as one object."""
        from allele.observability.benchmarking.measure import ResourceMeasurement

        return ResourceMeasurement.from_metrics(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = _iso(self.started_at)
        data["finished_at"] = _iso(self.finished_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellResult:
        data = dict(data)
        data["started_at"] = _parse(data.get("started_at"))
        data["finished_at"] = _parse(data.get("finished_at"))
        return cls(**data)


@dataclass
class SuiteRun:
    """One execution of a suite: its configuration, the machine and commit, and every cell."""

    name: str
    component: str
    suite_id: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    config: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    commit: dict[str, Any] = field(default_factory=dict)
    cells: list[CellResult] = field(default_factory=list)
    status: str = "complete"

    def cell(self, key: str) -> CellResult | None:
        """The cell whose ``key`` is ``key``, or None."""
        for c in self.cells:
            if c.key == key:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "component": self.component,
            "suite_id": self.suite_id,
            "created_at": _iso(self.created_at),
            "config": self.config,
            "machine": self.machine,
            "commit": self.commit,
            "cells": [c.to_dict() for c in self.cells],
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteRun:
        created = _parse(data.get("created_at")) or datetime.now(UTC)
        return cls(
            name=data["name"],
            component=data["component"],
            suite_id=data.get("suite_id", ""),
            created_at=created,
            config=dict(data.get("config", {})),
            machine=dict(data.get("machine", {})),
            commit=dict(data.get("commit", {})),
            cells=[CellResult.from_dict(c) for c in data.get("cells", [])],
            status=data.get("status", "complete"),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)
