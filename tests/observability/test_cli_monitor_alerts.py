"""``allele alerts list/ack/resolve`` and ``allele monitor --once`` against a real SQLite store
filled by the observability engine and its flusher."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from allele.cli import app
from allele.observability.collector import LATENCY_METRIC
from allele.observability.store import open_store
from allele.observability.types import AlertRule

from .conftest import GENERATION_SEEN, record_workloads

runner = CliRunner()


@pytest.fixture
def store_uri(tmp_path):
    """A SQLite store holding two components, their series, one firing and one pending alert."""
    uri = f"sqlite:///{tmp_path / 'monitor.db'}"
    record_workloads(
        uri,
        "cli",
        rules=(
            GENERATION_SEEN,
            AlertRule(
                name="kraken_sequences_slow_for_an_hour",
                metric=LATENCY_METRIC,
                operator="gt",
                threshold=0.0,
                aggregation="max",
                window_s=600,
                for_s=3600,
                labels={"component_type": "kraken_lnn"},
                severity="error",
            ),
        ),
    )
    return uri


def stored_alerts(uri):
    with open_store(uri) as store:
        return {a.rule_name: a.to_dict() for a in store.load_alerts()}


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_list_shows_every_stored_alert(store_uri):
    result = invoke("alerts", "list", "--store", store_uri)
    assert result.exit_code == 0, result.output
    alerts = stored_alerts(store_uri)
    assert set(alerts) == {"evolution_generation_seen", "kraken_sequences_slow_for_an_hour"}
    for alert in alerts.values():
        assert alert["alert_id"] in result.output
        assert alert["rule_name"] in result.output


def test_list_filters_by_state(store_uri):
    alerts = stored_alerts(store_uri)
    firing = invoke("alerts", "list", "--state", "firing", "--store", store_uri, "--json")
    pending = invoke("alerts", "list", "--state", "pending", "--store", store_uri, "--json")
    assert firing.exit_code == 0 and pending.exit_code == 0
    assert [a["rule_name"] for a in json.loads(firing.output)] == ["evolution_generation_seen"]
    assert [a["alert_id"] for a in json.loads(pending.output)] == [
        alerts["kraken_sequences_slow_for_an_hour"]["alert_id"]
    ]
    resolved = invoke("alerts", "list", "--state", "resolved", "--store", store_uri)
    assert resolved.exit_code == 0 and "no stored alerts in state 'resolved'" in resolved.output


def test_ack_records_who_and_why_and_the_acknowledged_filter_finds_it(store_uri):
    alert_id = stored_alerts(store_uri)["evolution_generation_seen"]["alert_id"]
    result = invoke(
        "alerts",
        "ack",
        alert_id,
        "--by",
        "ops@example",
        "--comment",
        "looking",
        "--store",
        store_uri,
    )
    assert result.exit_code == 0, result.output
    assert "acknowledged" in result.output
    saved = stored_alerts(store_uri)["evolution_generation_seen"]
    assert saved["acknowledged_by"] == "ops@example"
    assert saved["acknowledgement_comment"] == "looking"
    assert saved["state"] == "firing"
    listed = invoke("alerts", "list", "--state", "acknowledged", "--store", store_uri, "--json")
    assert [a["alert_id"] for a in json.loads(listed.output)] == [alert_id]


def test_resolve_changes_the_state_and_a_second_resolve_fails(store_uri):
    alert_id = stored_alerts(store_uri)["kraken_sequences_slow_for_an_hour"]["alert_id"]
    result = invoke("alerts", "resolve", alert_id, "--by", "ana", "--store", store_uri)
    assert result.exit_code == 0, result.output
    saved = stored_alerts(store_uri)["kraken_sequences_slow_for_an_hour"]
    assert (saved["state"], saved["resolved_by"]) == ("resolved", "ana")
    again = invoke("alerts", "resolve", alert_id, "--by", "ana", "--store", store_uri)
    assert again.exit_code == 1
    assert "resolved" in again.output


@pytest.mark.parametrize("action", ["ack", "resolve"])
def test_unknown_alert_id_is_a_clear_error_with_exit_code_1(store_uri, action):
    result = invoke("alerts", action, "no-such-alert", "--by", "me", "--store", store_uri)
    assert result.exit_code == 1
    assert "no-such-alert" in result.output and "error" in result.output


def test_ack_needs_who(store_uri):
    alert_id = stored_alerts(store_uri)["evolution_generation_seen"]["alert_id"]
    result = invoke("alerts", "ack", alert_id, "--store", store_uri)
    assert result.exit_code == 2  # typer: missing --by


def test_monitor_once_renders_components_alerts_series_and_the_system(store_uri):
    result = invoke("monitor", "--once", "--store", store_uri)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "evo-cli" in out and "kr-cli" in out
    assert "evolution_engine" in out and "kraken_lnn" in out
    assert "evolution_generation_seen" in out and "kraken_sequences_slow_for_an_hour" in out
    assert "Alerts (2 active" in out
    assert "allele_evolution_best_fitness" in out or "Latest series" in out
    assert "System (this machine)" in out


def test_monitor_once_shows_acknowledgements_and_resolved_alerts(store_uri):
    alerts = stored_alerts(store_uri)
    invoke(
        "alerts",
        "resolve",
        alerts["kraken_sequences_slow_for_an_hour"]["alert_id"],
        "--by",
        "ana",
        "--store",
        store_uri,
    )
    result = invoke("monitor", "--once", "--store", store_uri)
    assert result.exit_code == 0, result.output
    assert "1 active, 1 recently resolved" in result.output
    assert "resolved: ana" in result.output


def test_monitor_reads_the_store_from_the_environment(store_uri, monkeypatch):
    monkeypatch.setenv("ALLELE_STORE_URI", store_uri)
    result = runner.invoke(app, ["monitor", "--once"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "evo-cli" in result.output


def test_monitor_with_an_unusable_store_exits_1(tmp_path):
    result = invoke("monitor", "--once", "--store", "nosuchdb://x")
    assert result.exit_code == 1
    assert "nosuchdb" in result.output


def test_monitor_series_panel_shows_the_latest_value_and_points_ever_written(tmp_path):
    import time

    import numpy as np

    from allele.observability.types import MetricType, SeriesBatch, SeriesKey

    uri = f"sqlite:///{tmp_path / 'latest.db'}"
    now = time.time()
    with open_store(uri) as store:
        gauge = SeriesKey("queue_depth", (("queue", "q1"),), MetricType.GAUGE)
        store.write_batches([SeriesBatch(gauge, now - 100 + np.arange(10.0), np.arange(10.0))])
        store.write_batches([SeriesBatch(gauge, np.array([now - 5.0]), np.array([42.5]))])
        store.delete_older_than(now - 50)  # retention keeps only the newest point
        assert len(store.query_series("queue_depth")) == 1
    result = invoke("monitor", "--once", "--store", uri)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if "queue_depth" in line]
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[:4] == ["queue_depth", "queue=q1", "42.5", "11"]


def test_the_monitor_never_shows_a_store_password() -> None:
    from allele.observability.store.faults import safe_url as _safe_uri

    assert _safe_uri("postgresql+psycopg://user:s3cret@db:5432/allele") == (
        "postgresql+psycopg://user:***@db:5432/allele"
    )
    # A URI SQLAlchemy cannot parse is masked by hand rather than shown as given.
    shown = _safe_uri("::://user:s3cret@db/allele")
    assert "s3cret" not in shown and "user:***@db" in shown
    assert _safe_uri("sqlite:///allele.db") == "sqlite:///allele.db"


def test_the_monitor_shows_a_stopped_engines_components_and_series_as_stale(tmp_path):
    """A process that died leaves its last snapshot ("healthy") and values behind: the
    monitor says they are stale instead of calling them healthy and current."""
    import time

    import numpy as np

    from allele.observability.clock import utc_datetime
    from allele.observability.store import open_store
    from allele.observability.types import MetricType, SeriesBatch, SeriesKey

    uri = f"sqlite:///{tmp_path / 'stale.db'}"
    now = time.time()
    with open_store(uri) as store:
        for component_id, age in (("gone", 3600.0), ("alive", 1.0)):
            store.upsert_components(
                [
                    {
                        "component_id": component_id,
                        "component_type": "kraken_lnn",
                        "health": "healthy",
                        "timestamp": utc_datetime(now - age).isoformat(),
                    }
                ]
            )
            key = SeriesKey(
                "allele_component_heartbeat_age_seconds",
                (("component_id", component_id), ("instance", component_id)),
                MetricType.GAUGE,
            )
            store.write_batches([SeriesBatch(key, np.array([now - age]), np.array([0.001]))])
    result = invoke("monitor", "--once", "--store", uri, "--stale-after", "60")
    assert result.exit_code == 0, result.output
    components = [line for line in result.output.splitlines() if "kraken_lnn" in line]
    (gone,) = [line for line in components if "gone" in line]
    (alive,) = [line for line in components if "alive" in line]
    assert "stale (was healthy)" in gone and "stale" not in alive and "healthy" in alive
    series = [line for line in result.output.splitlines() if "heartbeat_age" in line]
    assert any("gone" in line and "stale" in line for line in series), series
    assert any("alive" in line and "stale" not in line for line in series), series
