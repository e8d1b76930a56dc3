"""``allele bench run | list | baseline set``: the running half of ``allele bench``.

Exit codes: 0 every cell measured, 1 some cells timed out or failed (the others are stored),
2 bad input (unknown suite, malformed suite file, unreachable store), 130 interrupted (what was
measured is stored; continue with ``--resume``).
"""

from __future__ import annotations

from typing import Any

import typer

from allele.cli import bench_app

baseline_app = typer.Typer(help="Named baselines that `allele bench check` compares against.")
bench_app.add_typer(baseline_app, name="baseline")

_STORE = typer.Option(
    None, "--store", envvar="ALLELE_STORE_URI", help="Store URI (default sqlite:///allele.db)."
)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _fail(message: str, code: int = 2) -> typer.Exit:
    _console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@bench_app.command("run")
def run(
    suite: str = typer.Argument(..., help="A built-in suite name or a suite TOML file."),
    executor: str = typer.Option("local", "--executor", help="Where jobs run: local or ray."),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster address (e.g. auto); only with --executor ray."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the latest unfinished run of this suite."
    ),
    store: str | None = _STORE,
    runs: int | None = typer.Option(None, "--runs", min=1, help="Worker processes per cell."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Worker processes at once (default $ALLELE_BENCHMARK_WORKERS).",
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, help="Seconds one process run may take."
    ),
    quick: bool = typer.Option(False, "--quick", help="Run the suite's reduced [quick] variant."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    mlflow: bool | None = typer.Option(
        None,
        "--mlflow/--no-mlflow",
        help="Track the run in MLflow (default: $ALLELE_MLFLOW_ENABLED and "
        "$ALLELE_MLFLOW_AUTO_EXPERIMENT_TRACKING).",
    ),
) -> None:
    """Measure every cell of a suite in worker processes and store the results."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.suites import resolve_suite
    from allele.observability.store import open_store
    from allele.observability.store.faults import safe_url

    try:
        chosen = resolve_suite(suite)
        if quick:
            chosen = chosen.quick_variant()
        chosen = chosen.resolved(workers=workers, timeout=timeout)
        opened = open_store(store)
        tracker = _mlflow_tracker(mlflow, opened, suite)
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    cells = len(chosen.cells())
    console.print(
        f"suite [bold]{chosen.name}[/bold]: {cells} cells x {runs or chosen.runs} processes, "
        f"executor {executor}, store {safe_url(opened.uri)}",
        highlight=False,
    )
    try:
        result = run_suite(
            chosen,
            store=opened,
            executor=executor,
            address=address,
            resume=resume,
            progress=progress,
            runs=runs,
            observers=[tracker] if tracker is not None else [],
        )
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: what was measured is stored; continue with the "
            f"same command plus --resume (`allele bench run {suite} ... --resume`)"
        )
        raise typer.Exit(130) from None
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    finally:
        if tracker is not None:
            tracker.close()
    _print_run(console, result)
    if tracker is not None:
        console.print(f"tracked in MLflow at {tracker.config.tracking_uri}", highlight=False)
    failed = [c for c in result.cells if c.status != "ok"]
    console.print(f"stored as suite id [bold]{result.suite_id}[/bold]", highlight=False)
    if failed:
        raise _fail(f"{len(failed)} of {len(result.cells)} cells did not finish", code=1)


def _mlflow_tracker(requested: bool | None, store: Any, suite: str) -> Any:
    """The MLflow observer of this run (``experiment_tracking.tracker_for``), or None."""
    from pathlib import Path

    from allele.observability.benchmarking.experiment_tracking import tracker_for

    suite_file = suite if Path(suite).is_file() else None
    return tracker_for(requested, store=store, suite_file=suite_file)


def _print_run(console: Any, result: Any) -> None:
    from rich.table import Table

    from allele.observability.benchmarking.report.summary import format_value

    table = Table(title=f"{result.name} [{result.suite_id}]", title_justify="left")
    table.add_column("cell", overflow="fold")
    table.add_column("status")
    table.add_column("time/op (p50)", justify="right")
    table.add_column("p95", justify="right")
    table.add_column("samples", justify="right")
    table.add_column("node")
    for cell in result.cells:
        m = cell.metrics
        table.add_row(
            cell.key,
            cell.status if cell.status == "ok" else f"[red]{cell.status}[/red]",
            format_value(m.get("latency_p50_s"), "time_s"),
            format_value(m.get("latency_p95_s"), "time_s"),
            str(len(cell.samples.get("time_s", []))),
            cell.node or "",
        )
    console.print(table)


@bench_app.command("list")
def list_command(
    name: str | None = typer.Option(None, "--name", help="Only the runs of this suite."),
    limit: int = typer.Option(100, "--limit", min=1, help="How many runs, newest first."),
    store: str | None = _STORE,
) -> None:
    """List the built-in suites and the stored runs, newest first."""
    from rich.table import Table

    from allele.errors import AlleleError
    from allele.observability.benchmarking.storage import list_baselines, list_runs
    from allele.observability.benchmarking.suites import builtin_suite_names
    from allele.observability.store import open_store

    try:
        opened = open_store(store)
        summaries = list_runs(opened, name=name, limit=limit)
        baselines = list_baselines(opened)
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    console.print(f"built-in suites: {', '.join(builtin_suite_names())}", highlight=False)
    marks: dict[str, list[str]] = {}
    for baseline, suite_id in baselines.items():
        marks.setdefault(suite_id, []).append(baseline)
    table = Table(title="stored runs", title_justify="left")
    for column in ("suite id", "suite", "component", "created (UTC)", "cells", "status"):
        table.add_column(column, no_wrap=column in ("suite id", "created (UTC)"))
    table.add_column("baselines")
    for s in summaries:
        table.add_row(
            s.suite_id,
            s.name,
            s.component,
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(s.n_cells),
            s.status,
            ", ".join(sorted(marks.get(s.suite_id, []))),
        )
    console.print(table)


@baseline_app.command("set")
def baseline_set(
    name: str = typer.Argument(..., help="Baseline name, e.g. main or v1.2."),
    suite_id: str = typer.Argument(..., help="The stored run to use (see `allele bench list`)."),
    store: str | None = _STORE,
) -> None:
    """Point a named baseline at a stored run."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.storage import set_baseline
    from allele.observability.store import open_store

    try:
        set_baseline(open_store(store), name, suite_id)
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    _console().print(f"baseline [bold]{name}[/bold] -> {suite_id}", highlight=False)
