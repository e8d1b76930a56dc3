"""One self-contained HTML file per report, with plotly charts that work offline.

The file embeds plotly.js inline (``include_plotlyjs=True``), so it opens without a network.
It shows, for the primary metric's median:

- with a comparison, first a heatmap of each cell's change against the baseline (red slower,
  blue faster, centred on 0), regressed cells marked ``▲`` and improvements ``▼``: the answer
  at a glance;
- a heatmap of the median over the two parameters with the most values (one heatmap per
  combination of the other parameters, chosen from a drop-down), marked likewise; the colour
  follows the logarithm of the median when the grid spans more than a factor of ten, so that
  fast cells are not all one colour;
- the sample distribution of every cell (box plots), regressed cells in red;
- scaling curves: the median (with its CI as error bars) against the numeric parameter with the
  most values, one line per combination of the others, regressions marked with a red cross;
- with the suite's stored runs, its history: each cell's median across runs and commits, the
  change points (where a cell's level stepped) marked;
- a table of every cell with its statistics, its throughput in the workload's own units, its
  quality figures and its own memory, and its verdict; and the machine and commit of the run.

The noise caveats of ``caveats`` (spread, load, parallel workers, unchanged code) stand under
the headline, as in the terminal and ``bench check``.

Axes switch to a log scale where the values span more than a factor of ten.

plotly is the optional extra ``report``; it is imported only when a report is written.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from allele.errors import require
from allele.observability.benchmarking.caveats import run_or_default_caveats
from allele.observability.benchmarking.compare import Comparison
from allele.observability.benchmarking.model import SuiteRun
from allele.observability.benchmarking.report.summary import (
    STAT_COLUMNS,
    CellRow,
    RunSummary,
    comparison_headline,
    figure_columns,
    format_change_ci,
    format_figure,
    format_q,
    format_shift,
    format_value,
    stat_cells,
    summarize_run,
)

_MARKS = {"regression": "▲", "improvement": "▼"}
_COLOURS = {"regression": "#d62728", "improvement": "#2ca02c", "other": "#1f77b4"}
# Above this ratio of largest to smallest value, an axis or a colour scale is logarithmic.
_LOG_SPAN = 10.0


def write_html_report(
    run: SuiteRun,
    path: str | Path,
    comparison: Comparison | None = None,
    *,
    caveats: Sequence[str] | None = None,
    history: Sequence[SuiteRun] = (),
) -> Path:
    """Write the self-contained HTML report of ``run`` to ``path`` and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html_report(run, comparison, caveats=caveats, history=history), "utf-8")
    return out


def html_report(
    run: SuiteRun,
    comparison: Comparison | None = None,
    *,
    caveats: Sequence[str] | None = None,
    history: Sequence[SuiteRun] = (),
) -> str:
    """The HTML text of the report (a full document with plotly.js inline).

    ``caveats`` (default: the run's own) are shown under the headline; ``history`` (the
    suite's stored runs, oldest first) adds the history section.
    """
    require("plotly", "report")
    summary = summarize_run(run, comparison)
    figures = [
        fig
        for fig in (
            _change_heatmap(summary),
            _heatmap(summary),
            _distributions(summary),
            _scaling(summary),
            _history(history, summary.metric),
        )
        if fig is not None
    ]
    divs = []
    for i, fig in enumerate(figures):
        divs.append(
            fig.to_html(
                full_html=False,
                include_plotlyjs=(i == 0),  # inline once; later figures reuse it
                config={"displaylogo": False, "responsive": True},
            )
        )
    return _page(summary, divs, run_or_default_caveats(run, comparison, caveats))


