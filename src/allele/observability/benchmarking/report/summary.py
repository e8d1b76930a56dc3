"""The figures every report shows, computed once: one row per cell, plus the grid's parameters.

Also the shared number formatting, so that the terminal, Markdown and HTML reports print a
median or a change identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from allele.observability.benchmarking.compare import CellComparison, Comparison
from allele.observability.benchmarking.model import PRIMARY_METRIC, SuiteRun
from allele.observability.benchmarking.stats import GridStats, SampleStats, run_stats


@dataclass(frozen=True)
class CellRow:
    """One cell as reports show it: status, statistics (None unless measured) and verdict."""

    key: str
    params: dict[str, Any]
    status: str
    error: str | None
    stats: SampleStats | None
    comparison: CellComparison | None

    @property
    def verdict(self) -> str:
        return self.comparison.verdict if self.comparison is not None else ""


@dataclass(frozen=True)
class RunSummary:
    """A run, the statistics of ``metric`` over its cells, and its comparison if any."""

    run: SuiteRun
    metric: str
    grid: GridStats
    rows: list[CellRow]
    param_values: dict[str, list[Any]]
    comparison: Comparison | None

    @property
    def varying_params(self) -> list[str]:
        """Parameters taking two or more values, most values first (ties by name)."""
        names = [p for p, v in self.param_values.items() if len(v) > 1]
        return sorted(names, key=lambda p: (-len(self.param_values[p]), p))


def summarize_run(
    run: SuiteRun,
    comparison: Comparison | None = None,
    *,
    metric: str | None = None,
    confidence: float | None = None,
) -> RunSummary:
    """The RunSummary of ``run`` (metric and confidence default to the comparison's)."""
    metric = metric or (comparison.metric if comparison else PRIMARY_METRIC)
    confidence = confidence or (comparison.confidence if comparison else 0.95)
    grid = run_stats(run, metric, confidence)
    measured = {key: i for i, key in enumerate(grid.keys)}
    verdicts = {c.key: c for c in comparison.cells} if comparison is not None else {}
    rows = []
    for cell in run.cells:
        row = measured.get(cell.key)
        rows.append(
            CellRow(
                key=cell.key,
                params=dict(cell.params),
                status=cell.status,
                error=cell.error,
                stats=grid.cell(row) if row is not None else None,
                comparison=verdicts.get(cell.key),
            )
        )
    return RunSummary(
        run=run,
        metric=metric,
        grid=grid,
        rows=rows,
        param_values=param_values(run),
        comparison=comparison,
    )


def param_values(run: SuiteRun) -> dict[str, list[Any]]:
    """Each parameter's distinct values over the cells, sorted (numbers numerically)."""
    values: dict[str, list[Any]] = {}
    for cell in run.cells:
        for name, value in cell.params.items():
            seen = values.setdefault(name, [])
            if value not in seen:
                seen.append(value)
    return {name: sort_values(v) for name, v in values.items()}


def sort_values(values: list[Any]) -> list[Any]:
    """Numbers in numeric order, anything else in the order of its text."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return sorted(values, key=str)


def format_value(value: float | None, metric: str) -> str:
    """A metric value with a readable unit: seconds as ns/us/ms/s, others with 4 digits."""
    if value is None or math.isnan(value):
        return "-"
    if metric.endswith("_s") and not metric.endswith("_per_s"):
        value = float(f"{value:.3g}")  # round first so 999.7 us prints as 1 ms, not 1e+03 us
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value / 1e-9:.3g} ns"
    return f"{value:.4g}"


STAT_COLUMNS = ("n", "median", "CI", "p95", "CV", "outliers")


def stat_cells(stats: SampleStats | None, metric: str) -> list[str]:
    """The ``STAT_COLUMNS`` of a cell as text, the same in every report ("-" when unmeasured)."""
    if stats is None:
        return ["0", "-", "-", "-", "-", "-"]
    low, high = (format_value(v, metric) for v in stats.median_ci)
    return [
        str(stats.n),
        format_value(stats.median, metric),
        f"{low} - {high}",
        format_value(stats.percentiles["p95"], metric),
        "-" if math.isnan(stats.cv) else f"{stats.cv:.1%}",
        str(len(stats.outliers)),
    ]


# Scalar figures every cell has that are not the workload's own (latency is in the stats).
_TIMING_FIGURES = ("latency_p50_s", "latency_p95_s", "latency_p99_s", "ops_per_s")
# The workload's own memory; the process's peak RSS (``peak_rss_bytes``: interpreter and
# imports included, the same in every cell of a component) is stored but not a column.
_HIDDEN_FIGURES = ("peak_rss_bytes",)
_MEMORY_FIGURES = {
    "rss_growth_bytes": "RSS growth",
    "tracemalloc_peak_bytes": "tracemalloc peak",
    "gpu_memory_used_bytes": "GPU memory",
    "gpu_utilization_pct": "GPU use",
}


def figure_columns(run: SuiteRun) -> list[tuple[str, str]]:
    """``(metric, label)`` of the scalar figures worth a column, in report order.

    The workload's throughput in its own units (``generations_per_s`` -> "generations/s"), then
    its quality figures (best fitness, memory capacity...), then memory and GPU figures; only
    those some cell of ``run`` has.
    """
    present = list(
        dict.fromkeys(
            name for cell in run.cells for name in cell.metrics if name not in _HIDDEN_FIGURES
        )
    )
    throughput = [
        (n, n[: -len("_per_s")] + "/s")
        for n in present
        if n.endswith("_per_s") and n not in _TIMING_FIGURES
    ]
    quality = [
        (n, n.replace("_", " "))
        for n in present
        if not n.endswith("_per_s")
        and n not in _TIMING_FIGURES
        and n not in _MEMORY_FIGURES
        and not n.startswith("gpu_")
    ]
    memory = [(n, label) for n, label in _MEMORY_FIGURES.items() if n in present]
    return throughput + quality + memory


def format_figure(name: str, value: float | None) -> str:
    """A scalar figure for a table: bytes in MB, percentages with %, others with 4 digits.

    Large counts and rates get a k or M suffix (``194.1k``), which reads faster than ``1.941e+05``.
    """
    if value is None or math.isnan(value):
        return "-"
    if name.endswith("_bytes"):
        return f"{value / 1e6:.4g} MB"
    if name.endswith("_pct"):
        return f"{value:.0f}%"
    for suffix, scale in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= 10 * scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"


def format_shift(value: float | None) -> str:
    """A relative shift as a signed percentage (``+10.2%``)."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value * 100:+.1f}%"


def format_shift_ci(cell: CellComparison) -> str:
    """The Hodges-Lehmann shift's confidence interval as ``[-1.0%, +2.3%]``."""
    return _format_interval(cell.shift_ci)


def format_change_ci(cell: CellComparison) -> str:
    """The change of the medians' confidence interval as ``[-1.0%, +2.3%]``."""
    return _format_interval(cell.change_ci)


def _format_interval(bounds: tuple[float, float]) -> str:
    low, high = bounds
    if math.isnan(low) or math.isnan(high):
        return "-"
    return f"[{format_shift(low)}, {format_shift(high)}]"


def format_q(value: float) -> str:
    """A q-value with two significant digits ("-" when no test ran)."""
    if math.isnan(value):
        return "-"
    return f"{value:.2g}"


def comparison_headline(comparison: Comparison) -> str:
    """One line: what was compared with what, and how many cells got each verdict."""
    counts = {k: v for k, v in comparison.counts().items() if v}
    parts = ", ".join(f"{n} {verdict}" for verdict, n in counts.items()) or "no cells"
    base = comparison.baseline_id or comparison.baseline_name
    cur = comparison.current_id or comparison.current_name
    return (
        f"{cur} vs baseline {base} ({comparison.metric}, alpha={comparison.alpha:g}, "
        f"threshold={comparison.threshold:.1%}): {parts}"
    )
