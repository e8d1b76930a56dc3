"""Reports: terminal, Markdown, JSON and HTML carry the run's numbers and the verdicts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from allele.observability.benchmarking.compare import Comparison, compare_runs
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.benchmarking.report.html import html_report, write_html_report
from allele.observability.benchmarking.report.jsonreport import SCHEMA, write_json_report
from allele.observability.benchmarking.report.markdown import (
    comparison_markdown,
    markdown_report,
)
from allele.observability.benchmarking.report.summary import format_value, summarize_run
from allele.observability.benchmarking.report.terminal import render_comparison, render_run
from allele.observability.benchmarking.stats import describe

SLOW_CELL = "mutation_rate=0.2,population=200"


def _grid(factor: float, seed: int, suite_id: str) -> SuiteRun:
    rng = np.random.default_rng(seed)
    cells = []
    for population in (50, 100, 200):
        for rate in (0.1, 0.2):
            slow = factor if (population, rate) == (200, 0.2) else 1.0
            times = 1e-3 * population / 50 * slow * (1 + 0.02 * rng.standard_normal(20))
            cells.append(
                CellResult(
                    params={"population": population, "mutation_rate": rate},
                    samples={"time_s": times.tolist()},
                    metrics={
                        "best_fitness": 0.5 + population / 1000,
                        "generations_per_s": 5000.0 / population,
                        "ops_per_s": 1000.0 / population,
                        "peak_rss_bytes": 3e8,  # the process's: not a column
                        "rss_growth_bytes": 5e7,
                    },
                )
            )
    cells.append(
        CellResult(params={"population": 400, "mutation_rate": 0.1}, status="timeout", error="60 s")
    )
    return SuiteRun(name="evolution", component="evolution", suite_id=suite_id, cells=cells)


@pytest.fixture(scope="module")
def runs() -> tuple[SuiteRun, SuiteRun, Comparison]:
    baseline, current = _grid(1.0, 0, "base1"), _grid(1.25, 1, "cur1")
    return baseline, current, compare_runs(baseline, current)


def _text(renderable: object) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    console.file.close()
    return console.export_text()


def test_format_value_units() -> None:
    assert format_value(0.0012345, "time_s") == "1.23 ms"
    assert format_value(0.0009997, "time_s") == "1 ms"  # rounded before choosing the unit
    assert format_value(2.5e-8, "time_s") == "25 ns"
    assert format_value(1234.5, "ops_per_s") == "1234"
    assert format_value(float("nan"), "time_s") == "-"


def test_terminal_run_table_shows_medians_cis_and_verdicts(runs) -> None:
    _, current, comparison = runs
    text = _text(render_run(current, comparison))
    stats = describe(current.cell(SLOW_CELL).samples["time_s"])
    assert format_value(stats.median, "time_s") in text
    low, high = stats.median_ci
    assert f"±{(high - low) / 2 / stats.median:.1%}" in text  # the CI, as a share of the median
    assert "regression" in text and "timeout: 60 s" in text
    assert "cur1" in text  # suite id in the title, not swallowed as rich markup
    # Parameters are columns; the regressed cell (200, 0.2) is listed first.
    rows = [line.split() for line in text.splitlines()]
    assert rows[1][:2] == ["population", "mutation_rate"]
    assert rows[3][:2] == ["200", "0.2"]


def test_terminal_tables_read_at_80_columns_without_a_terminal(runs) -> None:
    import io

    _, current, comparison = runs
    for renderable, unit_at in (
        (render_run(current), 4),  # parameters, n, median
        (render_run(current, comparison), 4),
        (render_comparison(comparison), 3),  # parameters, baseline median
    ):
        out = io.StringIO()
        Console(file=out, width=80).print(renderable)  # not a TTY: what a CI log gets
        lines = out.getvalue().splitlines()
        assert max(len(line) for line in lines) <= 80
        assert "…" not in out.getvalue()  # nothing cut
        body = [line.split() for line in lines if line.strip()[:1].isdigit()]
        # Each row starts with its parameters whole, one per column, then n and the median.
        assert {tuple(row[:2]) for row in body} >= {("50", "0.1"), ("200", "0.2")}
        assert all(row[unit_at] in ("us", "ms") for row in body if row[2] not in ("0", "-"))


def test_terminal_comparison_table(runs) -> None:
    _, _, comparison = runs
    slow = comparison.cell(SLOW_CELL)
    text = _text(render_comparison(comparison))
    assert f"{slow.change * 100:+.1f}%" in text
    assert "1 regression" in text and "1 failed" in text
    assert "unchanged" in text  # 7 cells: unchanged ones are listed


def test_markdown_report_rows(runs) -> None:
    _, current, comparison = runs
    md = markdown_report(current, comparison)
    slow = comparison.cell(SLOW_CELL)
    stats = describe(current.cell(SLOW_CELL).samples["time_s"])
    row = next(line for line in md.splitlines() if SLOW_CELL in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "20"
    assert cells[2] == format_value(stats.median, "time_s")
    # The change shown is that of the medians shown: it cannot contradict them.
    assert cells[6] == f"{slow.change * 100:+.1f}%"
    assert slow.change == pytest.approx(slow.current_median / slow.baseline_median - 1)
    assert "regression" in cells[-1]
    assert md.count("\n| `") == 7  # one row per cell
    text = comparison_markdown(comparison)
    first_row = next(line for line in text.splitlines() if line.startswith("| `"))
    assert SLOW_CELL in first_row  # regressions first


def test_json_report_is_strict_json_with_the_documented_schema(runs, tmp_path: Path) -> None:
    _, current, comparison = runs
    path = write_json_report(current, tmp_path / "r.json", comparison)
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA
    assert data["suite"]["suite_id"] == "cur1"
    by_key = {c["key"]: c for c in data["cells"]}
    slow = by_key[SLOW_CELL]
    stats = describe(current.cell(SLOW_CELL).samples["time_s"])
    assert slow["stats"]["median"] == pytest.approx(stats.median)
    assert slow["stats"]["median_ci"] == pytest.approx(list(stats.median_ci))
    assert set(slow["stats"]["percentiles"]) == {"p5", "p25", "p50", "p75", "p95", "p99"}
    assert slow["comparison"]["verdict"] == "regression"
    assert slow["metrics"]["best_fitness"] == pytest.approx(0.7)
    timeout = by_key["mutation_rate=0.1,population=400"]
    assert timeout["stats"] is None and timeout["status"] == "timeout"
    assert data["comparison"]["counts"]["regression"] == 1
    assert "NaN" not in path.read_text()


def test_html_report_is_self_contained_and_marks_regressions(runs, tmp_path: Path) -> None:
    _, current, comparison = runs
    path = write_html_report(current, tmp_path / "report.html", comparison)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # plotly.js is inline: no script is fetched from the network.
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?https?:", text, re.IGNORECASE)
    assert "Plotly.newPlot" in text and len(text) > 1_000_000
    # change heatmap, median heatmap, distributions, scaling
    assert text.count("Plotly.newPlot") == 4
    assert '<tr class="regression">' in text and SLOW_CELL in text
    assert "\\u25b2" in text or "▲" in text  # the heatmap's regression mark (JSON-escaped)


def test_html_figures_hold_the_medians(runs) -> None:
    pytest.importorskip("plotly")
    from allele.observability.benchmarking.report import html

    _, current, comparison = runs
    summary = summarize_run(current, comparison)
    heat = html._heatmap(summary)
    trace = heat.data[0]
    # Axes: population (most values; 400 only timed out) on x and mutation_rate on y.
    assert list(trace.x) == ["50", "100", "200", "400"] and list(trace.y) == ["0.1", "0.2"]
    assert trace.z[0][3] is None  # the timed-out cell has no median
    stats = describe(current.cell(SLOW_CELL).samples["time_s"])
    assert trace.z[1][2] == pytest.approx(stats.median)
    assert "▲" in trace.text[1][2] and "▲" not in trace.text[0][0]
    scaling = html._scaling(summary)
    names = [t.name for t in scaling.data]
    assert "regression" in names  # the red crosses
    line = next(t for t in scaling.data if t.name == "mutation_rate=0.2")
    assert list(line.x) == [50, 100, 200]
    assert line.y[2] == pytest.approx(stats.median)


def test_html_with_three_parameters_offers_one_heatmap_per_slice() -> None:
    pytest.importorskip("plotly")
    from allele.observability.benchmarking.report import html

    cells = [
        CellResult(params={"a": a, "b": b, "c": c}, samples={"time_s": [1.0 + a + b, 1.1 + a]})
        for a in (1, 2, 3)
        for b in (1, 2, 3)
        for c in ("x", "y")
    ]
    run = SuiteRun(name="three", component="t", cells=cells)
    fig = html._heatmap(summarize_run(run))
    assert len(fig.data) == 2
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["c=x", "c=y"]
    assert "Plotly.newPlot" in html_report(run)


def test_html_change_heatmap_holds_each_cells_change(runs) -> None:
    pytest.importorskip("plotly")
    from allele.observability.benchmarking.report import html

    _, current, comparison = runs
    fig = html._change_heatmap(summarize_run(current, comparison))
    trace = fig.data[0]
    slow = comparison.cell(SLOW_CELL)
    assert slow is not None and slow.verdict == "regression"
    # population 200 is column 2, mutation_rate 0.2 row 1; values in percent.
    assert trace.z[1][2] == pytest.approx(slow.change * 100)
    assert trace.text[1][2] == f"{slow.change * 100:+.1f}% ▲"
    # Centred on zero and symmetric, so white means unchanged.
    assert trace.zmid == 0 and trace.zmin == -trace.zmax and trace.zmax >= slow.change * 100
    assert html._change_heatmap(summarize_run(current)) is None  # nothing to compare


def test_html_uses_log_scales_when_the_grid_spans_decades() -> None:
    pytest.importorskip("plotly")
    from allele.observability.benchmarking.report import html

    cells = [
        CellResult(params={"size": size, "kind": kind}, samples={"time_s": [t, t * 1.01, t * 0.99]})
        for size, t in ((10, 1e-5), (100, 1e-4), (1000, 1e-3))
        for kind in ("a", "b")
    ]
    summary = summarize_run(SuiteRun(name="wide", component="t", cells=cells))
    heat = html._heatmap(summary)
    assert heat.data[0].z[0][0] == pytest.approx(-5.0)  # log10 of 10 us
    assert heat.data[0].colorbar.ticktext[0] == "10 us"
    scaling = html._scaling(summary)
    assert scaling.layout.xaxis.type == "log" and scaling.layout.yaxis.type == "log"
    assert html._distributions(summary).layout.yaxis.type == "log"


def test_html_table_shows_workload_throughput_quality_and_memory(runs) -> None:
    pytest.importorskip("plotly")
    from allele.observability.benchmarking.report.summary import figure_columns

    _, current, comparison = runs
    assert figure_columns(current) == [
        ("generations_per_s", "generations/s"),
        ("best_fitness", "best fitness"),
        ("rss_growth_bytes", "RSS growth"),
    ]
    text = html_report(current, comparison)
    assert "<th>generations/s</th><th>best fitness</th><th>RSS growth</th>" in text
    assert "<td>25</td><td>0.7</td><td>50 MB</td>" in text  # population 200


def test_html_time_axes_say_ms_and_us_never_si_prefixes(runs) -> None:
    pytest.importorskip("plotly")
    from allele.observability.benchmarking.report import html

    _, current, comparison = runs
    summary = summarize_run(current, comparison)
    for fig in (html._distributions(summary), html._scaling(summary)):
        axis = fig.layout.yaxis
        assert axis.tickformat is None and axis.ticksuffix is None  # no d3 "~s": "2m" for 2 ms
        assert axis.ticktext and all(t.endswith((" us", " ms", " s", " ns")) for t in axis.ticktext)
    assert html.time_ticks([0.0011, 0.0049], log=False) == [0.001, 0.002, 0.003, 0.004, 0.005]
    assert html.time_ticks([2e-6, 3e-4], log=True)[:3] == [1e-06, 2e-06, 5e-06]
