"""``allele demo``: benchmark the evolution engine and the Kraken reservoir, store, compare, report.

The demo runs the reduced (``[quick]``) variant of the built-in ``evolution`` and ``kraken``
suites -- the full matrices (20 and 12 cells), 3 worker processes of 5 samples per cell, fewer
generations and shorter sequences per operation -- which takes about a minute or two on 2 cores.
Results go to the store (``--store``, ``$ALLELE_STORE_URI`` or ``sqlite:///allele.db``); when an
earlier demo run of a suite is stored, the new run is compared with it. One HTML report per
suite is written to ``--output`` and a summary table is printed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import typer

from allele.cli import app

DEMO_SUITES = ("evolution", "kraken")

# The quality figure each component reports, shown in the summary table.
_QUALITY = {
    "evolution": "best_fitness",
    "kraken": "memory_capacity",
    "agent": "tokens_out_per_turn",
}


@app.command()
def demo(
    store: str | None = typer.Option(
        None, "--store", envvar="ALLELE_STORE_URI", help="Store URI (default sqlite:///allele.db)."
    ),
    output: Path = typer.Option(
        Path("allele-demo"), "--output", help="Folder for the HTML reports."
    ),
    suites: list[str] = typer.Option(
        list(DEMO_SUITES), "--suite", help="Built-in suites to run (repeatable)."
    ),
    workers: int = typer.Option(
        min(2, os.cpu_count() or 1), "--workers", min=1, help="Worker processes at once."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Run the demo benchmarks, store them, compare with the last demo and write HTML reports."""
    from rich.console import Console

    from allele.errors import AlleleError
    from allele.observability.store import open_store

    console = Console()
    try:
        opened = open_store(store)
        rows: list[dict[str, Any]] = []
        reports: list[Path] = []
        for name in suites:
            report, summary = _run_one(console, opened, name, output, workers, progress)
            reports.append(report)
            rows.extend(summary)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: measured cells are stored")
        raise typer.Exit(130) from None
    except AlleleError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    for table in _summary_tables(rows):
        console.print(table)
    for report in reports:
        console.print(f"report: [bold]{report.resolve()}[/bold]", highlight=False)


def _run_one(
    console: Any, store: Any, name: str, output: Path, workers: int, progress: bool
) -> tuple[Path, list[dict[str, Any]]]:
    from allele.observability.benchmarking.compare import compare_runs
    from allele.observability.benchmarking.report.html import write_html_report
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.storage import list_runs, load_run
    from allele.observability.benchmarking.suites import builtin_suite

    suite = builtin_suite(name).quick_variant().resolved(workers=workers)
    previous_runs = [
        r for r in list_runs(store, name=suite.name, limit=20) if r.status == "complete"
    ]
    previous = load_run(store, previous_runs[0].suite_id) if previous_runs else None
    console.print(
        f"[bold]{suite.name}[/bold]: {len(suite.cells())} cells x {suite.runs} processes "
        f"({workers} at once)",
        highlight=False,
    )
    run = run_suite(suite, store=store, progress=progress)
    comparison = compare_runs(previous, run) if previous is not None else None
    report = write_html_report(run, output / f"{suite.name}.html", comparison)
    if comparison is None:
        console.print("no earlier demo run stored: nothing to compare with yet")
    else:
        counts = comparison.counts()
        console.print(
            f"compared with the demo run of {previous.created_at:%Y-%m-%d %H:%M} UTC "  # type: ignore[union-attr]
            f"({comparison.baseline_id[:8]}): {counts.get('regression', 0)} slower, "
            f"{counts.get('improvement', 0)} faster, {counts.get('unchanged', 0)} unchanged",
            highlight=False,
        )
    quality = _QUALITY.get(run.component, "")
    rows = []
    for cell in run.cells:
        verdict = comparison.cell(cell.key) if comparison is not None else None
        rows.append(
            {
                "suite": run.name,
                "params": cell.params,
                "status": cell.status,
                "time": cell.metrics.get("latency_p50_s"),
                "quality_name": quality,
                "quality": cell.metrics.get(quality),
                "verdict": verdict.verdict if verdict is not None else "",
                "shift": verdict.shift if verdict is not None else math.nan,
            }
        )
    return report, rows


def _summary_tables(rows: list[dict[str, Any]]) -> list[Any]:
    """One table per suite: a column per parameter, time per operation, quality, change."""
    from rich.table import Table

    from allele.cli.bench import format_seconds

    tables = []
    for suite in dict.fromkeys(row["suite"] for row in rows):
        suite_rows = [row for row in rows if row["suite"] == suite]
        params = list(dict.fromkeys(k for row in suite_rows for k in row["params"]))
        table = Table(title=suite, title_justify="left")
        for name in params:
            table.add_column(name, justify="right")
        table.add_column("time per op (p50)", justify="right")
        table.add_column(
            suite_rows[0]["quality_name"].replace("_", " ") or "quality", justify="right"
        )
        table.add_column("vs last demo")
        for row in suite_rows:
            quality = row["quality"]
            shown = f"{quality:.4g}" if quality is not None else "-"
            if row["status"] != "ok":
                shown = f"[red]{row['status']}[/red]"
            table.add_row(
                *(str(row["params"].get(name, "")) for name in params),
                format_seconds(row["time"]),
                shown,
                _change(row["verdict"], row["shift"]),
            )
        tables.append(table)
    return tables


def _change(verdict: str, shift: float) -> str:
    if not verdict:
        return ""
    text = verdict if math.isnan(shift) else f"{shift:+.1%} {verdict}"
    colour = {"regression": "red", "improvement": "green"}.get(verdict)
    return f"[{colour}]{text}[/{colour}]" if colour else text
