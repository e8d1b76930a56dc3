"""Settings: environment variables, clear errors, settings files and hot reload."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from allele.errors import ConfigurationError
from allele.observability import config
from allele.observability.config import (
    ObservabilitySettings,
    SettingsWatcher,
    add_settings_listener,
    default_alert_rules,
    get_settings,
    load_settings,
    read_settings_file,
    set_settings,
)
from allele.observability.types import AlertSeverity, ComponentType

DOCUMENTED = [
    "ALLELE_MONITORING_ENABLED",
    "ALLELE_COLLECTION_INTERVAL",
    "ALLELE_RETENTION_HOURS",
    "ALLELE_ALERTING_ENABLED",
    "ALLELE_BENCHMARK_RUNS",
    "ALLELE_BENCHMARK_TIMEOUT",
    "ALLELE_BENCHMARK_WORKERS",
    "ALLELE_BENCHMARK_MEASURE_MEMORY",
    "ALLELE_DASHBOARD_ENABLED",
    "ALLELE_DASHBOARD_PORT",
    "ALLELE_DASHBOARD_HOST",
    "ALLELE_MLFLOW_ENABLED",
    "ALLELE_MLFLOW_TRACKING_URI",
    "ALLELE_MLFLOW_EXPERIMENT_PREFIX",
    "ALLELE_MLFLOW_ARTIFACT_LOCATION",
    "ALLELE_MLFLOW_MODEL_REGISTRY_ENABLED",
    "ALLELE_MLFLOW_MODEL_REGISTRY_URI",
    "ALLELE_MLFLOW_AUTO_REGISTER_MODELS",
    "ALLELE_MLFLOW_AUTO_EXPERIMENT_TRACKING",
    "ALLELE_MLFLOW_METRICS_BATCH_SIZE",
    "ALLELE_MLFLOW_ARTIFACT_RETENTION_DAYS",
    "ALLELE_STORE_URI",
    "ALLELE_FLUSH_INTERVAL",
    "ALLELE_WEBHOOK_URL",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [*DOCUMENTED, "ALLELE_SETTINGS_FILE"]:
        monkeypatch.delenv(name, raising=False)
    config.reset_settings()
    yield
    config.reset_settings()


def test_every_documented_variable_is_a_setting() -> None:
    fields = {config.env_name(name) for name in ObservabilitySettings.model_fields}
    assert set(DOCUMENTED) <= fields


def test_defaults() -> None:
    settings = ObservabilitySettings()
    assert settings.monitoring_enabled and settings.alerting_enabled
    assert settings.collection_interval == 10.0 and settings.retention_hours == 168.0
    assert settings.benchmark_runs == 3 and settings.benchmark_timeout == 300.0
    assert settings.dashboard_port == 8080 and settings.dashboard_host == "localhost"
    assert settings.mlflow_tracking_uri == "sqlite:///mlflow.db"
    assert settings.store_uri == "sqlite:///allele.db" and settings.persistence_enabled
    assert settings.flush_interval == 5.0 and settings.webhook_url is None


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLELE_DASHBOARD_PORT", "9100")
    monkeypatch.setenv("ALLELE_MONITORING_ENABLED", "false")
    monkeypatch.setenv("ALLELE_STORE_URI", "none")
    monkeypatch.setenv("ALLELE_WEBHOOK_URL", "https://hooks.example/alerts")
    monkeypatch.setenv("ALLELE_BENCHMARK_MEASURE_MEMORY", "0")
    settings = ObservabilitySettings()
    assert settings.dashboard_port == 9100 and not settings.monitoring_enabled
    assert settings.store_uri == "" and not settings.persistence_enabled
    assert settings.webhook_url == "https://hooks.example/alerts"
    assert settings.matrix_benchmark_config().measure_memory is False
    assert settings.dashboard_config().port == 9100
    assert settings.monitoring_config().store_uri is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ALLELE_DASHBOARD_PORT",
            "abc",
            "ALLELE_DASHBOARD_PORT must be an integer in [1, 65535], got 'abc'",
        ),
        (
            "ALLELE_DASHBOARD_PORT",
            "70000",
            "ALLELE_DASHBOARD_PORT must be an integer in [1, 65535], got '70000'",
        ),
        (
            "ALLELE_COLLECTION_INTERVAL",
            "-1",
            "ALLELE_COLLECTION_INTERVAL must be a number of seconds in [0.01, 86400], got '-1'",
        ),
        (
            "ALLELE_COLLECTION_INTERVAL",
            "nan",
            "ALLELE_COLLECTION_INTERVAL must be a number of seconds in [0.01, 86400], got 'nan'",
        ),
        (
            "ALLELE_MONITORING_ENABLED",
            "maybe",
            "ALLELE_MONITORING_ENABLED must be a boolean (true/false, 1/0, yes/no, on/off), "
            "got 'maybe'",
        ),
        (
            "ALLELE_BENCHMARK_WORKERS",
            "0",
            "ALLELE_BENCHMARK_WORKERS must be an integer in [1, 1024]",
        ),
        (
            "ALLELE_FLUSH_INTERVAL",
            "1e-300",
            "ALLELE_FLUSH_INTERVAL must be a number of seconds in [0.01, 3600], got '1e-300'",
        ),
        (
            "ALLELE_HEARTBEAT_TIMEOUT",
            "1e-300",
            "ALLELE_HEARTBEAT_TIMEOUT must be a number of seconds in [0.01, 86400]",
        ),
        ("ALLELE_WEBHOOK_URL", "ftp://x", "ALLELE_WEBHOOK_URL must be an http:// or https:// URL"),
        ("ALLELE_STORE_URI", "allele.db", "ALLELE_STORE_URI must be a database URI"),
    ],
)
def test_bad_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        ObservabilitySettings()
    assert message in str(info.value)


def test_several_bad_values_are_all_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLELE_DASHBOARD_PORT", "abc")
    monkeypatch.setenv("ALLELE_BENCHMARK_RUNS", "0")
    with pytest.raises(ConfigurationError) as info:
        ObservabilitySettings()
    assert "ALLELE_DASHBOARD_PORT" in str(info.value)
    assert "ALLELE_BENCHMARK_RUNS" in str(info.value)


def test_settings_files_toml_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "allele.toml"
    toml.write_text('dashboard_port = 9001\nALLELE_COLLECTION_INTERVAL = 2.5\nstore_uri = "none"\n')
    assert read_settings_file(toml) == {
        "dashboard_port": 9001,
        "collection_interval": 2.5,
        "store_uri": "none",
    }
    monkeypatch.setenv("ALLELE_DASHBOARD_PORT", "7000")  # the file wins over the environment
    settings = load_settings(toml)
    assert settings.dashboard_port == 9001 and settings.collection_interval == 2.5
    assert settings.settings_file == toml
    js = tmp_path / "allele.json"
    js.write_text(json.dumps({"alerting_enabled": False}))
    assert load_settings(js).alerting_enabled is False
    monkeypatch.setenv("ALLELE_SETTINGS_FILE", str(js))
    assert get_settings().alerting_enabled is False


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.toml", "dashboard_port = ", "is not valid toml"),
        ("a.json", "{", "is not valid json"),
        ("a.toml", "dashbord_port = 1", "unknown setting 'dashbord_port'"),
        ("a.yaml", "x: 1", "must end in .toml or .json"),
        ("a.json", "[1, 2]", "must hold a table/object"),
        ("a.toml", 'dashboard_port = "abc"', "ALLELE_DASHBOARD_PORT must be an integer"),
    ],
)
def test_malformed_settings_files_are_clear_errors(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigurationError, match="a\\.") as info:
        load_settings(path)
    assert message in str(info.value)


def test_hot_reload_applies_a_changed_file_and_rejects_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "live.toml"
    path.write_text("collection_interval = 5\n")
    set_settings(load_settings(path))
    seen: list[tuple[float, float]] = []
    add_settings_listener(
        lambda old, new: seen.append((old.collection_interval, new.collection_interval))
    )
    watcher = SettingsWatcher(path)
    assert watcher.check() is False  # unchanged
    path.write_text("collection_interval = 2\nalerting_enabled = false\n")
    assert watcher.check() is True
    assert get_settings().collection_interval == 2.0 and not get_settings().alerting_enabled
    assert seen == [(5.0, 2.0)]
    path.write_text("collection_interval = -3\n")
    with caplog.at_level(logging.ERROR, logger="allele.observability.config"):
        assert watcher.check() is False
    assert get_settings().collection_interval == 2.0  # the old settings stay
    assert "rejected settings reload" in caplog.text
    assert watcher.last_error is not None and "ALLELE_COLLECTION_INTERVAL" in watcher.last_error
    assert (watcher.reloads, watcher.rejections) == (1, 1)
    path.write_text("collection_interval = 1\n")
    assert watcher.check() is True and get_settings().collection_interval == 1.0


def test_watcher_thread_picks_up_changes(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "live.json"
    path.write_text(json.dumps({"dashboard_port": 8000}))
    applied = threading.Event()
    got: list[int] = []

    def apply(settings: ObservabilitySettings) -> None:
        got.append(settings.dashboard_port)
        applied.set()

    watcher = SettingsWatcher(path, interval_s=0.02, apply=apply).start()
    try:
        path.write_text(json.dumps({"dashboard_port": 8001}))
        assert applied.wait(10)
    finally:
        watcher.stop()
    assert got == [8001]


def test_get_settings_is_one_instance() -> None:
    assert get_settings() is get_settings()


def test_default_rules_for_every_component_type() -> None:
    settings = ObservabilitySettings(heartbeat_timeout=45)
    names: set[str] = set()
    for kind in ComponentType:
        rules = default_alert_rules(kind, settings)
        assert rules, kind
        for rule in rules:
            assert rule.window_s > 0 and rule.name not in names
            names.add(rule.name)
            if kind is not ComponentType.SYSTEM:
                assert rule.labels == {"component_type": kind.value}
    agent = {r.name: r for r in default_alert_rules(ComponentType.NLP_AGENT, settings)}
    assert agent["nlp_agent_heartbeat_stale"].threshold == 45
    assert agent["nlp_agent_error_rate_critical"].severity is AlertSeverity.CRITICAL
    cmr = {r.name: r for r in default_alert_rules("cmr_model", settings)}
    assert cmr["cmr_model_latency_p95_high"].threshold == 0.1


def test_default_system_rules_and_error_rate_levels() -> None:
    import psutil

    system = {r.name: r for r in default_alert_rules(ComponentType.SYSTEM)}
    assert set(system) == {
        "system_high_cpu",
        "system_high_memory",
        "system_disk_full",
        "process_memory_growth",
    }
    cpu = system["system_high_cpu"]
    assert (cpu.metric, cpu.threshold, cpu.aggregation.value, cpu.window_s, cpu.for_s) == (
        "allele_system_cpu_percent",
        90.0,
        "mean",
        300,
        60,
    )
    assert system["system_disk_full"].severity is AlertSeverity.CRITICAL
    assert system["process_memory_growth"].threshold == 0.9 * psutil.virtual_memory().total
    assert all(r.labels == {} for r in system.values())
    evo = {r.name: r for r in default_alert_rules("evolution_engine")}
    high, critical = (
        evo["evolution_engine_error_rate_high"],
        evo["evolution_engine_error_rate_critical"],
    )
    assert (high.threshold, high.severity, high.min_samples, high.for_s) == (
        0.05,
        AlertSeverity.WARNING,
        3,
        60,
    )
    assert (critical.threshold, critical.description) == (0.25, "more than 25% of operations fail")
