"""The terminal dashboard (``allele monitor``): each view drawn at 80 columns from a real SQLite
store written by a real engine, the key handling, and the one-snapshot path outside a terminal."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from allele.cli import app
from allele.errors import ValidationError
from allele.observability.clock import utc_datetime
from allele.observability.config import ObservabilitySettings
from allele.observability.dashboard.source import StoreSource
from allele.observability.dashboard.terminal import (
    VIEWS,
    State,
    find_alert,
    handle_key,
    load_clusters,
    render,
    split_keys,
    take_snapshot,
)
from allele.observability.engine import ObservabilityEngine
from allele.observability.integration import ObservableKrakenLNN
from allele.observability.store import open_store
from allele.observability.types import (
    Alert,
    AlertRule,
    AlertSeverity,
    AlertState,
    MetricType,
    SeriesBatch,
    SeriesKey,
)

from .conftest import record_workloads

CPU = [10.0, 20.0, 35.0, 80.0, 95.0, 60.0, 40.0, 37.5]


@pytest.fixture
def store_uri(tmp_path):
    """Components and alerts from a real engine, plus system series, anomaly gauges, an
    anomaly alert and a component whose engine stopped an hour ago."""
    uri = f"sqlite:///{tmp_path / 'terminal.db'}"
    record_workloads(uri, "term")
    now = time.time()
    # After the engine's own system samples (it wrote some while it ran), so these are newest.
    ts = now + 1.0 + np.arange(len(CPU))
    watched = (("metric", "allele_kraken_latency_seconds"),)
    with open_store(uri) as store:
        store.write_batches(
            [
                SeriesBatch(
                    SeriesKey("allele_system_cpu_percent", (), MetricType.GAUGE), ts, np.array(CPU)
                ),
                SeriesBatch(
                    SeriesKey("allele_system_memory_percent", (), MetricType.GAUGE),
                    ts,
                    np.full(len(CPU), 41.0),
                ),
                SeriesBatch(
                    SeriesKey("request_ms", (("op", "x"),), MetricType.GAUGE), ts, np.array(CPU)
                ),
                SeriesBatch(
                    SeriesKey("queue_depth", (("queue", "q1"),), MetricType.GAUGE),
                    ts,
                    np.full(len(CPU), 7.0),
                ),
                SeriesBatch(
                    SeriesKey("allele_anomaly_score", watched, MetricType.GAUGE),
                    ts,
                    np.array([0.1, 0.1, 0.2, 0.1, 0.97, 0.3, 0.2, 0.93]),
                ),
                SeriesBatch(
                    SeriesKey("allele_anomaly_level", watched, MetricType.GAUGE),
                    ts,
                    np.array([0, 0, 0, 0, 3, 3, 0, 1.0]),
                ),
            ]
        )
        store.upsert_components(
            [
                {
                    "component_id": "gone-term",
                    "component_type": "kraken_lnn",
                    "health": "healthy",
                    "timestamp": utc_datetime(now - 3600).isoformat(),
                }
            ]
        )
        store.save_alerts(
            [
                Alert(
                    alert_id="feedc0de" + "0" * 24,
                    rule_name="anomaly_warning",
                    metric="allele_anomaly_level",
                    severity=AlertSeverity.WARNING,
                    state=AlertState.FIRING,
                    value=1.0,
                    threshold=1.0,
                    operator="gte",
                    aggregation="max",
                    labels={"component_id": "kr-term", "metric": "allele_kraken_latency_seconds"},
                )
            ]
        )
    return uri


@pytest.fixture
def source(store_uri):
    with open_store(store_uri) as store:
        yield StoreSource(store)


def draw(source, view, **state):
    console = Console(width=80, record=True, color_system=None)
    snap = take_snapshot(source, title="store test")
    console.print(render(snap, State(view=view, **state), width=80, stale_after_s=600))
    text = console.export_text()
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    return text


def line_with(text, *needles):
    lines = [line for line in text.splitlines() if all(n in line for n in needles)]
    assert lines, (needles, text)
    return lines[0]


def test_the_overview_shows_components_system_alerts_series_and_detections(source):
    text = draw(source, "overview")
    assert "1 overview" in text and "5 detections" in text
    evo = line_with(text, "evo-term", "evolution_engine")
    assert "healthy" in evo and "stale" not in evo
    assert "stale (was healthy)" in line_with(text, "gone-term", "kraken_lnn")
    assert "Components (3, 1 stale)" in text
    # System: the data layer's newest value of each system series (the engine wrote some too).
    system = source.system()
    for name in ("cpu_percent", "memory_percent"):
        value = system[f"allele_system_{name}"]["value"]
        assert f"{value:.0f}%" in line_with(text, f" {name} ")
    assert "Alerts (2 active)" in text
    assert "evolution_generation_seen" in text and "anomaly_warning" in text
    # Sparklines: the CPU series drawn from its stored points, with its newest value.
    cpu = line_with(text, "allele_system_cpu_percent", "37.5")
    assert "▁" in cpu and "█" in cpu
    assert "Detections: 1 series watched, 1 anomalous" in text


def test_the_components_view_lists_every_component_with_its_numbers(source):
    text = draw(source, "components")
    kraken = line_with(text, "kr-term", "kraken_lnn")
    cells = kraken.split()
    assert cells[:3] == ["kr-term", "kraken_lnn", "healthy"]
    assert cells[3] == "1"  # one sequence processed
    assert "Alerts" not in text and "System" not in text


def test_the_alerts_view_marks_the_selected_alert_and_shows_clusters(source):
    text = draw(source, "alerts", selected=1)
    rows = [
        line
        for line in text.splitlines()
        if "evolution_generation_seen" in line or "anomaly_warning" in line
    ]
    assert len(rows) == 2
    assert rows[1].lstrip().startswith(">") and not rows[0].lstrip().startswith(">")
    assert "firing" in rows[0] and "warning" in rows[0]
    # This store has no cluster table: the panel says so rather than failing.
    assert "Alert clusters: none" in text


def test_clusters_are_drawn_when_the_store_has_them(source):
    snap = take_snapshot(source)
    snap.clusters = [
        {
            "cluster_id": "c0ffee123456789",
            "alerts": [{"alert_id": "a"}, {"alert_id": "b"}],
            "priority_score": 0.75,
            "root_cause_candidates": ["kr-term", "evo-term"],
        }
    ]
    console = Console(width=80, record=True, color_system=None)
    console.print(render(snap, State(view="alerts")))
    row = line_with(console.export_text(), "c0ffee1234")
    assert row.split()[1:4] == ["2", "0.75", "kr-term,"]


def test_cluster_reading_gives_nothing_without_a_cluster_table(source):
    assert load_clusters(source) == []


def test_the_series_view_draws_each_watched_series(source):
    snap = take_snapshot(source, watch=['queue_depth{queue="q1"}', "request_ms"])
    assert [s.ref.id for s in snap.sparklines] == [
        'queue_depth{queue="q1"}',
        'request_ms{op="x"}',  # a bare name matches the series of any labels
    ]
    assert snap.sparklines[0].values == [7.0] * len(CPU)
    assert snap.sparklines[1].values == CPU
    console = Console(width=80, record=True, color_system=None)
    console.print(render(snap, State(view="series")))
    text = console.export_text()
    assert "▅" * len(CPU) in line_with(text, "queue_depth", "7")  # a flat line, mid-height
    cpu = line_with(text, "request_ms", "37.5")
    assert "▁▁▃▇█▅▃▃" in cpu  # 10, 20, 35, 80, 95, 60, 40, 37.5 between 10 and 95
    assert all(len(line) <= 80 for line in text.splitlines())


def test_the_detections_view_shows_scores_levels_and_anomaly_alerts(source):
    text = draw(source, "detections")
    row = line_with(text, "allele_kraken_latency_seconds", "0.93")
    assert "warning" in row  # the newest level, 1
    assert "Anomaly alerts (1)" in text and "anomaly_warning" in text
    assert "evolution_generation_seen" not in text


def test_keys_switch_views_and_quit(source):
    snap = take_snapshot(source)
    state = State()
    for key, view in (
        ("2", "components"),
        ("\t", "alerts"),
        ("\x1b[Z", "components"),
        ("5", "detections"),
        ("\t", "overview"),
    ):
        assert handle_key(key, state, snap, source, "ana") is False
        assert state.view == view
    assert handle_key("r", state, snap, source, "ana") is True
    handle_key("q", state, snap, source, "ana")
    assert state.quit


def test_acknowledging_by_rule_name_acknowledges_the_stored_alert(source, store_uri):
    snap = take_snapshot(source)
    state = State()
    handle_key("a", state, snap, source, "ana")
    assert state.typing == ""
    for key in "anomaly_warnx":
        handle_key(key, state, snap, source, "ana")
    handle_key("\x7f", state, snap, source, "ana")  # backspace
    for key in "ing":
        handle_key(key, state, snap, source, "ana")
    assert "anomaly_warning" in render(snap, state).renderables[-1].plain
    assert handle_key("\r", state, snap, source, "ana") is True
    assert state.typing is None and "acknowledged anomaly_warning" in state.message
    with open_store(store_uri) as store:
        stored = {a["rule_name"]: a for a in StoreSource(store).alerts()}
    assert stored["anomaly_warning"]["acknowledged_by"] == "ana"
    assert stored["evolution_generation_seen"]["acknowledged_by"] is None
    # The next read shows who acknowledged it.
    assert "ack: ana" in draw(source, "alerts")


def test_acknowledging_the_selected_alert_with_enter(source, store_uri):
    snap = take_snapshot(source)
    state = State()
    handle_key("j", state, snap, source, "bo")  # selects the second active alert
    assert (state.view, state.selected) == ("alerts", 1)
    expected = snap.active_alerts[1]["alert_id"]
    handle_key("a", state, snap, source, "bo")
    assert handle_key("\n", state, snap, source, "bo") is True
    with open_store(store_uri) as store:
        stored = {a["alert_id"]: a for a in StoreSource(store).alerts()}
    assert stored[expected]["acknowledged_by"] == "bo"


def test_an_unknown_alert_name_is_reported_and_nothing_changes(source, store_uri):
    snap = take_snapshot(source)
    state = State()
    for key in "anope\r":
        handle_key(key, state, snap, source, "ana")
    assert "no active alert named 'nope'" in state.message
    assert "anomaly_warning" in state.message  # the names that would have worked
    with open_store(store_uri) as store:
        assert all(a["acknowledged_by"] is None for a in StoreSource(store).alerts())
    handle_key("a", state, snap, source, "ana")
    handle_key("\x1b", state, snap, source, "ana")
    assert state.typing is None and state.message == "acknowledgement cancelled"


def test_an_alert_name_that_matches_several_alerts_asks_for_an_id():
    alerts = [
        {"alert_id": "aaaa1111", "rule_name": "slow", "state": "firing"},
        {"alert_id": "bbbb2222", "rule_name": "slow", "state": "pending"},
        {"alert_id": "cccc3333", "rule_name": "slow", "state": "resolved"},
    ]
    with pytest.raises(ValidationError, match="names 2 active alerts"):
        find_alert(alerts, "slow")
    assert find_alert(alerts, "bbbb")["alert_id"] == "bbbb2222"
    with pytest.raises(ValidationError, match="no active alert named 'cccc'"):
        find_alert(alerts, "cccc")  # resolved: nothing to acknowledge


def test_terminal_input_is_split_into_keys():
    assert split_keys("1\x1b[Bq\x1b[Z\t") == ["1", "\x1b[B", "q", "\x1b[Z", "\t"]
    assert split_keys("\x1b") == ["\x1b"]


def test_an_unknown_view_is_a_clear_error():
    with pytest.raises(ValidationError, match="view='charts' is not one of overview"):
        State(view="charts")


runner = CliRunner()


@pytest.mark.parametrize("view", VIEWS)
def test_outside_a_terminal_each_view_prints_one_snapshot(store_uri, view):
    result = runner.invoke(
        app, ["monitor", "--store", store_uri, "--view", view], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    assert "allele monitor" in result.output and "store sqlite:///" in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    expected = {
        "overview": "evo-term",
        "components": "gone-term",
        "alerts": "evolution_generation_seen",
        "series": "allele_system_cpu_percent",
        "detections": "allele_kraken_latency_seconds",
    }
    assert expected[view] in result.output


def test_watch_chooses_the_sparklines_outside_a_terminal(store_uri):
    result = runner.invoke(
        app,
        [
            "monitor",
            "--once",
            "--store",
            store_uri,
            "--watch",
            'allele_anomaly_score{metric="allele_kraken_latency_seconds"}',
            "--view",
            "series",
        ],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert "allele_anomaly_score" in result.output
    assert "allele_system_cpu_percent" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--view", "charts"], "view='charts'"), (["--watch", "x{a=1}"], 'key="value"')],
)
def test_bad_dashboard_flags_exit_1_naming_the_value(store_uri, args, message):
    result = runner.invoke(app, ["monitor", "--store", store_uri, *args])
    assert result.exit_code == 1
    assert message in result.output


def test_the_alerts_view_shows_who_resolved_an_alert(source, store_uri):
    with open_store(store_uri) as store:
        (alert,) = [a for a in StoreSource(store).alerts() if a["rule_name"] == "anomaly_warning"]
        store.resolve_alert(alert["alert_id"], "ana")
    text = draw(source, "alerts")
    assert "Alerts (1 active, 1 recently resolved)" in text
    resolved = text.splitlines().index(line_with(text, "anomaly_warning", "resolved"))
    assert "by ana" in text.splitlines()[resolved + 1]
    # Resolved alerts cannot be acknowledged: the name no longer designates an active one.
    snap = take_snapshot(source)
    state = State()
    for key in "aanomaly_warning\r":
        handle_key(key, state, snap, source, "bo")
    assert "no active alert named 'anomaly_warning'" in state.message


def test_the_overview_points_at_clusters_when_there_are_some(source):
    assert "Alert clusters" not in draw(source, "overview")
    snap = take_snapshot(source)
    snap.clusters = [{"cluster_id": "c1", "alerts": [], "root_cause_candidates": []}]
    console = Console(width=80, record=True, color_system=None)
    console.print(render(snap, State()))
    assert "Alert clusters: 1 (press 3)" in console.export_text()


def test_a_live_engine_is_drawn_and_acknowledged_through_the_engine_source():
    from allele.observability.dashboard.source import EngineSource

    settings = ObservabilitySettings(collection_interval=3600, flush_interval=3600)
    obs = ObservabilityEngine(settings, notifiers=[])
    obs.alerts.add_rule(
        AlertRule(
            name="kraken_ran",
            metric="allele_kraken_sequences_total",
            operator="gt",
            threshold=0.0,
            aggregation="max",
            window_s=600,
            severity="error",
        )
    )
    obs.start()
    try:
        kraken = ObservableKrakenLNN(reservoir_size=10, seed=1, engine=obs, component_id="kr-live")
        for _ in range(3):
            kraken.process_sequence([0.1, 0.2, 0.3])
        obs.tick()  # fold what was recorded, then judge it
        obs.alerts.evaluate()
        source = EngineSource(obs)
        text = draw(source, "overview")
        row = line_with(text, "kr-live", "kraken_lnn")
        assert row.split()[2:4] == ["healthy", "3"] and "stale" not in row
        assert "kraken_ran" in line_with(text, "error", "firing")
        assert "cpu_percent" in text  # the engine's own system sample
        snap = take_snapshot(source)
        state = State()
        for key in "akraken_ran\r":
            handle_key(key, state, snap, source, "ana")
        (alert,) = obs.get_active_alerts()
        assert alert.acknowledged_by == "ana"
    finally:
        obs.stop()
        obs.close()


def test_the_live_dashboard_on_a_terminal_switches_views_and_acknowledges(
    source, store_uri, monkeypatch
):
    """The whole interactive loop on a pseudo-terminal: keys typed as a user types them (each
    only once the screen shows the previous one took effect), the terminal given back after."""
    import os
    import select
    import threading

    pty = pytest.importorskip("pty")
    termios = pytest.importorskip("termios")

    from allele.observability.dashboard.terminal import run

    master, slave = pty.openpty()
    keyboard = os.fdopen(slave, "r")
    display = os.fdopen(os.dup(slave), "w", encoding="utf-8")
    before = termios.tcgetattr(slave)
    monkeypatch.setattr("sys.stdin", keyboard)
    console = Console(file=display, force_terminal=True, width=80, height=40)
    screen = bytearray()
    script = [("1-5/tab view", b"3"), ("3 alerts", b"aanomaly_warning\r"), ("as ana", b"q")]

    def user() -> None:
        step = 0
        while True:
            # A screen that stops changing for a minute will not show the next step: give up
            # (quit) so the test fails on its assertions instead of hanging.
            ready, _, _ = select.select([master], [], [], 60.0)
            if not ready:
                os.write(master, b"\x1bq")
                return
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal was closed
                return
            screen.extend(data)
            if step < len(script) and script[step][0].encode() in screen:
                screen.clear()
                os.write(master, script[step][1])
                step += 1

    typist = threading.Thread(target=user, daemon=True)
    typist.start()
    try:
        run(source, console=console, interval=3600, by="ana")
        after = termios.tcgetattr(slave)
    finally:
        display.close()
        keyboard.close()
        os.close(master)
        typist.join(5)
    assert after == before  # cbreak mode undone
    with open_store(store_uri) as store:
        stored = {a["rule_name"]: a for a in StoreSource(store).alerts()}
    assert stored["anomaly_warning"]["acknowledged_by"] == "ana"


def test_stored_clusters_are_read_when_the_store_has_a_cluster_table(source):
    """With the alert-intelligence records installed, the router's stored clusters show."""
    alerting = pytest.importorskip("allele.observability.store.repository.alerting")
    now = time.time()
    alerting.AlertingRecords(source.store).save_clusters(
        [
            {
                "cluster_id": "incident-42",
                "cluster_type": "cascade",
                "alerts": [{"alert_id": "a", "component_id": "kr-term"}],
                "priority_score": 0.5,
                "root_cause_candidates": ["kr-term"],
                "first_alert_time": now - 60,
                "last_alert_time": now,
            }
        ]
    )
    assert [c["cluster_id"] for c in load_clusters(source)] == ["incident-42"]
    text = draw(source, "alerts")
    assert line_with(text, "incident-4", "kr-term").split()[1:3] == ["1", "0.50"]
    assert "Alert clusters: 1 (press 3)" in draw(source, "overview")
