"""The engine: lifecycle (sync and async), components, health, alerts, status, singleton."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from allele.errors import ValidationError
from allele.observability import config
from allele.observability.clock import ManualClock
from allele.observability.config import ObservabilitySettings
from allele.observability.engine import (
    ObservabilityEngine,
    get_observability_engine,
    reset_observability_engine,
)
from allele.observability.types import (
    AlertRule,
    AlertState,
    ComponentType,
    HealthStatus,
    Operator,
)


def settings(**overrides: object) -> ObservabilitySettings:
    values: dict[str, object] = {"store_uri": "none", "collection_interval": 0.05}
    values.update(overrides)
    return ObservabilitySettings(**values)


@pytest.fixture
def engine() -> Iterator[ObservabilityEngine]:
    engine = ObservabilityEngine(settings(), notifiers=[])
    yield engine
    engine.close()


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_start_samples_in_the_background_and_stop_ends_it(engine: ObservabilityEngine) -> None:
    engine.start()
    assert engine.running
    assert engine.start() is engine  # idempotent
    cpu = "allele_system_cpu_percent"
    assert wait_for(lambda: engine.collector.summary(cpu, window_s=3600).count >= 3)
    engine.stop()
    assert not engine.running
    count = engine.collector.summary(cpu, window_s=3600).count
    time.sleep(0.2)
    assert engine.collector.summary(cpu, window_s=3600).count == count


async def test_async_start_stop_and_context(engine: ObservabilityEngine) -> None:
    await engine.astart()
    assert engine.running
    await engine.astop()
    assert not engine.running
    async with engine as running:
        assert running.running
    assert not engine.running


def test_sync_context_manager(engine: ObservabilityEngine) -> None:
    with engine:
        assert engine.running
    assert not engine.running


def test_monitoring_disabled_starts_nothing() -> None:
    engine = ObservabilityEngine(settings(monitoring_enabled=False), notifiers=[])
    engine.start()
    assert not engine.running and engine.get_status()["monitoring_enabled"] is False
    engine.close()


def test_system_metrics_are_plausible(engine: ObservabilityEngine) -> None:
    import psutil

    sample = engine.get_system_metrics()
    assert 0 <= sample.process_cpu_percent <= 100 * (psutil.cpu_count() or 1)
    assert sample.process_rss_bytes > 0
    assert engine.collector.summary("allele_process_rss_bytes").last == sample.process_rss_bytes
    engine.collect_once()
    # the second sample turns cumulative I/O totals into counter increments
    assert engine.collector.kind_of("allele_system_network_received_bytes_total") is not None


def test_register_component_records_and_reports(engine: ObservabilityEngine) -> None:
    evo = engine.register_component(
        "evo-1", ComponentType.EVOLUTION_ENGINE, metadata={"population": 100}
    )
    assert engine.register_component("evo-1", "evolution_engine") is evo
    with evo.timer("generation"):
        pass
    evo.record_error("generation", "ValueError")
    evo.heartbeat()
    snapshot = engine.get_component_metrics("evo-1")
    assert snapshot.performance.operation_count == 2
    assert snapshot.performance.error_rate == 0.5
    assert snapshot.health is HealthStatus.UNHEALTHY  # 50% errors
    assert snapshot.metadata == {"population": 100}
    assert set(engine.get_all_component_metrics()) == {"evo-1"}
    assert engine.get_component_metrics()["evo-1"].component_id == "evo-1"
    names = {r.name for r in engine.alerts.rules()}
    assert "evolution_engine_error_rate_high" in names and "system_high_cpu" in names


def test_component_errors_are_clear(engine: ObservabilityEngine) -> None:
    engine.register_component("a", ComponentType.NLP_AGENT)
    with pytest.raises(ValidationError, match="unknown component 'zzz'; registered: \\['a'\\]"):
        engine.get_component_metrics("zzz")
    with pytest.raises(ValidationError, match="unknown component type 'toaster'; allowed:"):
        engine.register_component("t", "toaster")
    with pytest.raises(ValidationError, match="registered as nlp_agent, not genome"):
        engine.register_component("a", ComponentType.GENOME)
    engine.unregister_component("a")
    with pytest.raises(ValidationError, match="unknown component 'a'"):
        engine.unregister_component("a")


def test_heartbeat_age_drives_health_and_default_alert() -> None:
    clock = ManualClock()
    engine = ObservabilityEngine(settings(heartbeat_timeout=30), clock=clock, notifiers=[])
    try:
        kraken = engine.register_component("k1", ComponentType.KRAKEN_LNN)
        kraken.heartbeat()
        engine.collect_once()
        assert engine.get_component_metrics("k1").health is HealthStatus.HEALTHY
        for _ in range(4):  # heartbeat stale for the whole 2-minute window
            clock.advance(40)
            engine.collect_once()
        assert engine.get_component_metrics("k1").health is HealthStatus.UNHEALTHY
        [alert] = engine.get_active_alerts(component_id="k1")
        assert alert.rule_name == "kraken_lnn_heartbeat_stale"
        assert alert.state is AlertState.FIRING
    finally:
        engine.close()


def test_alert_passthroughs(engine: ObservabilityEngine) -> None:
    engine.alerts.add_rule(
        AlertRule(name="busy", metric="queue_depth", operator=Operator.GT, threshold=10)
    )
    engine.collector.gauge("queue_depth").set(50)
    engine.collect_once()
    [alert] = engine.get_active_alerts()
    assert engine.acknowledge_alert(alert.alert_id, "ops", "scaling").acknowledged_by == "ops"
    resolved = engine.resolve_alert(alert.alert_id, "ops", "scaled out")
    assert resolved.state is AlertState.RESOLVED
    assert [a.alert_id for a in engine.get_alert_history()] == [alert.alert_id]
    assert engine.get_status()["alerts"]["firing"] == 0


def test_status_is_json_ready(engine: ObservabilityEngine) -> None:
    import json

    engine.register_component("g", ComponentType.GENOME)
    engine.collector.histogram("h").observe(float("nan"))
    engine.start()
    status = json.loads(json.dumps(engine.get_status()))
    assert status["running"] is True and status["persistence"] == "disabled"
    assert status["components"] == {
        "total": 1,
        "by_health": {"healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 1},
    }
    assert status["dropped"] == {"nan": 1}
    assert status["gpu"]["available"] in (True, False)
    assert status["uptime_s"] >= 0


def test_unusable_store_keeps_monitoring_in_memory(caplog: pytest.LogCaptureFixture) -> None:
    engine = ObservabilityEngine(settings(store_uri="nosuchdb://nowhere/x"), notifiers=[])
    try:
        engine.start()
        assert engine.running
        assert engine.get_status()["persistence"].startswith("unavailable")
        assert "keeping metrics in memory" in caplog.text
        engine.collector.counter("still_recording_total").inc()
        assert engine.collector.summary("still_recording_total").last == 1.0
    finally:
        engine.close()


def test_settings_apply_while_running(engine: ObservabilityEngine) -> None:
    engine.start()
    engine.apply_settings(settings(alerting_enabled=False, collection_interval=0.02))
    assert engine.alerts.enabled is False
    assert engine.get_status()["collection_interval_s"] == 0.02


def test_engine_follows_a_reloaded_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "live.toml"
    path.write_text('store_uri = "none"\nalerting_enabled = true\n')
    engine = ObservabilityEngine(config.load_settings(path), notifiers=[])
    try:
        engine.start()
        path.write_text('store_uri = "none"\nalerting_enabled = false\n')
        assert wait_for(lambda: engine.alerts.enabled is False)
    finally:
        engine.close()


def test_singleton_is_shared_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLELE_STORE_URI", "none")
    config.reset_settings()
    reset_observability_engine()
    seen: list[ObservabilityEngine] = []
    barrier = threading.Barrier(8)

    def grab() -> None:
        barrier.wait()
        seen.append(get_observability_engine())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(seen) == 8 and all(e is seen[0] for e in seen)
        config.set_settings(ObservabilitySettings(store_uri="none", alerting_enabled=False))
        assert seen[0].alerts.enabled is False  # the singleton follows global settings
    finally:
        reset_observability_engine()
        config.reset_settings()
    assert get_observability_engine() is not seen[0]
    reset_observability_engine()
