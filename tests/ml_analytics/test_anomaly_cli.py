"""``allele analytics nab`` on a small NAB-layout corpus and ``allele analytics detect``."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.observability.ml_analytics.anomaly.nab import run_nab
from allele.observability.store import open_store
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

T0 = datetime(2026, 1, 1)


def _corpus(root: Path) -> tuple[Path, Path]:
    """Two 5-minute series of 2000 rows: one with a spike at row 1500, one without."""
    rng = np.random.default_rng(0)
    data = root / "data"
    windows: dict[str, list[list[str]]] = {}
    for category, name, spike in (("synthetic", "spiky.csv", True), ("quiet", "flat.csv", False)):
        (data / category).mkdir(parents=True)
        stamps = [T0 + timedelta(minutes=5 * i) for i in range(2000)]
        values = 10 + 2 * np.sin(np.arange(2000) * 2 * math.pi / 288) + rng.normal(0, 0.2, 2000)
        if spike:
            values[1500] += 10
        with (data / category / name).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "value"])
            for t, v in zip(stamps, values, strict=True):
                w.writerow([f"{t:%Y-%m-%d %H:%M:%S}", v])
        windows[f"{category}/{name}"] = (
            [
                [
                    f"{stamps[1400]:%Y-%m-%d %H:%M:%S}.000000",
                    f"{stamps[1600]:%Y-%m-%d %H:%M:%S}.000000",
                ]
            ]
            if spike
            else []
        )
    labels = root / "windows.json"
    labels.write_text(json.dumps(windows))
    return data, labels


def test_nab_writes_results_and_prints_every_profile(tmp_path: Path) -> None:
    data, labels = _corpus(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["analytics", "nab", "--data", str(data), "--labels", str(labels), "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    for word in ("standard", "reward_low_FP", "reward_low_FN", "synthetic", "quiet", "ARTime"):
        assert word in result.output
    path = out / "residual_novelty" / "synthetic" / "residual_novelty_spiky.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == 2000
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    assert sum(int(r["label"]) for r in rows) == 201
    # The spike is found early in its window and nothing else fires: a perfect score.
    report = run_nab(data, labels, tmp_path / "again")
    assert report.profiles["standard"].normalised == pytest.approx(100 * (0.85 + 1) / 2, abs=8)


def test_nab_rejects_an_unknown_detector_and_missing_data(tmp_path: Path) -> None:
    data, labels = _corpus(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(
        app,
        [
            "analytics",
            "nab",
            "--data",
            str(data),
            "--labels",
            str(labels),
            "--output",
            str(tmp_path / "o"),
            "--detector",
            "nope",
        ],
    )
    assert bad.exit_code == 2 and "unknown detector 'nope'" in bad.output
    missing = runner.invoke(
        app,
        [
            "analytics",
            "nab",
            "--data",
            str(tmp_path / "none"),
            "--labels",
            str(labels),
            "--output",
            str(tmp_path / "o"),
        ],
    )
    assert missing.exit_code == 2 and "--data" in missing.output


def test_detect_replays_a_stored_series(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    uri = f"sqlite:///{tmp_path / 'a.db'}"
    rng = np.random.default_rng(1)
    values = 100 + rng.normal(0, 2, 600)
    values[500] = 190.0
    ts = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + 10.0 * np.arange(600)
    with open_store(uri) as store:
        store.write_batches(
            [
                SeriesBatch(
                    SeriesKey("latency_ms", (("component_id", "a"),), MetricType.GAUGE), ts, values
                )
            ]
        )
    html = tmp_path / "chart.html"
    result = CliRunner().invoke(
        app, ["analytics", "detect", "latency_ms", "--store", uri, "--html", str(html)]
    )
    assert result.exit_code == 0, result.output
    assert "latency_spike" in result.output
    assert "190" in result.output
    assert any(ch in result.output for ch in "▁▂▃▄▅▆▇█")
    assert "detections" in html.read_text()
    none = CliRunner().invoke(app, ["analytics", "detect", "nothing", "--store", uri])
    assert none.exit_code == 2