def _labels(summary: RunSummary, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """A short label per cell key from its parameters (leaving out ``exclude``)."""
    names = [p for p in summary.varying_params if p not in exclude]
    return {
        row.key: ", ".join(f"{p}={row.params.get(p)}" for p in names) or row.key
        for row in summary.rows
    }


def _spans_decades(values: list[float]) -> bool:
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return bool(finite) and max(finite) / min(finite) > _LOG_SPAN


def _grid_figure(
    summary: RunSummary,
    value_of: Any,
    text_of: Any,
    trace_style: dict[str, Any],
    title: str,
) -> Any:
    """Heatmaps over the two parameters with the most values, one per slice of the others.

    ``value_of(row)`` gives a cell's colour value (None leaves it blank), ``text_of(row)`` its
    label; a drop-down picks the slice when more than two parameters vary.
    """
    go: Any = require("plotly.graph_objects", "report")
    varying = summary.varying_params
    x_name, y_name = varying[0], varying[1]
    xs, ys = summary.param_values[x_name], summary.param_values[y_name]
    rest = varying[2:]
    slices = list(itertools.product(*(summary.param_values[p] for p in rest))) or [()]
    fig = go.Figure()
    for n, combo in enumerate(slices):
        fixed = dict(zip(rest, combo, strict=True))
        z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
        text = [[""] * len(xs) for _ in ys]
        for row in summary.rows:
            if any(row.params.get(p) != v for p, v in fixed.items()):
                continue
            value = value_of(row)
            if value is None:
                continue
            i, j = ys.index(row.params[y_name]), xs.index(row.params[x_name])
            z[i][j] = value
            text[i][j] = text_of(row)
        fig.add_trace(
            go.Heatmap(
                x=[str(v) for v in xs],
                y=[str(v) for v in ys],
                z=z,
                text=text,
                texttemplate="%{text}",
                hovertemplate=f"{x_name}=%{{x}}<br>{y_name}=%{{y}}<br>%{{text}}<extra></extra>",
                visible=(n == 0),
                name=", ".join(f"{p}={v}" for p, v in fixed.items()) or "all",
                **trace_style,
            )
        )
    if len(slices) > 1:
        buttons = [
            {
                "label": trace.name,
                "method": "update",
                "args": [{"visible": [k == n for k in range(len(slices))]}],
            }
            for n, trace in enumerate(fig.data)
        ]
        fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1.0, "y": 1.15}])
    fig.update_layout(title=title, xaxis_title=x_name, yaxis_title=y_name)
    return fig


def _heatmap(summary: RunSummary) -> Any:
    if len(summary.varying_params) < 2:
        return None
    metric = summary.metric
    medians = [row.stats.median for row in summary.rows if row.stats is not None]
    log = _spans_decades(medians)

    def value_of(row: CellRow) -> float | None:
        if row.stats is None:
            return None
        median = row.stats.median
        return math.log10(median) if log and median > 0 else median

    def text_of(row: CellRow) -> str:
        assert row.stats is not None
        mark = _MARKS.get(row.verdict, "")
        return f"{format_value(row.stats.median, metric)} {mark}".strip()

    colorbar: dict[str, Any] = {"title": f"median {metric}"}
    if log:
        # Colour by log10(median), labelled in the metric's own unit.
        low, high = math.log10(min(medians)), math.log10(max(medians))
        ticks = [low + (high - low) * k / 4 for k in range(5)]
        colorbar.update(tickvals=ticks, ticktext=[format_value(10**t, metric) for t in ticks])
    elif metric.endswith("_s") and not metric.endswith("_per_s"):
        ticks = time_ticks(medians, log=False)
        colorbar.update(tickvals=ticks, ticktext=[format_value(t, metric) for t in ticks])
    style = {"colorscale": "Viridis", "colorbar": colorbar}
    scale = " (log colour scale)" if log else ""
    x_name, y_name = summary.varying_params[:2]
    title = f"Median {metric} over {x_name} × {y_name}{scale}" + (
        " (▲ regression, ▼ improvement)" if summary.comparison is not None else ""
    )
    return _grid_figure(summary, value_of, text_of, style, title)


