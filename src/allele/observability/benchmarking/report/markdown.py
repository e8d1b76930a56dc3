"""Markdown reports, e.g. for a CI job summary (``$GITHUB_STEP_SUMMARY``).

One table of cells: median, its confidence interval, and with a comparison the change, its
interval, the q-value and the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

from allele.observability.benchmarking.caveats import run_or_default_caveats
from allele.observability.benchmarking.compare import Comparison
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

_VERDICT_MARKS = {"regression": "🔴 regression", "improvement": "🟢 improvement"}


def markdown_report(
    run: SuiteRun, comparison: Comparison | None = None, caveats: Sequence[str] | None = None
) -> str:
    """The Markdown text of a run's report (with verdict columns when ``comparison`` is given);
    ``caveats`` default to the run's own."""
    summary = summarize_run(run, comparison)
    metric = summary.metric
    level = round((comparison.confidence if comparison else 0.95) * 100)
    lines = [f"## Benchmark `{run.name}`", ""]
    lines.append(
        f"Suite run `{run.suite_id or 'unsaved'}` of component `{run.component}`, "
        f"{run.created_at:%Y-%m-%d %H:%M} UTC, metric `{metric}`, {len(run.cells)} cells."
    )
    if run.commit.get("id") or run.commit.get("sha"):
        lines[-1] += f" Commit `{str(run.commit.get('id') or run.commit.get('sha'))[:12]}`."
    lines.append("")
    if comparison is not None:
        lines += [f"**{_escape(comparison_headline(comparison))}**", ""]
    warnings = run_or_default_caveats(run, comparison, caveats)
    if warnings:
        lines += [f"> warning: {_escape(line)}" for line in warnings] + [""]
    header = ["cell", "n", "median", f"{level}% CI", "p95", "CV"]
    if comparison is not None:
        header += ["change", f"change {level}% CI", "q", "verdict"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in summary.rows:
        # The markdown table leaves out the outlier count: a CI summary should stay narrow.
        values = [f"`{_escape(row.key)}`", *stat_cells(row.stats, metric)[:-1]]
        if row.stats is None:
            values[2] = row.status
        if comparison is not None:
            c = row.comparison
            if c is None:
                values += ["-", "-", "-", "-"]
            else:
                values += [
                    format_shift(c.change),
                    format_change_ci(c),
                    format_q(c.q_value),
                    _VERDICT_MARKS.get(c.verdict, c.verdict),
                ]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def comparison_markdown(comparison: Comparison) -> str:
    """The Markdown text of a comparison alone: regressions and improvements first."""
    metric = comparison.metric
    level = round(comparison.confidence * 100)
    lines = [f"## Benchmark comparison `{comparison.current_name}`", ""]
    lines += [f"**{_escape(comparison_headline(comparison))}**", ""]
    header = ["cell", "baseline", "current", "change", f"{level}% CI", "HL shift", "q", "verdict"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    order = {"regression": 0, "improvement": 1}
    for c in sorted(comparison.cells, key=lambda c: order.get(c.verdict, 2)):
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{_escape(c.key)}`",
                    format_value(c.baseline_median, metric),
                    format_value(c.current_median, metric),
                    format_shift(c.change),
                    format_change_ci(c),
                    format_shift(c.shift),
                    format_q(c.q_value),
                    _VERDICT_MARKS.get(c.verdict, c.verdict),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
