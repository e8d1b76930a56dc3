"""Run a suite: every cell in worker processes, interleaved, each result stored as it arrives.

>>> from allele.observability.benchmarking.runner import run_suite
>>> from allele.observability.benchmarking.suites import builtin_suite
>>> run = run_suite(builtin_suite("python").quick_variant(), store="sqlite:///allele.db")
... # doctest: +SKIP

A cell is measured by ``runs`` worker processes (jobs); each process calibrates its inner loop,
warms up and takes ``samples`` samples. Jobs go round-robin over the cells (run 0 of every
cell, then run 1 of every cell...) so that slow drift of the machine spreads over all cells
instead of biasing the last ones. A job that times out or crashes ends its cell with that status
(the traceback is kept) and the suite goes on.

With a store, the run is stored when it starts and each cell is written after every one of its
jobs (status ``partial`` until all runs are in), so a run killed at any point keeps everything it
measured. A run ends ``complete`` when every cell is measured, ``failed`` when some cells timed
out, crashed or were killed, ``interrupted`` after Ctrl-C or SIGTERM (handled alike: the
workers are stopped, what was measured is stored). ``resume=True`` continues the latest run of
the suite that is not complete and runs exactly its missing jobs, and the failed ones too
unless ``retry_failed=False``; the process runs a failed cell had finished are kept.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from allele.errors import BenchmarkError
from allele.observability.benchmarking import measure, storage
from allele.observability.benchmarking.executors.base import (
    Executor,
    Job,
    JobResult,
    create_executor,
)
from allele.observability.benchmarking.machine import code_commit_info, load_average, machine_info
from allele.observability.benchmarking.model import FAILED_CELL_STATUSES, CellResult, SuiteRun
from allele.observability.benchmarking.progress import Progress, RichProgress, SilentProgress
from allele.observability.benchmarking.suites import Suite

# Figures measured once per process run (not per timing sample); stored as per-run samples.
_MEMORY_FIGURES = (
    "rss_growth_bytes",
    "peak_rss_bytes",
    "tracemalloc_peak_bytes",
    "gpu_memory_used_bytes",
)
_TIMINGS = ("time_s", "cpu_time_s")


class RunObserver(Protocol):
    """Told about a suite run as it goes (e.g. ``experiment_tracking.SuiteTracker``).

    ``suite_started`` once the run exists, ``cell_finished`` when a cell has all its process
    runs (or failed), ``suite_finished`` at the end, also after an interruption (the run's
    status says which). An observer that raises is logged and ignored.
    """

    def suite_started(self, run: SuiteRun) -> None: ...

    def cell_finished(self, run: SuiteRun, cell: CellResult) -> None: ...

    def suite_finished(self, run: SuiteRun) -> None: ...


def _notify(observers: Sequence[RunObserver], event: str, *args: Any) -> None:
    for observer in observers:
        try:
            getattr(observer, event)(*args)
        except Exception:  # an observer must not fail the suite
            logging.getLogger(__name__).exception("run observer %r failed on %s", observer, event)


@dataclass
class _Cell:
    """A cell being measured: what its finished jobs produced so far."""

    index: int
    result: CellResult
    runs: int

    @property
    def finished(self) -> bool:
        return self.result.status != "partial" or len(self.result.run_indices) >= self.runs

    def missing_runs(self) -> list[int]:
        done = set(self.result.run_indices)
        return [r for r in range(self.runs) if r not in done]


def run_suite(
    suite: Suite,
    *,
    store: Any = None,
    executor: str | Executor = "local",
    address: str | None = None,
    resume: bool = False,
    progress: bool | Progress = False,
    runs: int | None = None,
    retry_failed: bool = True,
    observers: Sequence[RunObserver] = (),
) -> SuiteRun:
    """Measure every cell of ``suite``; store each result in ``store`` (a Store or URI) if given.

    ``runs`` overrides the suite's process runs per cell; ``observers`` are told about the run,
    each finished cell and the end. Raises KeyboardInterrupt (an ``Interrupted`` carrying the
    signal) after marking the stored run ``interrupted`` when interrupted by Ctrl-C or SIGTERM.
    """
    from allele.observability.benchmarking.config import get_matrix_benchmark_settings

    settings = get_matrix_benchmark_settings()
    # On Ray, a suite that names no worker count uses every CPU of the cluster.
    cluster_wide = (
        executor == "ray" and suite.workers is None and ("workers" not in settings.model_fields_set)
    )
    suite = suite.resolved(settings, runs=runs)
    assert suite.runs is not None and suite.workers is not None and suite.timeout is not None
    runner = (
        executor
        if isinstance(executor, Executor)
        else create_executor(
            executor, workers=0 if cluster_wide else suite.workers, address=address
        )
    )
    run, cells = _start_run(suite, store, resume, runner.name, retry_failed)
    reporter: Progress = (
        progress
        if not isinstance(progress, bool)
        else RichProgress()
        if progress
        else SilentProgress()
    )
    total = len(cells) * suite.runs
    done = sum(len(c.result.run_indices) for c in cells) + sum(
        len(c.missing_runs()) for c in cells if c.finished
    )
    reporter.start(suite.name, total, done)
    _notify(observers, "suite_started", run)
    results = runner.run(_jobs(suite, cells))
    restore = _stop_on_sigterm()
    try:
        for result in results:
            cell = cells[result.cell_index]
            _absorb(cell, result)
            if store is not None:
                storage.save_cell(store, run.suite_id, cell.result, position=cell.index)
            reporter.advance(result, cell.result.key)
            if observers and cell.finished:
                _notify(observers, "cell_finished", run, cell.result)
            if cell.finished and result.status != "ok":
                # Its remaining runs will not happen: count them as done for the ETA.
                for _ in cell.missing_runs():
                    reporter.advance(_skipped(result), cell.result.key)
    except BaseException:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the workers still running
        run.status = "interrupted"
        if store is not None:
            storage.set_run_status(store, run.suite_id, "interrupted")
        run.cells = [c.result for c in cells]
        _notify(observers, "suite_finished", run)
        raise
    finally:
        restore()
        reporter.stop()
    run.cells = [c.result for c in cells]
    failed = any(c.result.status in FAILED_CELL_STATUSES for c in cells)
    # A run with failed cells stays resumable: ``--resume`` runs their failed jobs again.
    run.status = "failed" if failed else "complete"
    run.machine["load_average_end"] = load_average()  # for the caveats
    if store is not None:
        storage.set_run_status(store, run.suite_id, run.status, machine=run.machine)
    _notify(observers, "suite_finished", run)
    return run


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (``signum``: SIGINT for Ctrl-C, or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on_sigterm() -> Callable[[], None]:
    """Handle SIGTERM like Ctrl-C while the run lasts; returns the function restoring it.

    Only the main thread can set handlers; elsewhere SIGTERM keeps its own.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, stop)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