def _change_heatmap(summary: RunSummary) -> Any:
    """The relative change of each cell against the baseline, red slower, blue faster."""
    if summary.comparison is None or len(summary.varying_params) < 2:
        return None
    shifts = [
        abs(row.comparison.change)
        for row in summary.rows
        if row.comparison is not None and not math.isnan(row.comparison.change)
    ]
    if not shifts:
        return None
    # Symmetric around 0 so that white means "no change"; at least +-10 % so that noise-sized
    # changes stay pale.
    bound = max(0.10, max(shifts)) * 100

    def value_of(row: CellRow) -> float | None:
        c = row.comparison
        return None if c is None or math.isnan(c.change) else c.change * 100

    def text_of(row: CellRow) -> str:
        assert row.comparison is not None
        mark = _MARKS.get(row.verdict, "")
        return f"{format_shift(row.comparison.change)} {mark}".strip()

    sign = -1 if summary.comparison.higher_is_better else 1
    style = {
        # RdBu runs red to blue; reversed, high (slower) values are red.
        "colorscale": "RdBu" if sign < 0 else "RdBu_r",
        "zmin": -bound,
        "zmax": bound,
        "zmid": 0,
        "colorbar": {"title": "change %", "ticksuffix": "%"},
    }
    x_name, y_name = summary.varying_params[:2]
    title = (
        f"Change of the median {summary.metric} against the baseline over {x_name} × {y_name} "
        "(▲ regression, ▼ improvement: significant and beyond the floor)"
    )
    return _grid_figure(summary, value_of, text_of, style, title)


def _distributions(summary: RunSummary) -> Any:
    measured = [r for r in summary.rows if r.stats is not None]
    if not measured:
        return None
    go: Any = require("plotly.graph_objects", "report")
    varying = summary.varying_params
    # Values only ("50 / 0.1"), the parameter names once in the axis title: short tick labels.
    labels = {
        r.key: " / ".join(str(r.params.get(p)) for p in varying) or r.key for r in summary.rows
    }
    samples = {c.key: c.samples.get(summary.metric, []) for c in summary.run.cells}
    fig = go.Figure()
    for group in ("other", "improvement", "regression"):
        rows = [r for r in measured if _group(r) == group]
        if not rows:
            continue
        fig.add_trace(
            go.Box(
                x=[labels[r.key] for r in rows for _ in samples[r.key]],
                y=[v for r in rows for v in samples[r.key]],
                name={"other": "cells", "improvement": "improved", "regression": "regressed"}[
                    group
                ],
                marker_color=_COLOURS[group],
                boxpoints="outliers",
            )
        )
    all_values = [v for r in measured for v in samples[r.key]]
    fig.update_layout(
        title=f"Distribution of {summary.metric} per cell (points: outliers, flagged not dropped)",
        yaxis=_value_axis(summary.metric, _spans_decades(all_values), all_values),
        xaxis={
            "title": " / ".join(varying),
            "categoryorder": "array",
            "categoryarray": [labels[r.key] for r in measured],
        },
        boxmode="overlay",
    )
    return fig


def _scaling(summary: RunSummary) -> Any:
    numeric = [
        p
        for p in summary.varying_params
        if all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in summary.param_values[p]
        )
    ]
    if not numeric:
        return None
    go: Any = require("plotly.graph_objects", "report")
    x_name = numeric[0]
    labels = _labels(summary, exclude=(x_name,))
    lines: dict[str, list[CellRow]] = {}
    for row in summary.rows:
        if row.stats is not None:
            lines.setdefault(labels[row.key] if labels[row.key] != row.key else "all", []).append(
                row
            )
    fig = go.Figure()
    flagged_x: list[Any] = []
    flagged_y: list[float] = []
    for name, rows in lines.items():
        rows = sorted(rows, key=lambda r: r.params[x_name])
        medians = [r.stats.median for r in rows if r.stats]
        fig.add_trace(
            go.Scatter(
                x=[r.params[x_name] for r in rows],
                y=medians,
                mode="lines+markers",
                name=name,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r.stats.median_ci[1] - r.stats.median for r in rows if r.stats],
                    "arrayminus": [r.stats.median - r.stats.median_ci[0] for r in rows if r.stats],
                },
            )
        )
        for r in rows:
            if r.verdict == "regression" and r.stats:
                flagged_x.append(r.params[x_name])
                flagged_y.append(r.stats.median)
    if flagged_x:
        fig.add_trace(
            go.Scatter(
                x=flagged_x,
                y=flagged_y,
                mode="markers",
                name="regression",
                marker={"symbol": "x", "size": 14, "color": _COLOURS["regression"]},
            )
        )
    xs = [float(v) for v in summary.param_values[x_name]]
    ys = [r.stats.median for r in summary.rows if r.stats is not None]
    # Log-log when both span decades: a power law (time ~ size^k) is then a straight line.
    log_x = _spans_decades(xs) and min(xs) > 0
    log_y = _spans_decades(ys)
    fig.update_layout(
        title=f"Scaling: median {summary.metric} (95% CI bars) against {x_name}"
        + (" (log-log)" if log_x and log_y else ""),
        xaxis={"title": x_name, "type": "log" if log_x else "linear"},
        yaxis=_value_axis(f"median {summary.metric}", log_y, ys),
    )
    return fig


