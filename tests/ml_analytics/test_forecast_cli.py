"""``allele analytics forecast NAME --horizon 1h`` on a stored series."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.cli.analytics_forecast import parse_span
from allele.errors import ValidationError
from allele.observability.store import open_store
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

runner = CliRunner()
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def store_uri(tmp_path):
    uri = f"sqlite:///{tmp_path / 'series.db'}"
    t = START + 60.0 * np.arange(600)  # one sample a minute, a 60-minute cycle, a level shift
    values = (
        50 + 10 * np.sin(2 * np.pi * np.arange(600) / 60) + np.where(np.arange(600) >= 400, 20, 0)
    )
    with open_store(uri) as store:
        key = SeriesKey("cpu_percent", (("host", "a"),), MetricType.GAUGE)
        store.write_batches([SeriesBatch(key, t, values)])
        other = SeriesKey("latency", (("host", "a"),), MetricType.GAUGE)
        store.write_batches([SeriesBatch(other, t, values)])
        other_b = SeriesKey("latency", (("host", "b"),), MetricType.GAUGE)
        store.write_batches([SeriesBatch(other_b, t, values)])
    return uri


def test_forecast_prints_sparklines_and_checkpoints(store_uri, tmp_path) -> None:
    page = tmp_path / "chart.html"
    result = runner.invoke(
        app,
        [
            "analytics",
            "forecast",
            "cpu_percent",
            "--horizon",
            "1h",
            "--store",
            store_uri,
            "--html",
            str(page),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cpu_percent: 600 points every 60 s; forecast 60 steps (1h)")
    assert "season 60" in lines[0]
    assert lines[1].startswith("history  ") and len(lines[1]) == len("history  ") + 60
    assert lines[2].startswith("forecast ") and set(lines[2][9:]) <= set("▁▂▃▄▅▆▇█")
    checkpoints = [line.split() for line in lines[3:8]]
    # The last point is at 09:59; the first step one minute on, the 60th at 10:59.
    assert checkpoints[0][0] == "2026-01-01T10:00:00+00:00"
    assert checkpoints[-1][0] == "2026-01-01T10:59:00+00:00"
    # Sample 600 is phase 0 of the cycle, on the shifted level: 70 (the series is noiseless).
    assert float(checkpoints[0][1]) == pytest.approx(70.0, abs=1.0)
    assert "level shifts in the history at 1 point(s)" in result.stdout
    html = page.read_text()
    assert "<html" in html.lower() and "level shift" in html and "forecast" in html.lower()


def test_forecast_errors_name_the_problem(store_uri) -> None:
    base = ["analytics", "forecast"]
    missing = runner.invoke(app, [*base, "nope", "--store", store_uri])
    assert missing.exit_code == 2 and "no stored series named 'nope'" in missing.output
    several = runner.invoke(app, [*base, "latency", "--store", store_uri])
    assert several.exit_code == 2 and "pick one with --label" in several.output
    picked = runner.invoke(app, [*base, "latency", "--label", "host=b", "--store", store_uri])
    assert picked.exit_code == 0, picked.output
    bad = runner.invoke(app, [*base, "cpu_percent", "--horizon", "soon", "--store", store_uri])
    assert bad.exit_code == 2 and "horizon='soon'" in bad.output


def test_parse_span() -> None:
    assert parse_span("90s") == 90 and parse_span("1h") == 3600 and parse_span("1.5d") == 129600
    with pytest.raises(ValidationError, match="positive span"):
        parse_span("0m")
