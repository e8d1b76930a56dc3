"""``allele bench compare | check | report | calibrate``: the analysing half of ``allele bench``.

A run is named by a stored suite id, a suite name (its latest stored run), or a JSON file: our
``SuiteRun`` JSON (``--allele-bench-json``, ``report --format json`` is *not* a run) or a
pytest-benchmark ``--benchmark-json`` file. Exit codes: 0 fine, 1 a regression (``check``),
2 bad input (unknown run, unreadable file, invalid option).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from allele.cli import bench_app

if TYPE_CHECKING:
    from allele.observability.benchmarking.compare import Comparison
    from allele.observability.benchmarking.model import SuiteRun

REPORT_FORMATS = ("terminal", "md", "json", "html")

_STORE = typer.Option(
    None, "--store", envvar="ALLELE_STORE_URI", help="Store URI (default sqlite:///allele.db)."
)
_ALPHA = typer.Option(0.05, "--alpha", help="False discovery rate for the BH-adjusted q-values.")
_THRESHOLD = typer.Option(
    0.05, "--threshold", help="Smallest relative change that counts (0.05 = 5%)."
)
_METRIC = typer.Option("time_s", "--metric", help="Sample metric to compare.")
_HIGHER = typer.Option(
    False, "--higher-is-better", help="The metric is a throughput: a drop is a regression."
)


class _Inputs:
    """Resolves run references against JSON files or a store opened on first use."""

    def __init__(self, store_uri: str | None) -> None:
        self.store_uri = store_uri
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            from allele.observability.store import open_store

            self._store = open_store(self.store_uri)
        return self._store

    def run(self, reference: str) -> SuiteRun:
        """The run a reference names: a JSON file, else a stored suite id or suite name."""
        path = Path(reference)
        if reference.endswith(".json") or path.is_file():
            return load_run_file(path)
        from allele.errors import BenchmarkError
        from allele.observability.benchmarking.storage import load_run, suite_names

        try:
            return load_run(self.store, reference)
        except BenchmarkError:
            # `bench run NAME --quick` stores NAME-quick: a report of NAME then means that.
            quick = f"{reference}-quick"
            if quick not in suite_names(self.store):
                raise
            _note(f"no stored run of {reference!r}; using its --quick variant {quick!r}")
            return load_run(self.store, quick)

    def baseline(self, reference: str) -> SuiteRun:
        """A named baseline of the store, or a JSON file."""
        path = Path(reference)
        if reference.endswith(".json") or path.is_file():
            return load_run_file(path)
        from allele.observability.benchmarking.storage import get_baseline

        return get_baseline(self.store, reference)

    def noise(self, suite_name: str, *, use_store: bool) -> dict[str, float]:
        """The stored A/A noise of ``suite_name`` (empty when not calibrated or no store)."""
        if not use_store:
            return {}
        from allele.observability.benchmarking.storage import load_calibration

        return load_calibration(self.store, suite_name)


def load_run_file(path: Path) -> SuiteRun:
    """A SuiteRun from our JSON or from a pytest-benchmark JSON file."""
    from allele.errors import ValidationError
    from allele.observability.benchmarking.model import SuiteRun
    from allele.observability.benchmarking.pytest_benchmark_format import (
        import_pytest_benchmark_json,
        is_pytest_benchmark_json,
    )

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read run file {str(path)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{str(path)!r} is not valid JSON: {exc}") from None
    if is_pytest_benchmark_json(data):
        return import_pytest_benchmark_json(data)
    if isinstance(data, dict) and "cells" in data and "name" in data and "component" in data:
        try:
            return SuiteRun.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"{str(path)!r} is not a valid suite run: {exc}") from None
    raise ValidationError(
        f"{str(path)!r} is neither a suite run JSON (name, component, cells) "
        "nor a pytest-benchmark JSON file"
    )


def _note(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"note: {message}", markup=False, highlight=False)


def _is_file(reference: str) -> bool:
    return reference.endswith(".json") or Path(reference).is_file()


def _fail(message: str) -> typer.Exit:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(2)


def _compare(
    baseline: SuiteRun,
    current: SuiteRun,
    noise: dict[str, float],
    alpha: float,
    threshold: float,
    metric: str,
    higher_is_better: bool,
) -> Comparison:
    from allele.observability.benchmarking.compare import compare_runs

    return compare_runs(
        baseline,
        current,
        metric=metric,
        alpha=alpha,
        threshold=threshold,
        noise=noise,
        higher_is_better=higher_is_better,
    )


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@bench_app.command("compare")
def compare(
    baseline: str = typer.Argument(..., help="Baseline: suite id, suite name or JSON file."),
    current: str = typer.Argument(..., help="Current: suite id, suite name or JSON file."),
    alpha: float = _ALPHA,
    threshold: float = _THRESHOLD,
    metric: str = _METRIC,
    higher_is_better: bool = _HIGHER,
    fmt: str = typer.Option("terminal", "--format", help="terminal, md or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    store: str | None = _STORE,
) -> None:
    """Compare two runs cell by cell (Mann-Whitney + Hodges-Lehmann, BH across the grid)."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.caveats import comparison_caveats

    if fmt not in ("terminal", "md", "json"):
        raise _fail(f"--format must be one of terminal, md, json; got {fmt!r}")
    inputs = _Inputs(store)
    try:
        base_run, cur_run = inputs.run(baseline), inputs.run(current)
        noise = inputs.noise(cur_run.name, use_store=not (_is_file(baseline) and _is_file(current)))
        comparison = _compare(base_run, cur_run, noise, alpha, threshold, metric, higher_is_better)
    except AlleleError as exc:
        raise _fail(str(exc)) from None
    _show_comparison(comparison, fmt, output)
    if fmt == "terminal":
        _print_caveats(comparison_caveats(base_run, cur_run, threshold=threshold, metric=metric))