def _history(history: Sequence[SuiteRun], metric: str) -> Any:
    """Each cell's median (95% CI bars) across the suite's stored runs, change points marked."""
    if len(history) < 2:
        return None
    from allele.observability.benchmarking.history import suite_history

    go: Any = require("plotly.graph_objects", "report")
    cells = suite_history(history, metric=metric)
    labels = [f"#{i} {run.created_at:%m-%d %H:%M} {run.commit.get('id', '')[:8]}" for i, run in
              enumerate(history)]  # fmt: skip
    position = {run.suite_id: i for i, run in enumerate(history)}
    fig = go.Figure()
    steps_x: list[str] = []
    steps_y: list[float] = []
    steps_text: list[str] = []
    for cell in cells:
        measured = [p for p in cell.points if not math.isnan(p.median)]
        if not measured:
            continue
        fig.add_trace(
            go.Scatter(
                x=[labels[position[p.suite_id]] for p in measured],
                y=[p.median for p in measured],
                mode="lines+markers",
                name=cell.key,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [p.ci[1] - p.median for p in measured],
                    "arrayminus": [p.median - p.ci[0] for p in measured],
                },
            )
        )
        for p in measured:
            if p.change_point is not None:
                steps_x.append(labels[position[p.suite_id]])
                steps_y.append(p.median)
                steps_text.append(
                    f"{cell.key}: {format_value(p.change_point.before, metric)} -> "
                    f"{format_value(p.change_point.after, metric)} "
                    f"({format_shift(p.change_point.relative_change)})"
                )
    if steps_x:
        fig.add_trace(
            go.Scatter(
                x=steps_x,
                y=steps_y,
                text=steps_text,
                mode="markers",
                name="change point",
                hovertemplate="%{text}<extra>change point</extra>",
                marker={"symbol": "star", "size": 16, "color": _COLOURS["regression"]},
            )
        )
    values = [p.median for c in cells for p in c.points if not math.isnan(p.median)]
    fig.update_layout(
        title=f"History: median {metric} of each cell across {len(history)} stored runs "
        "(95% CI bars; stars: change points, where a cell's level stepped)",
        xaxis={"title": "run (date, commit)", "type": "category"},
        yaxis=_value_axis(f"median {metric}", _spans_decades(values), values),
    )
    return fig


def _value_axis(title: str, log: bool, values: Sequence[float] = ()) -> dict[str, Any]:
    """A y axis; for seconds, ticks written as the tables write times (``500 us``, ``2 ms``),
    never d3's SI prefixes (``500µ``, ``2m``, where "m" reads as minutes or metres)."""
    axis: dict[str, Any] = {"title": title, "type": "log" if log else "linear"}
    metric = title.split()[-1]
    if metric.endswith("_s") and not metric.endswith("_per_s"):
        ticks = time_ticks(values, log)
        if ticks:
            axis.update(tickvals=ticks, ticktext=[format_value(t, metric) for t in ticks])
    return axis


