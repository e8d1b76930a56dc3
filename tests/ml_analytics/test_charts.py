"""The shared series charts: the terminal sparkline and the self-contained HTML chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from allele.errors import ValidationError
from allele.observability.ml_analytics.charts import series_chart_html, sparkline


def test_sparkline_maps_low_to_high_blocks() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"


def test_sparkline_is_bounded_by_width_and_averages_buckets() -> None:
    line = sparkline(list(range(1000)), width=10)
    assert len(line) == 10
    assert line[0] == "▁" and line[-1] == "█"
    # Averaging: the first half of a step series is low, the second half high.
    step = sparkline([0.0] * 50 + [1.0] * 50, width=4)
    assert step == "▁▁██"


def test_sparkline_edge_cases() -> None:
    assert sparkline([]) == ""
    assert sparkline([3.0, 3.0, 3.0]) == "▅▅▅"
    assert sparkline([0.0, float("nan"), 1.0]) == "▁ █"
    with pytest.raises(ValidationError, match="width"):
        sparkline([1.0], width=0)


def test_html_chart_is_self_contained_with_forecast_and_detections() -> None:
    pytest.importorskip("plotly")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ts = [t0 + timedelta(minutes=i) for i in range(20)]
    fts = [t0 + timedelta(minutes=20 + i) for i in range(5)]
    page = series_chart_html(
        ts,
        [float(i) for i in range(20)],
        title="latency <ms>",
        forecast_timestamps=fts,
        forecast_mean=[20.0] * 5,
        forecast_lower=[19.0] * 5,
        forecast_upper=[21.0] * 5,
        detections=[(ts[3], 3.0)],
        detection_labels=["latency_spike"],
    )
    assert page.startswith("<!DOCTYPE html>")
    assert "latency &lt;ms&gt;" in page
    assert "cdn.plot.ly" not in page.split("<script")[1][:200]  # plotly.js is inline
    for name in ('"history"', '"forecast"', '"interval"', '"detections"', "latency_spike"):
        assert name in page


def test_html_chart_rejects_mismatched_lengths() -> None:
    pytest.importorskip("plotly")
    with pytest.raises(ValidationError, match="values"):
        series_chart_html([1.0, 2.0], [1.0], title="x")
    with pytest.raises(ValidationError, match="forecast_lower and forecast_upper"):
        series_chart_html(
            [1.0],
            [1.0],
            title="x",
            forecast_timestamps=[2.0],
            forecast_mean=[1.0],
            forecast_lower=[0.0],
        )
