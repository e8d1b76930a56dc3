"""``allele demo``: benchmark the evolution engine and the Kraken reservoir, store, compare, report.

The demo runs the reduced (``[quick]``) variant of the built-in ``evolution`` and ``kraken``
suites -- the full matrices (20 and 12 cells), 5 worker processes of 10 samples per cell, fewer
generations and shorter sequences per operation -- which takes under a minute on 2 cores.
Results go to the store (``--store``, ``$ALLELE_STORE_URI`` or ``sqlite:///allele.db``); when an
earlier demo run of a suite is stored, the new run is compared with it, using the cells' A/A
noise when ``allele bench calibrate`` measured it. One HTML report per suite is written to
``--output`` and a summary table is printed.

A comparison alone cannot tell a slower program from a busier machine, so the demo also says
whether the code changed between the two runs (their commits) and whether the whole grid moved
together (the signature of the machine's speed changing).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from allele.cli import app
from allele.cli.output import escape, fail

if TYPE_CHECKING:
    from allele.observability.benchmarking.compare import Comparison
    from allele.observability.benchmarking.model import SuiteRun

DEMO_SUITES = ("evolution", "kraken")

# The workload's own throughput unit and quality figure shown in the summary table.
_FIGURES = {
    "evolution": ("generations_per_s", "best_fitness"),
    "kraken": ("steps_per_s", "memory_capacity"),
    "agent": ("tokens_per_s", "tokens_out_per_turn"),
    "python": ("items_per_s", ""),
}
# The share of compared cells that must move the same way for "the whole grid moved".
_TOGETHER = 0.75


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
    from allele.observability.store.faults import safe_url

    console = Console(highlight=False)
    try:
        opened = open_store(store)
        where = safe_url(opened.uri)
        tables: list[Any] = []
        reports: list[Path] = []
        for name in suites:
            report, table = _run_one(console, opened, where, name, output, workers, progress)
            reports.append(report)
            tables.append(table)
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/yellow]: the cells measured so far are stored; "
            "`allele bench run <suite> --quick --resume` continues a suite"
        )
        raise typer.Exit(130) from None
    except AlleleError as exc:
        raise fail(exc) from exc
    for table in tables:
        console.print(table)
    console.print(
        "▲ slower / ▼ faster: significant (Mann-Whitney U, Benjamini-Hochberg q < 0.05) and "
        "beyond the cell's floor (5%, or its calibrated noise); other changes are within noise."
    )
    console.print(f"results stored in {escape(where)} (see `allele bench list`)")
    for line in mlflow_lines():
        console.print(escape(line), soft_wrap=True)
    console.print("HTML reports (self-contained, open offline in a browser):")
    for report in reports:
        console.print(f"  {escape(report.resolve())}", soft_wrap=True)
    console.print(
        "open the dashboard on these results (heatmaps, box plots, comparisons): "
        f"allele dashboard --store {escape(where)}",
        soft_wrap=True,
    )


def _run_one(
    console: Any, store: Any, where: str, name: str, output: Path, workers: int, progress: bool
) -> tuple[Path, Any]:
    from allele.observability.benchmarking.compare import compare_runs
    from allele.observability.benchmarking.report.html import write_html_report
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.storage import list_runs, load_calibration, load_run
    from allele.observability.benchmarking.suites import builtin_suite

    suite = builtin_suite(name).quick_variant().resolved(workers=workers)
    previous_runs = [
        r for r in list_runs(store, name=suite.name, limit=20) if r.status == "complete"
    ]
    previous = load_run(store, previous_runs[0].suite_id) if previous_runs else None
    console.print(
        f"[bold]{suite.name}[/bold]: {len(suite.cells())} cells x {suite.runs} processes x "
        f"{suite.samples} samples ({workers} processes at once)"
    )
    tracker = _mlflow_tracker(store)
    try:
        run = run_suite(suite, store=store, progress=progress, observers=_observers(tracker))
    finally:
        if tracker is not None:
            tracker.close()
    noise = load_calibration(store, suite.name)
    comparison = compare_runs(previous, run, noise=noise) if previous is not None else None
    report = write_html_report(run, output / f"{suite.name}.html", comparison)
    console.print(f"  stored as run {run.suite_id[:8]} in {escape(where)}")
    if previous is None or comparison is None:
        console.print("  no earlier demo run of this suite is stored: nothing to compare with yet")
    else:
        for line in comparison_story(previous, run, comparison, calibrated=bool(noise)):
            console.print(f"  {escape(line)}")
    return report, _table(run, comparison)


def _mlflow_tracker(store: Any) -> Any:
    """An MLflow tracker for a demo suite when mlflow is installed (the demo runs without)."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        return None
    from allele.observability.benchmarking.experiment_tracking import tracker_for

    return tracker_for(True, store=store, live=False)


def _observers(tracker: Any) -> list[Any]:
    return [tracker] if tracker is not None else []