def time_ticks(values: Sequence[float], log: bool) -> list[float]:
    """Round tick values (1, 2, 5 times a power of ten) spanning ``values``."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if log:
        finite = [v for v in finite if v > 0]
    if not finite:
        return []
    low, high = min(finite), max(finite)
    if log:
        ticks = [
            m * 10.0**e
            for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in (1.0, 2.0, 5.0)
        ]
        ticks = [t for t in ticks if low / 2 <= t <= high * 2]
        return [float(f"{t:.3g}") for t in ticks]
    span = high - low if high > low else abs(high) or 1.0
    raw = span / 5.0
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    start = math.floor(low / step) * step
    count = math.ceil((high - start) / step) + 1
    return [float(f"{start + k * step:.6g}") for k in range(count) if start + k * step >= 0]


def _group(row: CellRow) -> str:
    return row.verdict if row.verdict in ("regression", "improvement") else "other"


def _provenance(run: SuiteRun) -> str:
    """One line naming the machine, the interpreter and the commit the run measured."""
    machine, commit = run.machine, run.commit
    cpu = machine.get("cpu") or {}
    parts = []
    if machine:
        brand = cpu.get("brand_raw") or machine.get("processor")
        python = f"{machine.get('python_implementation', 'Python')} {machine.get('python_version')}"
        parts.append(
            f"machine {machine.get('node', '?')}: {brand}, {cpu.get('count', '?')} CPUs, {python}"
        )
    if commit.get("id"):
        dirty = " with uncommitted changes" if commit.get("dirty") else ""
        parts.append(
            f"commit {str(commit['id'])[:12]} ({commit.get('project', '?')}, "
            f"{commit.get('branch', '?')}){dirty}"
        )
    elif commit.get("error"):
        parts.append("commit unknown (not run from a git checkout)")
    return "; ".join(parts)


def _page(summary: RunSummary, divs: list[str], caveats: Sequence[str] = ()) -> str:
    run = summary.run
    esc = html.escape
    comparison = summary.comparison
    metric = summary.metric
    head = [
        f"<h1>Benchmark {esc(run.name)}</h1>",
        f"<p>Run <code>{esc(run.suite_id or 'unsaved')}</code> of component "
        f"<code>{esc(run.component)}</code>, {run.created_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"metric <code>{esc(metric)}</code> (seconds per operation), {len(run.cells)} cells.</p>",
    ]
    provenance = _provenance(run)
    if provenance:
        head.append(f'<p class="dim">{esc(provenance)}</p>')
    if comparison is not None:
        cls = "bad" if comparison.has_regressions else "good"
        head.append(f'<p class="{cls}"><b>{esc(comparison_headline(comparison))}</b></p>')
    for line in caveats:
        head.append(f'<p class="warn">warning: {esc(line)}</p>')
    figures = figure_columns(run)
    columns = ["cell", "status", *STAT_COLUMNS, *(label for _, label in figures)]
    if comparison is not None:
        columns += ["change", "change CI", "HL shift", "q", "verdict"]
    metrics_of = {c.key: c.metrics for c in run.cells}
    rows_html = []
    for row in summary.rows:
        values = [row.key, row.status if not row.error else f"{row.status}: {row.error}"]
        values += stat_cells(row.stats, metric)
        values += [format_figure(name, metrics_of[row.key].get(name)) for name, _ in figures]
        if comparison is not None:
            c = row.comparison
            values += (
                [
                    format_shift(c.change),
                    format_change_ci(c),
                    format_shift(c.shift),
                    format_q(c.q_value),
                    c.verdict,
                ]
                if c
                else ["-", "-", "-", "-", "-"]
            )
        cells = "".join(f"<td>{esc(v)}</td>" for v in values)
        rows_html.append(f'<tr class="{esc(row.verdict)}">{cells}</tr>')
    table = (
        "<table><thead><tr>"
        + "".join(f"<th>{esc(c)}</th>" for c in columns)
        + "</tr></thead><tbody>"
        + "".join(rows_html)
        + "</tbody></table>"
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:1.5em;}"
        "table{border-collapse:collapse;font-size:0.85em;}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap;}"
        ".cells{overflow-x:auto;}"
        "td:first-child{text-align:left;font-family:monospace;}"
        "tr.regression{background:#fdd;}tr.improvement{background:#dfd;}"
        ".bad{color:#b00;}.good{color:#070;}.dim{color:#555;}.warn{color:#8a5a00;}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>Benchmark {esc(run.name)}</title><style>{style}</style></head><body>"
        + "".join(head)
        + "".join(f'<div class="figure">{d}</div>' for d in divs)
        + '<h2>Cells</h2><div class="cells">'
        + table
        + "</div>"
        + "</body></html>\n"
    )