def _show_comparison(comparison: Comparison, fmt: str, output: Path | None) -> None:
    if fmt == "json":
        _emit(json.dumps(comparison.to_dict(), indent=2, allow_nan=False), output)
    elif fmt == "md":
        from allele.observability.benchmarking.report.markdown import comparison_markdown

        _emit(comparison_markdown(comparison), output)
    else:
        from rich.console import Console

        from allele.observability.benchmarking.report.terminal import render_comparison

        if output is None:
            Console().print(render_comparison(comparison))
        else:
            with open(output, "w", encoding="utf-8") as handle:
                Console(file=handle, width=160).print(render_comparison(comparison))
            typer.echo(f"wrote {output}")


@bench_app.command("check")
def check(
    suite: str | None = typer.Argument(
        None,
        help="Current run: suite id, suite name or JSON file (default: latest run of the "
        "baseline's suite).",
    ),
    baseline: str = typer.Option(..., "--baseline", help="Baseline name (or a JSON file)."),
    alpha: float = _ALPHA,
    threshold: float = _THRESHOLD,
    metric: str = _METRIC,
    higher_is_better: bool = _HIGHER,
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Also append a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)."
    ),
    store: str | None = _STORE,
) -> None:
    """CI gate: exit 1 and list the regressed cells when the run regressed against a baseline."""
    from rich.console import Console

    from allele.errors import AlleleError
    from allele.observability.benchmarking.caveats import comparison_caveats
    from allele.observability.benchmarking.report.summary import (
        comparison_headline,
        format_change_ci,
        format_shift,
        format_value,
    )

    inputs = _Inputs(store)
    try:
        base_run = inputs.baseline(baseline)
        cur_run = inputs.run(suite if suite is not None else base_run.name)
        if cur_run.suite_id and cur_run.suite_id == base_run.suite_id:
            raise _fail(
                f"the current run {cur_run.suite_id} is the baseline {baseline!r} itself; "
                "run the suite again or name the run to check"
            )
        use_store = not (_is_file(baseline) and suite is not None and _is_file(suite))
        noise = inputs.noise(cur_run.name, use_store=use_store)
        comparison = _compare(base_run, cur_run, noise, alpha, threshold, metric, higher_is_better)
    except AlleleError as exc:
        raise _fail(str(exc)) from None
    console = Console()
    caveats = comparison_caveats(base_run, cur_run, threshold=threshold, metric=metric)
    if markdown is not None:
        from allele.observability.benchmarking.report.markdown import comparison_markdown

        with open(markdown, "a", encoding="utf-8") as handle:
            handle.write(comparison_markdown(comparison))
            handle.write("".join(f"\n> warning: {line}\n" for line in caveats))
    regressions = comparison.regressions
    for cell in regressions:
        console.print(
            f"[bold red]REGRESSION[/bold red] {cell.key}: "
            f"{format_value(cell.baseline_median, metric)} -> "
            f"{format_value(cell.current_median, metric)} ({format_shift(cell.change)}, "
            f"CI {format_change_ci(cell)}; HL shift {format_shift(cell.shift)}, "
            f"q={cell.q_value:.2g}, floor {cell.floor:.1%})",
            highlight=False,
            markup=True,
        )
    console.print(comparison_headline(comparison), highlight=False, markup=False)
    _print_caveats(caveats)
    if regressions:
        raise typer.Exit(1)