def mlflow_lines() -> list[str]:
    """Where the demo's MLflow runs are and how to look at them (nothing without mlflow)."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        return ["MLflow tracking: install the mlflow extra to log each suite as MLflow runs"]
    from pathlib import Path

    from allele.observability.mlflow_integration.config import mlflow_config

    config = mlflow_config()
    uri = config.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return [
        f"MLflow: each suite is a run (cells as child runs, reports as artifacts) in {uri}, "
        f"experiments {config.experiment_prefix}<suite>",
        f"  look at them with: mlflow ui --backend-store-uri {uri}",
    ]


def comparison_story(
    previous: SuiteRun, run: SuiteRun, comparison: Comparison, *, calibrated: bool
) -> list[str]:
    """What a comparison with the previous run says, in plain lines for the demo's reader."""
    from allele.observability.benchmarking.report.summary import format_shift

    counts = comparison.counts()
    lines = [
        f"compared with the previous run {previous.suite_id[:8]} of "
        f"{previous.created_at:%Y-%m-%d %H:%M} UTC ({code_change(previous.commit, run.commit)}):",
        f"{counts['regression']} {'cell' if counts['regression'] == 1 else 'cells'} slower, "
        f"{counts['improvement']} faster, "
        f"{counts['unchanged']} unchanged"
        + (f", {counts['failed']} failed" if counts["failed"] else ""),
    ]
    shifts = [c.shift for c in comparison.cells if not math.isnan(c.shift)]
    if not shifts:
        return lines
    typical = sorted(shifts)[len(shifts) // 2]
    same_way = max(sum(s > 0 for s in shifts), sum(s < 0 for s in shifts)) / len(shifts)
    together = abs(typical) > comparison.threshold and same_way >= _TOGETHER
    if together:
        lines.append(
            f"the whole grid moved together (median change {format_shift(typical)}, "
            f"{same_way:.0%} of the cells the same way): the signature of the machine running "
            "faster or slower (other load, CPU frequency), or of a change that touches every cell"
        )
    if _same_code(previous.commit, run.commit) and (counts["regression"] or counts["improvement"]):
        lines.append(
            "the code did not change, so these verdicts measure the machine's run-to-run noise"
        )
    if not calibrated and (counts["regression"] or counts["improvement"] or together):
        suite = run.name.removesuffix("-quick")
        lines.append(
            f"`allele bench calibrate {suite} --quick` measures each cell's noise on this "
            "machine; later comparisons then flag only changes beyond it"
        )
    return lines


def code_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """How the code under test differs between two runs, from their commit information."""
    old, new = before.get("id"), after.get("id")
    if not old or not new:
        return "commit unknown"
    if old != new:
        return f"code changed: commit {str(old)[:8]} -> {str(new)[:8]}"
    if before.get("dirty") or after.get("dirty"):
        return f"same commit {str(new)[:8]}, with uncommitted changes: the code may differ"
    return f"same code: commit {str(new)[:8]}"


def _same_code(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return (
        bool(before.get("id"))
        and before.get("id") == after.get("id")
        and not before.get("dirty")
        and not after.get("dirty")
    )


def _table(run: SuiteRun, comparison: Comparison | None) -> Any:
    """The run as a table: a column per parameter, time per operation, throughput, quality."""
    from rich import box
    from rich.table import Table

    from allele.observability.benchmarking.report.summary import (
        format_figure,
        format_shift,
        format_value,
    )

    params = list(dict.fromkeys(k for cell in run.cells for k in cell.params))
    unit, quality = _FIGURES.get(run.component, ("", ""))
    table = Table(
        title=f"{run.name} (medians)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    # Parameter and unit names are kept whole (a truncated "population_…" reads badly); the
    # quality name may wrap onto two lines instead.
    for name in params:
        table.add_column(name, justify="right", min_width=len(name))
    table.add_column("time/op", justify="right", no_wrap=True)
    if unit:
        label = unit.removesuffix("_per_s") + "/s"
        table.add_column(label, justify="right", min_width=len(label))
    if quality:
        label = quality.replace("_", " ")
        table.add_column(label, justify="right", max_width=max(8, *map(len, label.split())))
    if comparison is not None:
        table.add_column("vs last", justify="right", no_wrap=True)
    for cell in run.cells:
        values = [str(cell.params.get(name, "")) for name in params]
        if cell.status != "ok":
            values += [f"[red]{cell.status}[/red]"] + [""] * (bool(unit) + bool(quality))
        else:
            values.append(format_value(cell.metrics.get("latency_p50_s"), "time_s"))
            if unit:
                values.append(format_figure(unit, cell.metrics.get(unit)))
            if quality:
                values.append(format_figure(quality, cell.metrics.get(quality)))
        if comparison is not None:
            verdict = comparison.cell(cell.key)
            if verdict is None or math.isnan(verdict.shift):
                values.append(verdict.verdict if verdict is not None else "")
            else:
                mark = {"regression": "[red]▲[/red]", "improvement": "[green]▼[/green]"}
                values.append(f"{format_shift(verdict.shift)} {mark.get(verdict.verdict, ' ')}")
        table.add_row(*values)
    return table
