"""``allele bench optimize``: search a suite's grid in few measurements, then confirm the winner.

Exit codes: 0 done (the report says whether the improvement held), 2 bad input, 130
interrupted (every measured cell is stored; continue with ``--resume``).
"""

from __future__ import annotations

from typing import Any

import typer

from allele.cli import bench_app


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _fail(message: str, code: int = 2) -> typer.Exit:
    from rich.markup import escape

    _console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _parse_current(text: str | None) -> dict[str, Any] | None:
    """``population_size=100,mutation_rate=0.1`` -> a dict with numbers parsed."""
    import tomllib

    from allele.errors import ValidationError

    if not text:
        return None
    current: dict[str, Any] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"--current {text!r}: expected NAME=VALUE[,NAME=VALUE...]")
        try:
            current[name.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            current[name.strip()] = value.strip()
    return current


@bench_app.command("optimize")
def optimize(
    suite: str = typer.Argument(..., help="A built-in suite name or a suite TOML file."),
    budget: int = typer.Option(..., "--budget", min=1, help="Cells to measure in the search."),
    objective: str = typer.Option(
        "time_s", "--objective", help="The figure to optimise (time_s, best_fitness, ...)."
    ),
    maximize: bool | None = typer.Option(
        None,
        "--maximize/--minimize",
        help="Direction (default: maximise fitness, capacity, throughput; minimise the rest).",
    ),
    constraint: list[str] = typer.Option(
        [], "--constraint", help="A bound a cell must meet, e.g. best_fitness>=0.9 (repeatable)."
    ),
    current: str | None = typer.Option(
        None,
        "--current",
        help="The parameters in use, e.g. population_size=100 (default: the suite's first cell).",
    ),
    seed: int = typer.Option(0, "--seed", help="The search's seed (--resume needs the same)."),
    resume: bool = typer.Option(False, "--resume", help="Reuse this search's stored cells."),
    quick: bool = typer.Option(False, "--quick", help="Search the suite's [quick] variant."),
    confirm: bool = typer.Option(
        True, "--confirm/--no-confirm", help="Re-measure the winner against the current cell."
    ),
    executor: str = typer.Option("local", "--executor", help="Where jobs run: local or ray."),
    store: str | None = typer.Option(
        None, "--store", envvar="ALLELE_STORE_URI", help="Store URI (default sqlite:///allele.db)."
    ),
) -> None:
    """Find a suite's best cell in BUDGET measurements, then confirm it with a fresh run."""
    from rich.markup import escape

    from allele.errors import AlleleError
    from allele.observability.benchmarking.report.summary import format_value
    from allele.observability.benchmarking.suites import resolve_suite
    from allele.observability.ml_analytics.optimization.closed_loop import (
        Evaluation,
        optimize_suite,
    )
    from allele.observability.store import open_store

    console = _console()
    try:
        chosen = resolve_suite(suite)
        if quick:
            chosen = chosen.quick_variant()
        opened = open_store(store)
        parsed_current = _parse_current(current)
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    unit = objective if objective in ("time_s", "cpu_time_s") else ""

    def show(e: Evaluation) -> None:
        value = "failed" if e.median is None else format_value(e.median, unit or objective)
        note = " (stored)" if e.reused else ""
        flag = "" if e.feasible or e.median is None else " [yellow]infeasible[/yellow]"
        params = ", ".join(f"{k}={v}" for k, v in e.params.items())
        console.print(f"  {escape(params)}: {escape(value)}{note}{flag}", highlight=False)

    from allele.observability.ml_analytics.optimization.recommender import higher_is_better

    direction = maximize if maximize is not None else higher_is_better(objective)
    console.print(
        f"optimizing [bold]{escape(chosen.name)}[/bold] for {escape(objective)} "
        f"({'maximize' if direction else 'minimize'}), "
        f"budget {budget} of {len(chosen.cells())} cells",
        highlight=False,
    )
    try:
        report = optimize_suite(
            chosen,
            budget=budget,
            store=opened,
            objective=objective,
            minimize=not direction,
            constraints=constraint,
            current=parsed_current,
            seed=seed,
            resume=resume,
            executor=executor,
            confirm=confirm,
            progress=show,
        )
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: every measured cell is stored; continue with the "
            "same command plus --resume"
        )
        raise typer.Exit(130) from None
    except AlleleError as exc:
        raise _fail(str(exc)) from exc
    _print_report(console, report, unit or objective)


def _print_report(console: Any, report: Any, unit: str) -> None:
    from rich.markup import escape

    from allele.observability.benchmarking.report.summary import format_value

    def cell(params: dict[str, Any]) -> str:
        return escape(", ".join(f"{k}={v}" for k, v in params.items()))

    console.print(
        f"best of {len(report.evaluations)} evaluations ({report.measured} measured now): "
        f"[bold]{cell(report.best)}[/bold], {format_value(report.best_measured, unit)}",
        highlight=False,
    )
    console.print(f"current: {cell(report.current)}", highlight=False)
    if report.best == report.current:
        console.print("the current parameters are already the best found", highlight=False)
        return
    if report.promise is not None:
        low, high = report.promise.interval
        console.print(
            f"promised: {report.promise.improvement:+.1f}% "
            f"({report.promise.level:.0%} interval {low:+.1f}% .. {high:+.1f}%)",
            highlight=False,
        )
    c = report.confirmation
    if c is None:
        return
    verdict = (
        "[green]held[/green]"
        if c.held and c.within_promise
        else "[green]held[/green] (outside the promised interval)"
        if c.held
        else "[red]did not hold[/red]"
    )
    console.print(
        f"confirmation run {c.suite_id}: current {format_value(c.current_median, unit)} -> "
        f"winner {format_value(c.winner_median, unit)} ({c.improvement:+.1f}%, "
        f"p={c.p_value:.2g}): the improvement {verdict}",
        highlight=False,
    )
