"""``allele bench run | list | baseline set``: the running half of ``allele bench``.

Exit codes: 0 every cell measured, 1 some cells timed out, failed or were killed (the others are
stored; ``--resume`` runs the failed jobs again), 2 bad input (unknown suite, malformed suite
file, unreachable store), 130 interrupted by Ctrl-C and 143 by SIGTERM (what was measured is
stored; continue with ``--resume``).
"""

from __future__ import annotations

import signal
from typing import Any

import typer

from allele.cli import bench_app
from allele.cli.output import escape, fail

baseline_app = typer.Typer(help="Named baselines that `allele bench check` compares against.")
bench_app.add_typer(baseline_app, name="baseline")

#: Characters of a suite id shown in tables; any unique prefix names a run.
SHORT_ID = 12

_STORE = typer.Option(
    None, "--store", envvar="ALLELE_STORE_URI", help="Store URI (default sqlite:///allele.db)."
)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _fail(message: str, code: int = 2) -> typer.Exit:
    return fail(message, code)


@bench_app.command("run")
def run(
    suite: str = typer.Argument(..., help="A built-in suite name or a suite TOML file."),
    executor: str = typer.Option("local", "--executor", help="Where jobs run: local or ray."),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster address (e.g. auto); only with --executor ray."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the latest unfinished or failed run of this suite."
    ),
    retry_failed: bool = typer.Option(
        True,
        "--retry-failed/--no-retry-failed",
        help="With --resume, run the failed, timed-out and killed jobs again too.",
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
    max_cells: int | None = typer.Option(
        None, "--max-cells", min=1, help="Allow a grid of more cells than the suite's max_cells."
    ),
    mlflow: bool | None = typer.Option(
        None,
        "--mlflow/--no-mlflow",
        help="Track the run in MLflow (default: $ALLELE_MLFLOW_ENABLED and "
        "$ALLELE_MLFLOW_AUTO_EXPERIMENT_TRACKING).",
    ),
) -> None:
    """Measure every cell of a suite in worker processes and store the results."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking import storage
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.suites import resolve_suite
    from allele.observability.store import open_store
    from allele.observability.store.faults import safe_url

    try:
        chosen = resolve_suite(suite, max_cells=max_cells)
        if quick:
            chosen = chosen.quick_variant()
        chosen = chosen.resolved(workers=workers, timeout=timeout)
        opened = open_store(store)
        tracker = _mlflow_tracker(mlflow, opened, suite)
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    if chosen.target is not None:
        # A function suite runs the user's code: say which before it runs.
        console.print(
            f"importing benchmark target [bold]{chosen.target}[/bold] (its code runs as you, "
            "in every worker)",
            highlight=False,
        )
    cells = len(chosen.cells())
    console.print(
        f"suite [bold]{chosen.name}[/bold]: {cells} cells x {runs or chosen.runs} processes, "
        f"executor {executor}, store {safe_url(opened.uri)}",
        highlight=False,
    )
    try:
        if resume and storage.latest_unfinished(opened, chosen.name) is None:
            console.print(
                f"no unfinished or failed run of {chosen.name} to resume: starting a new run",
                highlight=False,
            )
        result = run_suite(
            chosen,
            store=opened,
            executor=executor,
            address=address,
            resume=resume,
            progress=progress,
            runs=runs,
            retry_failed=retry_failed,
            observers=[tracker] if tracker is not None else [],
        )
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        console.print(
            f"[yellow]interrupted[/yellow] ({signal.Signals(signum).name}): what was measured is "
            "stored; continue with the same command plus --resume "
            f"(`allele bench run {suite} ... --resume`)"
        )
        raise typer.Exit(128 + signum) from None
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
        raise _fail(
            f"{len(failed)} of {len(result.cells)} cells did not finish; the run is stored as "
            "failed: `--resume` runs exactly the failed jobs again",
            code=1,
        )


def _mlflow_tracker(requested: bool | None, store: Any, suite: str) -> Any:
    """The MLflow observer of this run (``experiment_tracking.tracker_for``), or None."""
    from pathlib import Path

    from allele.observability.benchmarking.experiment_tracking import tracker_for

    suite_file = suite if Path(suite).is_file() else None
    return tracker_for(requested, store=store, suite_file=suite_file)


def _print_run(console: Any, result: Any) -> None:
    from allele.observability.benchmarking.report.terminal import render_run

    # The report's table: parameters as columns, failures and noise caveats under it.
    console.print(render_run(result))


@bench_app.command("list")
def list_command(
    name: str | None = typer.Option(None, "--name", help="Only the runs of this suite."),
    limit: int = typer.Option(100, "--limit", min=1, help="How many runs, newest first."),
    store: str | None = _STORE,
) -> None:
    """List the built-in suites and the stored runs, newest first."""

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
    from allele.observability.benchmarking.report.terminal import compact_table, fit_columns

    console = _console()
    console.print(f"built-in suites: {', '.join(builtin_suite_names())}", highlight=False)
    marks: dict[str, list[str]] = {}
    for baseline, suite_id in baselines.items():
        marks.setdefault(suite_id, []).append(baseline)
    # Short ids (any unique prefix names a run) so that the table reads at 80 columns.
    table = compact_table("stored runs")
    for column in ("id", "suite", "created (UTC)", "cells", "status"):
        table.add_column(column, no_wrap=column != "suite", overflow="fold")
    table.add_column("baselines", overflow="fold")
    for s in summaries:
        table.add_row(
            s.suite_id[:SHORT_ID],
            escape(s.name),
            s.created_at.strftime("%Y-%m-%d %H:%M"),
            str(s.n_cells),
            escape(s.status),
            escape(", ".join(sorted(marks.get(s.suite_id, [])))),
        )
    fit_columns(table)
    console.print(table)


@baseline_app.command("list")
def baseline_list(store: str | None = _STORE) -> None:
    """List the named baselines and the runs they point at."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.report.terminal import compact_table, fit_columns
    from allele.observability.benchmarking.storage import list_baselines, list_runs
    from allele.observability.store import open_store

    try:
        opened = open_store(store)
        baselines = list_baselines(opened)
        runs = {s.suite_id: s for s in list_runs(opened, limit=1_000_000)}
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    if not baselines:
        console.print(
            "no baselines; set one with `allele bench baseline set NAME SUITE_ID` "
            "(suite ids: `allele bench list`)",
            highlight=False,
        )
        return
    table = compact_table("baselines")
    for column in ("baseline", "id", "suite", "created (UTC)", "status"):
        table.add_column(column, no_wrap=column not in ("baseline", "suite"), overflow="fold")
    for name, suite_id in sorted(baselines.items()):
        run = runs.get(suite_id)
        table.add_row(
            escape(name),
            suite_id[:SHORT_ID],
            escape(run.name) if run else "-",
            run.created_at.strftime("%Y-%m-%d %H:%M") if run else "-",
            run.status if run else "missing",
        )
    fit_columns(table)
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
    _console().print(f"baseline [bold]{escape(name)}[/bold] -> {escape(suite_id)}", highlight=False)