@bench_app.command("report")
def report(
    suite: str = typer.Argument(..., help="Run: suite id, suite name or JSON file."),
    fmt: str = typer.Option("terminal", "--format", help="terminal, md, json or html."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (html default: <suite>-report.html)."
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", help="Mark regressions against this baseline name or JSON file."
    ),
    alpha: float = _ALPHA,
    threshold: float = _THRESHOLD,
    history_runs: int = typer.Option(
        50, "--history", min=0, help="Stored runs of the suite in the HTML history section."
    ),
    store: str | None = _STORE,
) -> None:
    """Report one run: statistics per cell, and verdicts when a baseline is given."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.caveats import comparison_caveats, run_caveats

    if fmt not in REPORT_FORMATS:
        raise _fail(f"--format must be one of {', '.join(REPORT_FORMATS)}; got {fmt!r}")
    inputs = _Inputs(store)
    try:
        run = inputs.run(suite)
        comparison = None
        caveats = run_caveats(run, threshold=threshold)
        if baseline is not None:
            base_run = inputs.baseline(baseline)
            use_store = not (_is_file(baseline) and _is_file(suite))
            noise = inputs.noise(run.name, use_store=use_store)
            comparison = _compare(base_run, run, noise, alpha, threshold, "time_s", False)
            caveats = comparison_caveats(base_run, run, threshold=threshold)
        history: list[SuiteRun] = []
        if fmt == "html" and not _is_file(suite):
            from allele.observability.benchmarking.storage import runs_history

            history = runs_history(inputs.store, run.name, limit=history_runs)
        _write_report(run, comparison, fmt, output, caveats, history)
    except AlleleError as exc:
        raise _fail(str(exc)) from None


def _write_report(
    run: SuiteRun,
    comparison: Comparison | None,
    fmt: str,
    output: Path | None,
    caveats: list[str] | None = None,
    history: list[SuiteRun] | None = None,
) -> None:
    if fmt == "html":
        from allele.observability.benchmarking.report.html import write_html_report

        path = write_html_report(
            run,
            output or Path(f"{run.name}-report.html"),
            comparison,
            caveats=caveats,
            history=history or [],
        )
        typer.echo(f"wrote {path}")
    elif fmt == "json":
        from allele.observability.benchmarking.report.jsonreport import json_report

        _emit(json.dumps(json_report(run, comparison), indent=2, allow_nan=False), output)
    elif fmt == "md":
        from allele.observability.benchmarking.report.markdown import markdown_report

        _emit(markdown_report(run, comparison, caveats), output)
    else:
        from rich.console import Console

        from allele.observability.benchmarking.report.terminal import render_run

        table = render_run(run, comparison, caveats=caveats)
        if output is None:
            Console().print(table)
        else:
            with open(output, "w", encoding="utf-8") as handle:
                Console(file=handle, width=160).print(table)
            typer.echo(f"wrote {output}")


def _print_caveats(caveats: list[str]) -> None:
    from rich.console import Console

    from allele.observability.benchmarking.report.terminal import caveat_lines

    console = Console()
    for line in caveat_lines(caveats):
        console.print(line)


@bench_app.command("calibrate")
def calibrate(
    suite: str = typer.Argument(..., help="Built-in suite name or suite TOML file."),
    runs: int | None = typer.Option(None, "--runs", help="Process runs per cell (override)."),
    executor: str = typer.Option("local", "--executor", help="local or ray."),
    quick: bool = typer.Option(False, "--quick", help="Use the suite's reduced [quick] variant."),
    store: str | None = _STORE,
) -> None:
    """Run a suite twice on the same code (A/A) and store each cell's noise for comparisons."""
    from rich.console import Console

    from allele.errors import AlleleError
    from allele.observability.benchmarking.noise import noise_from_runs, summarize_noise
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.storage import save_calibration
    from allele.observability.benchmarking.suites import resolve_suite

    inputs = _Inputs(store)
    console = Console()
    try:
        definition = resolve_suite(suite)
        if quick:
            definition = definition.quick_variant()
        measured = []
        for attempt in (1, 2):
            console.print(f"A/A calibration of {definition.name}: run {attempt} of 2")
            measured.append(
                run_suite(
                    definition, store=inputs.store, executor=executor, runs=runs, progress=True
                )
            )
        noise = noise_from_runs(measured)
        save_calibration(inputs.store, definition.name, noise)
    except AlleleError as exc:
        raise _fail(str(exc)) from None
    summary = summarize_noise(noise)
    console.print(
        f"stored the noise of {len(noise)} cells of {definition.name}: "
        f"median {summary['median']:.1%}, p90 {summary['p90']:.1%}, max {summary['max']:.1%}",
        highlight=False,
    )