async def run_benchmark(
    combo: Mapping[str, Any],
    *,
    store: Any = None,
    executor: str | Executor = "local",
    runs: int | None = None,
    quick: bool = False,
) -> CellResult:
    """Measure one parameter combination (a ``ParameterSet``: ``component`` and parameters).

    The design documents' loop::

        for combo in get_matrix_benchmark_settings().create_matrix_combinations():
            result = await run_benchmark(combo)

    The combination is a one-cell suite with the run settings of the component's built-in
    suite (its ``[quick]`` ones with ``quick=True``) and the ``ALLELE_BENCHMARK_*`` variables;
    its fixed parameters fill what the combination leaves out. It runs in worker processes
    like any suite, off the event loop (a thread waits for them), stored under
    ``<component>.cell`` when ``store`` is given. Returns the measured cell.
    """
    import asyncio

    from allele.observability.benchmarking.suites import builtin_suite, builtin_suite_names

    params = dict(combo)
    component = str(params.pop("component", ""))
    if component in builtin_suite_names():
        base = builtin_suite(component)
        base = base.quick_variant() if quick else base
    else:
        base = Suite(name=component or "benchmark", component=component)
    data = base.model_dump()
    fixed = {**base.params, **params}
    data.update(
        name=f"{base.name}.cell",
        params={},
        matrix={name: [value] for name, value in fixed.items()},
        zip=[],
        exclude=[],
        quick={},
    )
    suite = Suite(**data)
    run = await asyncio.to_thread(run_suite, suite, store=store, executor=executor, runs=runs)
    return run.cells[0]


