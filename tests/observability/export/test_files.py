"""JSON, CSV and Parquet exports of stored series and alerts, and ``allele metrics export``."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.errors import ValidationError
from allele.observability.export.files import export_alerts, export_series

from .conftest import LATENCIES, T0


def test_json_series_hold_every_point_with_labels_and_kind(store, tmp_path):
    out = tmp_path / "series.json"
    assert export_series(store, "json", out) == 300
    data = json.loads(out.read_text())
    by_name = {s["name"]: s for s in data["series"]}
    latency = by_name["latency_seconds"]
    assert (latency["kind"], latency["labels"]) == ("timer", {"route": "/chat"})
    np.testing.assert_allclose(latency["values"], LATENCIES)
    assert latency["timestamps"][0] == T0
    assert by_name["memory_bytes"]["labels"] == {"host": "a\nb"}


def test_name_and_since_filter_the_points(store, tmp_path):
    out = tmp_path / "series.json"
    assert export_series(store, "json", out, name="requests_total", since=T0 + 95) == 5
    (series,) = json.loads(out.read_text())["series"]
    assert series["values"] == [96.0, 97.0, 98.0, 99.0, 100.0]


def test_csv_series_are_long_format_with_iso_utc_times(store, tmp_path):
    out = tmp_path / "series.csv"
    export_series(store, "csv", out, name="memory_bytes")
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 100
    first = rows[0]
    assert (first["name"], first["kind"], first["labels"]) == (
        "memory_bytes",
        "gauge",
        '{"host":"a\\nb"}',
    )
    assert datetime.fromisoformat(first["timestamp"]) == datetime.fromtimestamp(T0, tz=UTC)
    assert float(rows[-1]["value"]) == 1099.0


def test_parquet_series_have_typed_columns(store, tmp_path):
    out = tmp_path / "series.parquet"
    assert export_series(store, "parquet", out) == 300
    table = pq.read_table(out)
    assert table.column_names == ["name", "kind", "labels", "timestamp", "value"]
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    timer = [r for r in rows if r["name"] == "latency_seconds"]
    assert len(timer) == 100 and timer[0]["kind"] == "timer"
    assert timer[0]["timestamp"] == datetime.fromtimestamp(T0, tz=UTC)
    np.testing.assert_allclose([r["value"] for r in timer], LATENCIES)


def test_alerts_export_in_every_format(store, tmp_path):
    assert export_alerts(store, "json", tmp_path / "a.json") == 2
    alerts = json.loads((tmp_path / "a.json").read_text())["alerts"]
    assert {a["alert_id"]: a["state"] for a in alerts} == {"a1": "firing", "a2": "resolved"}
    export_alerts(store, "csv", tmp_path / "a.csv", state="firing")
    with (tmp_path / "a.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["alert_id"], json.loads(row["labels"])) == ("a1", {"route": "/chat"})
    export_alerts(store, "parquet", tmp_path / "a.parquet")
    rows = pq.read_table(tmp_path / "a.parquet").to_pylist()
    assert sorted(r["alert_id"] for r in rows) == ["a1", "a2"]


def test_bad_format_and_parquet_to_stdout_are_rejected(store):
    with pytest.raises(ValidationError, match="format='xml' is not supported"):
        export_series(store, "xml")
    with pytest.raises(ValidationError, match="give an output path"):
        export_series(store, "parquet")


def test_cli_exports_csv_to_stdout_and_parquet_to_a_file(store, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["metrics", "export", "--format", "csv", "--store", store.uri, "--name", "requests_total"],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "name,kind,labels,timestamp,value" and len(lines) == 101
    out = tmp_path / "cli.parquet"
    result = runner.invoke(
        app,
        ["metrics", "export", "-f", "parquet", "--store", store.uri, "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == 300


def test_cli_since_takes_iso_times_and_spans(store, tmp_path):
    out = tmp_path / "since.json"
    since = datetime.fromtimestamp(T0 + 98, tz=UTC).isoformat()
    args = ["metrics", "export", "-f", "json", "--store", store.uri, "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--since", since, "--name", "requests_total"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["series"][0]["values"] == [99.0, 100.0]
    # The stored points are from 2023: nothing is newer than an hour ago.
    result = CliRunner().invoke(app, [*args, "--since", "1h"])
    assert result.exit_code == 0 and json.loads(out.read_text())["series"] == []


def test_cli_reports_bad_input_clearly(store, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["metrics", "export", "-f", "json", "--store", store.uri, "--since", "yesterday"]
    )
    assert result.exit_code == 2 and "since='yesterday'" in result.stderr
    result = runner.invoke(app, ["metrics", "export", "-f", "json", "--store", "bogus"])
    assert result.exit_code == 2 and "invalid store URI 'bogus'" in result.stderr


def test_cli_exports_alerts(store, tmp_path):
    out = tmp_path / "alerts.json"
    result = CliRunner().invoke(
        app,
        [
            "metrics",
            "export",
            "-f",
            "json",
            "--what",
            "alerts",
            "--store",
            store.uri,
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["alerts"]) == 2


def test_cli_unwritable_output_is_a_one_line_error(store, tmp_path):
    missing_dir = tmp_path / "no" / "such" / "dir" / "series.csv"
    for fmt in ("csv", "parquet"):
        result = CliRunner().invoke(
            app,
            ["metrics", "export", "-f", fmt, "--store", store.uri, "-o", str(missing_dir)],
        )
        assert result.exit_code == 2, result.output
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"error: cannot write {missing_dir}")
        assert "Traceback" not in result.output


def test_cli_says_when_nothing_matched(store):
    result = CliRunner().invoke(
        app, ["metrics", "export", "-f", "csv", "--store", store.uri, "--name", "no_such_metric"]
    )
    assert result.exit_code == 0
    assert result.stdout == "name,kind,labels,timestamp,value\n"
    assert "note: no stored points matched (--name no_such_metric)" in result.stderr