@bench_app.command("changes")
def changes(
    suite: str = typer.Argument(..., help="Suite name whose stored history to scan."),
    limit: int = typer.Option(50, "--limit", help="Latest runs to scan (oldest first)."),
    metric: str = _METRIC,
    fmt: str = typer.Option("terminal", "--format", help="terminal or json."),
    store: str | None = _STORE,
) -> None:
    """Change points in a suite's stored history: the runs where a cell's level stepped."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.changepoint import suite_change_points
    from allele.observability.benchmarking.storage import runs_history

    if fmt not in ("terminal", "json"):
        raise _fail(f"--format must be terminal or json; got {fmt!r}")
    if limit < 3:
        raise _fail(f"--limit must be at least 3 runs, got {limit}")
    inputs = _Inputs(store)
    try:
        history = runs_history(inputs.store, suite, limit=limit)
        found = suite_change_points(history, metric=metric)
    except AlleleError as exc:
        raise _fail(str(exc)) from None
    if fmt == "json":
        payload = {
            "suite": suite,
            "runs": [r.suite_id for r in history],
            "change_points": {k: [p.to_dict() for p in v] for k, v in found.items()},
        }
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    from rich.console import Console

    from allele.observability.benchmarking.report.summary import format_shift, format_value

    console = Console(highlight=False)
    console.print(f"{suite}: {len(history)} runs scanned, {len(found)} cells with a step")
    for key, points in found.items():
        for p in points:
            console.print(
                f"{key}: step at run #{p.index} ({p.suite_id}): "
                f"{format_value(p.before, metric)} -> {format_value(p.after, metric)} "
                f"({format_shift(p.relative_change)})",
                markup=False,
            )


@bench_app.command("history")
def history(
    suite: str = typer.Argument(..., help="Suite name whose stored runs to show."),
    cell: str | None = typer.Option(
        None, "--cell", help="One cell, by its key (e.g. population_size=100,mutation_rate=0.1)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="Latest runs to show (oldest first)."),
    metric: str = _METRIC,
    fmt: str = typer.Option("terminal", "--format", help="terminal or json."),
    store: str | None = _STORE,
) -> None:
    """Each cell's median across the suite's stored runs and commits, change points marked."""
    from allele.errors import AlleleError
    from allele.observability.benchmarking.history import suite_history
    from allele.observability.benchmarking.storage import runs_history, suite_names

    if fmt not in ("terminal", "json"):
        raise _fail(f"--format must be terminal or json; got {fmt!r}")
    inputs = _Inputs(store)
    try:
        runs = runs_history(inputs.store, suite, limit=limit)
        if not runs and f"{suite}-quick" in suite_names(inputs.store):
            _note(f"no stored run of {suite!r}; showing its --quick variant {suite + '-quick'!r}")
            suite = f"{suite}-quick"
            runs = runs_history(inputs.store, suite, limit=limit)
        if not runs:
            inputs.run(suite)  # the error naming the stored suites
        cells = suite_history(runs, metric=metric, cell=cell)
    except AlleleError as exc:
        raise _fail(str(exc)) from None
    if fmt == "json":
        payload = {
            "suite": suite,
            "metric": metric,
            "runs": [r.suite_id for r in runs],
            "cells": [
                {"key": c.key, "params": c.params, "points": [p.to_dict() for p in c.points]}
                for c in cells
            ],
        }
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    from rich.console import Console

    from allele.observability.benchmarking.report.terminal import history_table

    Console().print(history_table(suite, cells, metric, one_cell=cell is not None))