def _start_run(
    suite: Suite, store: Any, resume: bool, executor_name: str, retry_failed: bool = True
) -> tuple[SuiteRun, list[_Cell]]:
    assert suite.runs is not None
    fingerprint = suite.fingerprint()
    previous = storage.latest_unfinished(store, suite.name) if (resume and store) else None
    if resume and store is None:
        raise BenchmarkError("resume needs a store holding the interrupted run")
    if previous is not None:
        if previous.config.get("fingerprint") != fingerprint:
            raise BenchmarkError(
                f"cannot resume suite {suite.name!r} run {previous.suite_id}: the suite changed "
                "since that run (matrix, params or run settings); run it again without --resume"
            )
        stored = {c.key: c for c in previous.cells}
        cells = [
            _Cell(i, stored.get(_key(params)) or _empty_cell(params), suite.runs)
            for i, params in enumerate(suite.cells())
        ]
        if retry_failed:
            for cell in cells:
                if cell.result.status in FAILED_CELL_STATUSES:
                    _reopen(cell.result)
        previous.status = "running"
        storage.set_run_status(store, previous.suite_id, "running")
        return previous, cells
    config = {**suite.to_config(), "fingerprint": fingerprint, "executor": executor_name}
    run = SuiteRun(
        name=suite.name,
        component=suite.component,
        # Observers key what they record by the id, so a run without a store needs one too.
        suite_id=storage.new_suite_id(),
        config=config,
        machine=machine_info(),
        commit=code_commit_info(),
        status="running",
    )
    if store is not None:
        storage.create_run(store, run, fingerprint)
    cells = [_Cell(i, _empty_cell(params), suite.runs) for i, params in enumerate(suite.cells())]
    return run, cells


def _reopen(cell: CellResult) -> None:
    """A failed cell made ready to run again: its finished process runs stay, the failed job
    and the ones skipped after it are missing again."""
    cell.status = "partial"
    cell.error = None
    cell.signal = None


def _key(params: dict[str, Any]) -> str:
    return CellResult(params=params).key


def _empty_cell(params: dict[str, Any]) -> CellResult:
    return CellResult(params=params, status="partial", processes=0, inner_loops=0)


def _jobs(suite: Suite, cells: list[_Cell]) -> Iterator[Job]:
    """Jobs round-robin over cells; evaluated lazily so failed cells lose their later jobs."""
    assert suite.runs is not None and suite.timeout is not None
    todo = {c.index: set(c.missing_runs()) for c in cells if not c.finished}
    for run_index in range(suite.runs):
        for cell in cells:
            if cell.finished or run_index not in todo.get(cell.index, ()):
                continue
            yield Job(
                cell_index=cell.index,
                run_index=run_index,
                component=suite.component,
                params=suite.cell_params(cell.result.params),
                target=suite.target,
                samples=suite.samples,
                warmup=suite.warmup,
                min_time=suite.min_time,
                max_inner_loops=suite.max_inner_loops,
                # Later processes reuse the first one's calibration: samples stay comparable.
                inner_loops=cell.result.inner_loops or None,
                measure_memory=bool(suite.measure_memory),
                timeout=suite.timeout,
            )


def _absorb(cell: _Cell, result: JobResult) -> None:
    """Add one job's result to its cell and recompute the cell's figures."""
    c = cell.result
    c.started_at = min(filter(None, [c.started_at, result.started_at]), default=None)
    c.finished_at = max(filter(None, [c.finished_at, result.finished_at]), default=None)
    nodes = set(filter(None, (c.node or "").split(","))) | ({result.node} if result.node else set())
    c.node = ",".join(sorted(nodes)) or None
    if result.status != "ok":
        c.status = result.status
        c.error = result.error
        c.signal = result.signal
        return
    c.run_indices.append(result.run_index)
    c.processes = len(c.run_indices)
    if not c.inner_loops:
        c.inner_loops = result.inner_loops
    if "rounds_per_sample" in result.metrics:
        # Calls per round are fixed by the first run; each run counts its rounds per sample.
        c.metrics.setdefault("rounds_per_sample", result.metrics["rounds_per_sample"])
    for name, values in result.samples.items():
        c.samples.setdefault(name, []).extend(values)
    per_run = {
        **result.quality,
        **{k: v for k, v in result.metrics.items() if k in _MEMORY_FIGURES},
    }
    for name, value in per_run.items():
        c.samples.setdefault(name, []).append(value)
    gpu = {k: v for k, v in result.metrics.items() if k.startswith("gpu_") and k not in per_run}
    c.metrics.update(gpu)
    _refresh_metrics(cell)
    if len(c.run_indices) >= cell.runs:
        c.status = "ok"


def _refresh_metrics(cell: _Cell) -> None:
    c = cell.result
    c.metrics.update(measure.latency_metrics(c.samples.get("time_s", [])))
    for name, values in c.samples.items():
        if name in _MEMORY_FIGURES:
            c.metrics[name] = float(max(values))
        elif name not in _TIMINGS:
            # Throughput per sample and quality per run: the median is the cell's figure.
            c.metrics[name] = float(np.median(values))


def _skipped(result: JobResult) -> JobResult:
    return JobResult(cell_index=result.cell_index, run_index=-1, status="skipped")
