"""Rich tables of a run and of a comparison, for the terminal.

``render_run`` and ``render_comparison`` return rich renderables; print them with a
``rich.console.Console`` (``print_report`` does both steps).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from allele.observability.benchmarking.compare import CellComparison, Comparison
from allele.observability.benchmarking.model import SuiteRun
from allele.observability.benchmarking.report.summary import (
    comparison_headline,
    format_change_ci,
    format_q,
    format_shift,
    format_value,
    stat_cells,
    summarize_run,
)

VERDICT_STYLES = {
    "regression": "bold red",
    "improvement": "bold green",
    "unchanged": "dim",
    "added": "cyan",
    "removed": "yellow",
    "failed": "red",
    "insufficient": "yellow",
}


def render_run(
    run: SuiteRun, comparison: Comparison | None = None, *, max_rows: int | None = None
) -> RenderableType:
    """A table of the run's cells: median with its CI, p95, CV, outliers, and verdict if compared.

    ``max_rows`` limits the rows shown (regressions first when a comparison is given).
    """
    summary = summarize_run(run, comparison)
    metric = summary.metric
    title = Text(f"{run.name} [{run.suite_id or 'unsaved'}] - {metric}", style="bold")
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("cell", overflow="fold")
    table.add_column("n", justify="right")
    table.add_column("median", justify="right")
    ci_level = round((comparison.confidence if comparison else 0.95) * 100)
    table.add_column(f"{ci_level}% CI", justify="right")
    table.add_column("p95", justify="right")
    table.add_column("CV", justify="right")
    table.add_column("outliers", justify="right")
    if comparison is not None:
        table.add_column("change", justify="right")
        table.add_column("verdict", no_wrap=True)
    rows = summary.rows
    if comparison is not None:
        rows = sorted(rows, key=lambda r: _verdict_rank(r.verdict))
    shown = rows if max_rows is None else rows[:max_rows]
    for row in shown:
        cells: list[Any] = [Text(row.key)]  # Text: a key may hold "[", which is rich markup
        if row.stats is None:
            status = Text(f"{row.status}: {row.error or 'no samples'}", style="red")
            cells += ["0", status, "", "", "", ""]
        else:
            cells += stat_cells(row.stats, metric)
        if comparison is not None:
            cmp = row.comparison
            cells.append(format_shift(cmp.change) if cmp else "-")
            cells.append(_verdict_text(cmp.verdict) if cmp else "")
        table.add_row(*cells)
    parts: list[RenderableType] = [table]
    if len(shown) < len(rows):
        parts.append(Text(f"... {len(rows) - len(shown)} more cells not shown", style="dim"))
    if comparison is not None:
        parts.append(Text(comparison_headline(comparison)))
    return Group(*parts)


def render_comparison(
    comparison: Comparison, *, show_unchanged: bool | None = None
) -> RenderableType:
    """A table of the compared cells (change of the medians with its CI, the Hodges-Lehmann
    shift as detail, q-value, verdict) and a headline.

    Unchanged cells are listed only when ``show_unchanged`` (default: when 50 cells or fewer).
    """
    if show_unchanged is None:
        show_unchanged = len(comparison.cells) <= 50
    metric = comparison.metric
    table = Table(
        title=Text(f"{comparison.current_name}: current vs baseline", style="bold"),
        title_justify="left",
        header_style="bold",
    )
    table.add_column("cell", overflow="fold")
    for name, justify in (
        ("baseline", "right"),
        ("current", "right"),
        ("change", "right"),
        (f"{round(comparison.confidence * 100)}% CI", "right"),
        ("HL shift", "right"),
        ("q", "right"),
        ("floor", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("verdict", no_wrap=True)
    cells = sorted(comparison.cells, key=lambda c: (_verdict_rank(c.verdict), -abs_shift(c)))
    hidden = 0
    for c in cells:
        if c.verdict == "unchanged" and not show_unchanged:
            hidden += 1
            continue
        table.add_row(
            Text(c.key),
            format_value(c.baseline_median, metric),
            format_value(c.current_median, metric),
            format_shift(c.change),
            format_change_ci(c),
            format_shift(c.shift),
            format_q(c.q_value),
            format_shift(c.floor).lstrip("+"),
            _verdict_text(c.verdict, c.note),
        )
    parts: list[RenderableType] = [table]
    if hidden:
        parts.append(Text(f"{hidden} unchanged cells not listed", style="dim"))
    style = "bold red" if comparison.has_regressions else "bold green"
    parts.append(Text(comparison_headline(comparison), style=style))
    return Group(*parts)


def print_report(
    run: SuiteRun | None = None,
    comparison: Comparison | None = None,
    console: Console | None = None,
) -> None:
    """Print the run table and/or the comparison table to ``console`` (stdout by default)."""
    console = console or Console()
    if run is not None:
        console.print(render_run(run, comparison))
    if comparison is not None:
        console.print(render_comparison(comparison))


def abs_shift(cell: CellComparison) -> float:
    """``|change|``, with 0 for cells that have none (so sorting never meets NaN)."""
    return 0.0 if cell.change != cell.change else abs(cell.change)


def _verdict_text(verdict: str, note: str = "") -> Text:
    label = f"{verdict} ({note})" if note else verdict
    return Text(label, style=VERDICT_STYLES.get(verdict, ""))


def _verdict_rank(verdict: str) -> int:
    order = ("regression", "failed", "improvement", "removed", "added", "insufficient")
    return order.index(verdict) if verdict in order else len(order)
