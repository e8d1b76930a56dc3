"""``allele alerts``: unique id prefixes, piped output that never wraps, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.cli.alerts import full_alert_id
from allele.errors import ValidationError
from allele.observability.store import open_store

runner = CliRunner()

ALERTS = [
    {
        "alert_id": "ab12cd34ef56ab12cd34ef56ab12cd34",
        "rule_name": "evolution_engine_error_rate_high",
        "state": "firing",
        "severity": "warning",
        "metric": "allele_component_error_rate",
        "operator": "gt",
        "value": 0.3,
        "threshold": 0.05,
        "labels": {
            "component_id": "evolution_engine-4f2a9c1d",
            "component_type": "evolution_engine",
        },
        "started_at": "2026-05-01T12:00:00+00:00",
        "fired_at": "2026-05-01T12:01:00+00:00",
    },
    {
        "alert_id": "ab99000000000000000000000000beef",
        "rule_name": "kraken_lnn_latency_p95_high",
        "state": "firing",
        "severity": "error",
        "metric": "allele_component_latency_seconds",
        "operator": "gt",
        "value": 0.9,
        "threshold": 0.5,
        "labels": {"component_id": "kraken_lnn-77aa", "component_type": "kraken_lnn"},
        "started_at": "2026-05-01T12:00:00+00:00",
    },
]


@pytest.fixture
def store_uri(tmp_path):
    uri = f"sqlite:///{tmp_path / 'alerts.db'}"
    with open_store(uri) as store:
        store.save_alerts([dict(a) for a in ALERTS])
    return uri


def stored(uri, alert_id):
    with open_store(uri) as store:
        return {a.alert_id: a.to_dict() for a in store.load_alerts()}[alert_id]


def test_full_alert_id_resolves_unique_prefixes_only():
    assert full_alert_id(ALERTS, "ab12") == ALERTS[0]["alert_id"]
    assert full_alert_id(ALERTS, ALERTS[1]["alert_id"]) == ALERTS[1]["alert_id"]
    assert full_alert_id(ALERTS, "zz") == "zz"  # unknown: the store reports it
    with pytest.raises(ValidationError, match="prefix 'ab' matches 2 alerts"):
        full_alert_id(ALERTS, "ab")


def test_ack_and_resolve_take_a_unique_prefix(store_uri):
    result = runner.invoke(
        app, ["alerts", "ack", "ab12", "--by", "ana", "--comment", "on it", "--store", store_uri]
    )
    assert result.exit_code == 0, result.output
    assert f"acknowledged alert {ALERTS[0]['alert_id']}" in result.output
    alert = stored(store_uri, ALERTS[0]["alert_id"])
    assert (alert["acknowledged_by"], alert["acknowledgement_comment"]) == ("ana", "on it")
    result = runner.invoke(app, ["alerts", "resolve", "ab99", "--by", "bo", "--store", store_uri])
    assert result.exit_code == 0, result.output
    assert stored(store_uri, ALERTS[1]["alert_id"])["state"] == "resolved"


def test_an_ambiguous_prefix_is_a_one_line_error(store_uri):
    result = runner.invoke(app, ["alerts", "ack", "ab", "--by", "ana", "--store", store_uri])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: alert id prefix 'ab' matches 2 alerts")
    assert "Traceback" not in result.output
    assert "acknowledged_by" not in json.dumps(stored(store_uri, ALERTS[0]["alert_id"]))


def test_piped_list_keeps_each_alert_on_one_row(store_uri):
    result = runner.invoke(app, ["alerts", "list", "--store", store_uri], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "firing" in line]
    assert len(rows) == 2
    for alert in ALERTS:
        [row] = [line for line in rows if alert["alert_id"] in line]
        assert alert["rule_name"] in row and alert["labels"]["component_id"] in row


def test_silence_add_list_expire(store_uri):
    result = runner.invoke(
        app,
        [
            "alerts",
            "silence",
            "add",
            'component_id="db"',
            'alertname=~"slow.*"',
            "--author",
            "ana",
            "--comment",
            "db migration",
            "--duration",
            "2h",
            "--store",
            store_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    silence_id = result.output.split()[1]
    listed = runner.invoke(app, ["alerts", "silence", "list", "--json", "--store", store_uri])
    [silence] = json.loads(listed.output)
    assert silence["silence_id"] == silence_id and silence["state"] == "active"
    assert silence["matchers"] == ['component_id="db"', 'alertname=~"slow.*"']
    assert (silence["created_by"], silence["comment"]) == ("ana", "db migration")
    result = runner.invoke(
        app, ["alerts", "silence", "expire", silence_id[:6], "--store", store_uri]
    )
    assert result.exit_code == 0, result.output
    listed = runner.invoke(
        app, ["alerts", "silence", "list", "--state", "expired", "--store", store_uri]
    )
    assert silence_id in listed.output and "expired" in listed.output
    again = runner.invoke(app, ["alerts", "silence", "expire", silence_id, "--store", store_uri])
    assert again.exit_code == 1 and "already expired" in again.output


def test_silence_add_rejects_bad_input_in_one_line(store_uri):
    for args, message in (
        (['a=="b"'], "malformed"),
        (['a="b"', "--duration", "soon"], "not a duration"),
        (['a="b"', "--end", "yesterday"], "ISO-8601"),
    ):
        result = runner.invoke(
            app,
            [
                "alerts",
                "silence",
                "add",
                *args,
                "--author",
                "a",
                "--comment",
                "c",
                "--store",
                store_uri,
            ],
        )
        assert result.exit_code == 1 and message in result.output, result.output


def test_list_grouped_shows_stored_clusters(store_uri):
    from allele.observability.store.repository.alerting import AlertingRecords

    cluster = {
        "cluster_id": "c0ffee00c0ffee00",
        "cluster_type": "dbscan",
        "alerts": [
            {"alert_id": "a1", "component_id": "db"},
            {"alert_id": "a2", "component_id": "api"},
        ],
        "root_cause_candidates": ["db:latency_ms", "api:error_rate"],
        "priority_score": 0.7,
        "first_alert_time": "2026-05-01T12:00:00+00:00",
        "last_alert_time": "2026-05-01T12:03:00+00:00",
        "common_attributes": {},
    }
    with open_store(store_uri) as store:
        AlertingRecords(store).save_clusters([cluster])
    result = runner.invoke(app, ["alerts", "list", "--grouped", "--store", store_uri])
    assert result.exit_code == 0, result.output
    assert "db:latency_ms, api:error_rate" in result.output and "c0ffee00c0ff" in result.output
    as_json = runner.invoke(app, ["alerts", "list", "--grouped", "--json", "--store", store_uri])
    assert json.loads(as_json.output)[0]["root_cause_candidates"][0] == "db:latency_ms"
