"""Rich tables of a run and of a comparison, for the terminal.

``render_run`` and ``render_comparison`` return rich renderables; print them with a
``rich.console.Console`` (``print_report`` does both steps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from allele.observability.benchmarking.caveats import run_or_default_caveats
from allele.observability.benchmarking.compare import CellComparison, Comparison
from allele.observability.benchmarking.history import CellHistory
from allele.observability.benchmarking.model import SuiteRun
from allele.observability.benchmarking.report.summary import (
    RunSummary,
    comparison_headline,
    format_q,
    format_shift,
    format_value,
    stat_cells,
    summarize_run,
)
from allele.observability.benchmarking.stats import SampleStats

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
    run: SuiteRun,
    comparison: Comparison | None = None,
    *,
    max_rows: int | None = None,
    caveats: Sequence[str] | None = None,
) -> RenderableType:
    """A table of the run's cells: median with its CI, p95, CV, outliers, and verdict if compared.

    ``max_rows`` limits the rows shown (regressions first when a comparison is given);
    ``caveats`` (default: the run's own, see ``caveats.run_caveats``) follow as warnings.
    """
    summary = summarize_run(run, comparison)
    metric = summary.metric
    title = Text(f"{run.name} [{run.suite_id or 'unsaved'}] - {metric}", style="bold")
    table = compact_table(title)
    names = add_param_columns(table, summary)
    for name in ("n", "median"):
        table.add_column(name, justify="right", no_wrap=True)
    # With a comparison, p95 and the outlier count give way to the change (80 columns).
    details = ("CI ±", "CV") if comparison is not None else ("CI ±", "p95", "CV", "outl.")
    for name in details:
        table.add_column(name, justify="right", no_wrap=True)
    if comparison is not None:
        table.add_column("change", justify="right", no_wrap=True)
        table.add_column("verdict", no_wrap=True)
    rows = summary.rows
    if comparison is not None:
        rows = sorted(rows, key=lambda r: _verdict_rank(r.verdict))
    shown = rows if max_rows is None else rows[:max_rows]
    failures: list[Text] = []
    for row in shown:
        cells: list[Any] = param_cells(row.params, names, row.key)
        if row.stats is None:
            # The status in the table, the reason below it: a traceback is no table cell.
            cells += ["0", Text(row.status, style="red"), *([""] * len(details))]
            reason = (row.error or "no samples").strip().splitlines()
            failures.append(Text(f"{row.key}: {row.status}: {reason[-1] if reason else ''}"))
        else:
            n, median, _, p95, cv, outliers = stat_cells(row.stats, metric)
            shown_details = {"CI ±": half_width(row.stats), "p95": p95, "CV": cv, "outl.": outliers}
            cells += [n, median, *(shown_details[name] for name in details)]
        if comparison is not None:
            cmp = row.comparison
            cells.append(format_shift(cmp.change) if cmp else "-")
            cells.append(_verdict_text(cmp.verdict) if cmp else "")
        table.add_row(*cells)
    fit_columns(table)
    fixed = fixed_params(summary)
    parts: list[RenderableType] = [table]
    if fixed:
        parts.append(Text(f"in every cell: {fixed}", style="dim"))
    parts += failures
    if len(shown) < len(rows):
        parts.append(Text(f"... {len(rows) - len(shown)} more cells not shown", style="dim"))
    if comparison is not None:
        parts.append(Text(comparison_headline(comparison)))
    parts += caveat_lines(run_or_default_caveats(run, comparison, caveats))
    return Group(*parts)


def compact_table(title: Text | str | None = None) -> Table:
    """A table that reads at 80 columns and in a CI log: a rule under the header, no frame."""
    return Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )


def add_param_columns(table: Table, summary: RunSummary) -> list[str]:
    """One column per parameter that varies over the grid (its values never wrap); returns the
    parameter names, or an empty list when nothing varies (a "cell" column then)."""
    names = list(summary.param_values) if summary.varying_params else []
    names = [n for n in names if n in summary.varying_params]
    if not names:
        table.add_column("cell", overflow="fold")
        return []
    for name in names:
        numeric = all(isinstance(v, int | float) for v in summary.param_values[name])
        table.add_column(name, justify="right" if numeric else "left")
    return names


def param_cells(params: dict[str, Any], names: Sequence[str], key: str) -> list[Any]:
    """A row's parameter values for ``add_param_columns`` (the key when nothing varies)."""
    if not names:
        return [Text(key)]  # Text: a key may hold "[", which is rich markup
    return [Text(str(params.get(name, "-"))) for name in names]


def fixed_params(summary: RunSummary) -> str:
    """The parameters that are the same in every cell, as ``name=value, ...``."""
    return ", ".join(
        f"{name}={values[0]}"
        for name, values in summary.param_values.items()
        if len(values) == 1 and summary.varying_params
    )


def half_width(stats: SampleStats) -> str:
    """The median's confidence interval as ``±`` a share of the median (``±0.8%``): the
    terminal's narrow form of the interval the other reports print whole."""
    low, high = stats.median_ci
    if not (stats.median and math.isfinite(low) and math.isfinite(high)):
        return "-"
    return f"±{(high - low) / 2 / abs(stats.median):.1%}"


def compact_ci(bounds: tuple[float, float]) -> str:
    """A relative interval as ``+22.1..+26.6%`` (the narrow form of ``[+22.1%, +26.6%]``)."""
    low, high = bounds
    if math.isnan(low) or math.isnan(high):
        return "-"
    return f"{low * 100:+.1f}..{high * 100:+.1f}%"


def fit_columns(table: Table) -> None:
    """Give each column at least the width of its longest value, so that at 80 columns the
    headers fold (``population_`` / ``size``) and no value is cut or wrapped mid-number."""
    for column in table.columns:
        widths = [Text.from_markup(c).cell_len if isinstance(c, str) else _cell_len(c)
                  for c in column.cells]  # fmt: skip
        column.min_width = max(widths, default=0)
        if not column.no_wrap:
            column.overflow = "fold"


def _cell_len(renderable: object) -> int:
    return renderable.cell_len if isinstance(renderable, Text) else 0


def caveat_lines(caveats: Sequence[str]) -> list[Text]:
    """Each caveat as a ``warning:`` line."""
    return [Text(f"warning: {line}", style="yellow") for line in caveats]


def render_comparison(
    comparison: Comparison, *, show_unchanged: bool | None = None
) -> RenderableType:
    """A table of the compared cells (change of the medians with its CI, q-value, verdict) and
    a headline.

    Unchanged cells are listed only when ``show_unchanged`` (default: when 50 cells or fewer).
    """
    if show_unchanged is None:
        show_unchanged = len(comparison.cells) <= 50
    metric = comparison.metric
    table = compact_table(Text(f"{comparison.current_name}: current vs baseline", style="bold"))
    values: dict[str, set[str]] = {}
    for c in comparison.cells:
        for name, value in c.params.items():
            values.setdefault(name, set()).add(repr(value))
    names = [n for n, seen in values.items() if len(seen) > 1]
    for name in names:
        table.add_column(name, justify="right")
    if not names:
        table.add_column("cell", overflow="fold")
    # The Hodges-Lehmann shift and the floor are details of the Markdown, JSON and HTML reports
    # and of `bench check`'s lines: this table keeps to 80 columns.
    for name in ("baseline", "current", "change", f"{round(comparison.confidence * 100)}% CI"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("q", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    cells = sorted(comparison.cells, key=lambda c: (_verdict_rank(c.verdict), -abs_shift(c)))
    hidden = 0
    notes: list[Text] = []
    for c in cells:
        if c.verdict == "unchanged" and not show_unchanged:
            hidden += 1
            continue
        if c.note:
            lines = c.note.strip().splitlines()
            notes.append(Text(f"{c.key}: {c.verdict}: {lines[-1] if lines else ''}"))
        table.add_row(
            *param_cells(c.params, names, c.key),
            format_value(c.baseline_median, metric),
            format_value(c.current_median, metric),
            format_shift(c.change),
            compact_ci(c.change_ci),
            format_q(c.q_value),
            _verdict_text(c.verdict),
        )
    fit_columns(table)
    parts: list[RenderableType] = [table, *notes]
    if hidden:
        parts.append(Text(f"{hidden} unchanged cells not listed", style="dim"))
    style = "bold red" if comparison.has_regressions else "bold green"
    parts.append(Text(comparison_headline(comparison), style=style))
    return Group(*parts)


def history_table(
    suite: str, cells: Sequence[CellHistory], metric: str, *, one_cell: bool = False
) -> RenderableType:
    """A suite's history: per cell its first and latest median and the change points found, or,
    for one cell, every stored run (date, commit, median, interval, step)."""
    runs = max((len(c.points) for c in cells), default=0)
    if one_cell and cells:
        cell = cells[0]
        table = compact_table(Text(f"{suite}: {cell.key} - {metric} over {runs} runs", "bold"))
        for name in ("#", "date (UTC)", "commit", "median", "CI ±", "step"):
            right = name in ("#", "median", "CI ±")
            table.add_column(name, justify="right" if right else "left", no_wrap=True)
        for i, p in enumerate(cell.points):
            step = ""
            if p.change_point is not None:
                step = f"new level {format_shift(p.change_point.relative_change)}"
            width = (p.ci[1] - p.ci[0]) / 2 / p.median if p.median == p.median and p.median else 0
            table.add_row(
                str(i),
                f"{p.created_at:%Y-%m-%d %H:%M}",
                p.commit or "-",
                format_value(p.median, metric) if p.status == "ok" else Text(p.status, "red"),
                f"±{width:.1%}" if p.status == "ok" else "",
                Text(step, style="bold yellow"),
            )
        fit_columns(table)
        return table
    table = compact_table(Text(f"{suite} - median {metric} over {runs} stored runs", "bold"))
    values: dict[str, set[str]] = {}
    for c in cells:
        for name, value in c.params.items():
            values.setdefault(name, set()).add(repr(value))
    names = [n for n, seen in values.items() if len(seen) > 1]
    for name in names:
        table.add_column(name, justify="right")
    if not names:
        table.add_column("cell", overflow="fold")
    for name in ("runs", "first", "latest", "change"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("change points (run: step)", overflow="fold")
    for c in cells:
        measured = [p for p in c.points if p.median == p.median]
        first = measured[0].median if measured else math.nan
        last = measured[-1].median if measured else math.nan
        index = {p.suite_id: i for i, p in enumerate(c.points)}
        steps = ", ".join(
            f"#{index[p.suite_id]}: {format_shift(p.change_point.relative_change)}"
            for p in c.points
            if p.change_point is not None
        )
        table.add_row(
            *param_cells(c.params, names, c.key),
            str(len(measured)),
            format_value(first, metric),
            format_value(last, metric),
            format_shift(last / first - 1) if first and first == first else "-",
            Text(steps or "-", style="bold yellow" if steps else "dim"),
        )
    fit_columns(table)
    return table


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
