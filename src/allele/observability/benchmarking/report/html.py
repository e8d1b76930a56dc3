"""One self-contained HTML file per report, with plotly charts that work offline.

The file embeds plotly.js inline (``include_plotlyjs=True``), so it opens without a network.
It shows, for the primary metric's median:

- a heatmap over the two parameters with the most values (one heatmap per combination of the
  other parameters, chosen from a drop-down), regressed cells marked ``▲`` and improvements ``▼``;
- the sample distribution of every cell (box plots), regressed cells in red;
- scaling curves: the median (with its CI as error bars) against the numeric parameter with the
  most values, one line per combination of the others, regressions marked with a red cross;
- a table of every cell with its statistics and verdict.

plotly is the optional extra ``report``; it is imported only when a report is written.
"""

from __future__ import annotations

import html
import itertools
from pathlib import Path
from typing import Any

from allele.errors import require
from allele.observability.benchmarking.compare import Comparison
from allele.observability.benchmarking.model import SuiteRun
from allele.observability.benchmarking.report.summary import (
    CellRow,
    RunSummary,
    comparison_headline,
    format_q,
    format_shift,
    format_shift_ci,
    format_value,
    summarize_run,
)

_MARKS = {"regression": "▲", "improvement": "▼"}
_COLOURS = {"regression": "#d62728", "improvement": "#2ca02c", "other": "#1f77b4"}


def write_html_report(
    run: SuiteRun, path: str | Path, comparison: Comparison | None = None
) -> Path:
    """Write the self-contained HTML report of ``run`` to ``path`` and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html_report(run, comparison), encoding="utf-8")
    return out


def html_report(run: SuiteRun, comparison: Comparison | None = None) -> str:
    """The HTML text of the report (a full document with plotly.js inline)."""
    require("plotly", "report")
    summary = summarize_run(run, comparison)
    figures = [
        fig
        for fig in (_heatmap(summary), _distributions(summary), _scaling(summary))
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
    return _page(summary, divs)


def _labels(summary: RunSummary, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """A short label per cell key from its parameters (leaving out ``exclude``)."""
    names = [p for p in summary.varying_params if p not in exclude]
    return {
        row.key: ", ".join(f"{p}={row.params.get(p)}" for p in names) or row.key
        for row in summary.rows
    }


def _heatmap(summary: RunSummary) -> Any:
    varying = summary.varying_params
    if len(varying) < 2:
        return None
    go: Any = require("plotly.graph_objects", "report")
    x_name, y_name = varying[0], varying[1]
    xs, ys = summary.param_values[x_name], summary.param_values[y_name]
    rest = [p for p in varying[2:]]
    slices = list(itertools.product(*(summary.param_values[p] for p in rest))) or [()]
    fig = go.Figure()
    for n, combo in enumerate(slices):
        fixed = dict(zip(rest, combo, strict=True))
        z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
        text = [[""] * len(xs) for _ in ys]
        for row in summary.rows:
            if any(row.params.get(p) != v for p, v in fixed.items()) or row.stats is None:
                continue
            i, j = ys.index(row.params[y_name]), xs.index(row.params[x_name])
            z[i][j] = row.stats.median
            mark = _MARKS.get(row.verdict, "")
            text[i][j] = f"{format_value(row.stats.median, summary.metric)} {mark}".strip()
        fig.add_trace(
            go.Heatmap(
                x=[str(v) for v in xs],
                y=[str(v) for v in ys],
                z=z,
                text=text,
                texttemplate="%{text}",
                colorscale="Viridis",
                colorbar={"title": f"median {summary.metric}"},
                visible=(n == 0),
                name=", ".join(f"{p}={v}" for p, v in fixed.items()) or "all",
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
    fig.update_layout(
        title=f"Median {summary.metric} over {x_name} × {y_name} (▲ regression, ▼ improvement)",
        xaxis_title=x_name,
        yaxis_title=y_name,
    )
    return fig


def _distributions(summary: RunSummary) -> Any:
    measured = [r for r in summary.rows if r.stats is not None]
    if not measured:
        return None
    go: Any = require("plotly.graph_objects", "report")
    labels = _labels(summary)
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
    fig.update_layout(
        title=f"Distribution of {summary.metric} per cell",
        yaxis_title=summary.metric,
        xaxis={"categoryorder": "array", "categoryarray": [labels[r.key] for r in measured]},
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
    fig.update_layout(
        title=f"Scaling: median {summary.metric} against {x_name}",
        xaxis_title=x_name,
        yaxis_title=f"median {summary.metric}",
    )
    return fig


def _group(row: CellRow) -> str:
    return row.verdict if row.verdict in ("regression", "improvement") else "other"


def _page(summary: RunSummary, divs: list[str]) -> str:
    run = summary.run
    esc = html.escape
    comparison = summary.comparison
    metric = summary.metric
    head = [
        f"<h1>Benchmark {esc(run.name)}</h1>",
        f"<p>Run <code>{esc(run.suite_id or 'unsaved')}</code> of component "
        f"<code>{esc(run.component)}</code>, {esc(run.created_at.isoformat())}, "
        f"metric <code>{esc(metric)}</code>, {len(run.cells)} cells.</p>",
    ]
    if comparison is not None:
        cls = "bad" if comparison.has_regressions else "good"
        head.append(f'<p class="{cls}"><b>{esc(comparison_headline(comparison))}</b></p>')
    columns = ["cell", "status", "n", "median", "CI", "p95", "CV", "outliers"]
    if comparison is not None:
        columns += ["change", "change CI", "q", "verdict"]
    rows_html = []
    for row in summary.rows:
        s = row.stats
        values = [row.key, row.status if not row.error else f"{row.status}: {row.error}"]
        if s is None:
            values += ["0", "-", "-", "-", "-", "-"]
        else:
            values += [
                str(s.n),
                format_value(s.median, metric),
                f"{format_value(s.median_ci[0], metric)} - {format_value(s.median_ci[1], metric)}",
                format_value(s.percentiles["p95"], metric),
                "-" if s.cv != s.cv else f"{s.cv:.1%}",
                str(len(s.outliers)),
            ]
        if comparison is not None:
            c = row.comparison
            values += (
                [format_shift(c.shift), format_shift_ci(c), format_q(c.q_value), c.verdict]
                if c
                else ["-", "-", "-", "-"]
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
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;}"
        "td:first-child{text-align:left;font-family:monospace;}"
        "tr.regression{background:#fdd;}tr.improvement{background:#dfd;}"
        ".bad{color:#b00;}.good{color:#070;}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>Benchmark {esc(run.name)}</title><style>{style}</style></head><body>"
        + "".join(head)
        + "".join(f'<div class="figure">{d}</div>' for d in divs)
        + "<h2>Cells</h2>"
        + table
        + "</body></html>\n"
    )
