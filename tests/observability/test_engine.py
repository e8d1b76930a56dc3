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
    engine.collector.fold()
    assert wait_for(lambda: engine.collector.summary(cpu, window_s=3600).count >= 3)
    engine.stop()
    assert not engine.running
    engine.collector.fold()
    count = engine.collector.summary(cpu, window_s=3600).count
    time.sleep(0.2)
    engine.collector.fold()
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
    engine.collector.fold()
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
    engine.tick()
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
        engine.collector.fold()
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


def test_first_system_sample_after_start_measures_a_busy_loop() -> None:
    """psutil's first CPU reading is a priming 0.0; the engine's first reported one is real."""
    engine = ObservabilityEngine(settings(collection_interval=3600), notifiers=[])
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    busy = threading.Thread(target=spin, daemon=True)
    busy.start()
    try:
        engine.start()
        sample = engine.get_system_metrics()
    finally:
        stop.set()
        busy.join()
        engine.close()
    assert sample.cpu_percent > 0.0
    assert sample.process_cpu_percent > 0.0
    # The sample start() took is the one reported and the first point recorded.
    engine.collector.fold()
    assert engine.collector.points("allele_process_cpu_percent")[1].tolist() == [
        sample.process_cpu_percent
    ]


def test_background_retention_cleanup_forgets_old_points() -> None:
    clock = ManualClock()
    engine = ObservabilityEngine(settings(retention_hours=1.0), clock=clock, notifiers=[])
    engine.cleanup_interval_s = 0.02
    try:
        engine.collector.gauge("queue_depth").set(5)
        engine.collector.fold()
        assert engine.collector.points("queue_depth")[1].tolist() == [5.0]
        clock.advance(3601)  # the point is now older than the retention period
        engine.start()
        engine.collector.fold()
        assert wait_for(lambda: engine.collector.points("queue_depth")[1].size == 0)
    finally:
        engine.close()


def test_reloaded_retention_applies_to_the_running_engine(engine: ObservabilityEngine) -> None:
    engine.apply_settings(settings(retention_hours=2.0))
    assert engine.collector.retention_s == 7200.0


def test_running_engine_rejects_a_bad_settings_file_and_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.toml"
    path.write_text('store_uri = "none"\ncollection_interval = 0.05\nalerting_enabled = true\n')
    engine = ObservabilityEngine(config.load_settings(path), notifiers=[])
    try:
        engine.start()
        watcher = engine._watcher
        assert watcher is not None
        path.write_text('store_uri = "none"\ncollection_interval = "often"\n')
        assert wait_for(lambda: watcher.rejections == 1)
        assert watcher.last_error is not None and "ALLELE_COLLECTION_INTERVAL" in watcher.last_error
        assert engine.running and engine.settings.collection_interval == 0.05
        assert engine.alerts.enabled is True
        path.write_text(
            'store_uri = "none"\ncollection_interval = 0.05\nalerting_enabled = false\n'
        )
        assert wait_for(lambda: engine.alerts.enabled is False)  # a good file applies again
        assert engine.running
    finally:
        engine.close()


def test_unreachable_webhook_is_counted_and_the_engine_goes_on() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens once the socket closes
    engine = ObservabilityEngine(settings(webhook_url=f"http://127.0.0.1:{port}/hook"))
    try:
        [webhook] = [n for n in engine.alerts.notifiers if hasattr(n, "flush")]
        webhook.backoff_s = 0.01  # type: ignore[attr-defined]
        webhook.max_attempts = 2  # type: ignore[attr-defined]
        engine.alerts.add_rule(
            AlertRule(name="busy", metric="queue_depth", operator=Operator.GT, threshold=10)
        )
        engine.collector.gauge("queue_depth").set(50)
        engine.collector.fold()
        engine.collect_once()
        assert [a.rule_name for a in engine.get_active_alerts()] == ["busy"]
        assert webhook.flush(10)  # type: ignore[attr-defined]
        status = engine.get_status()
        assert status["alerts"]["webhook"]["failed"] == 1
        assert status["alerts"]["webhook"]["sent"] == 0
        engine.collector.counter("still_recording_total").inc()
        engine.collector.fold()
        assert engine.collector.summary("still_recording_total").last == 1.0
    finally:
        engine.close()


class FakeNvmlWithDevice:
    """A fake pynvml with one GPU (no real GPU exists on the test machine)."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"handle-{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"Fake A100"

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> object:
        import types

        return types.SimpleNamespace(used=3 * 2**30, total=40 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> object:
        import types

        return types.SimpleNamespace(gpu=37)

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        return 61


def test_gpu_from_nvml_is_sampled_and_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    nvml = FakeNvmlWithDevice()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    engine = ObservabilityEngine(settings(), notifiers=[])
    try:
        sample = engine.collect_once()
        assert sample is not None and sample.gpu.available and sample.gpu.source == "nvml"
        [device] = sample.gpu.devices
        assert (device.name, device.utilization_percent, device.temperature_c) == (
            "Fake A100",
            37.0,
            61.0,
        )
        engine.collector.fold()
        labels = {"gpu": "0", "name": "Fake A100"}
        engine.collector.fold()
        used = engine.collector.points("allele_gpu_memory_used_bytes", labels)[1]
        assert used.tolist() == [3.0 * 2**30]
        assert engine.get_status()["gpu"]["source"] == "nvml"
    finally:
        engine.close()
    assert nvml.shutdowns == 1


def test_without_any_gpu_the_engine_reports_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    engine = ObservabilityEngine(settings(), notifiers=[])
    try:
        sample = engine.collect_once()
        assert sample is not None and not sample.gpu.available
        assert engine.get_status()["gpu"]["available"] is False
        assert engine.collector.series_keys("allele_gpu_memory_used_bytes") == []
    finally:
        engine.close()


class BlockingSampler:
    """A test sampler: real samples, but the second one waits until the test releases it."""

    def __init__(self) -> None:
        from allele.observability.system import SystemSampler

        self.real = SystemSampler()
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def sample(self) -> object:
        self.calls += 1
        if self.calls == 2:
            self.entered.set()
            self.release.wait(30)
        return self.real.sample()

    def close(self) -> None:
        self.real.close()


def test_stop_during_a_collection_waits_for_it_and_ends_the_thread() -> None:
    sampler = BlockingSampler()
    engine = ObservabilityEngine(
        settings(collection_interval=0.01),
        sampler=sampler,  # type: ignore[arg-type]
        notifiers=[],
    )
    engine.register_component("evo", ComponentType.EVOLUTION_ENGINE)
    engine.start()
    background = engine._thread
    assert background is not None and sampler.entered.wait(10)
    alive_when_stop_returned: list[bool] = []

    def stop() -> None:
        engine.stop()
        alive_when_stop_returned.append(background.is_alive())

    stopper = threading.Thread(target=stop)
    stopper.start()
    assert wait_for(engine._stop.is_set)
    sampler.release.set()  # the collection goes on to the component registry, then ends
    stopper.join(30)
    # stop() returned only once the thread had ended (it used to hold the registry lock the
    # collection needs, and gave up on the thread after its join timeout).
    assert alive_when_stop_returned == [False]
    engine.close()


def test_component_snapshots_come_from_the_latest_collection_and_stop_stores_fresh_ones(
    tmp_path: Path,
) -> None:
    from allele.observability.store import open_store

    uri = f"sqlite:///{tmp_path / 'components.db'}"
    engine = ObservabilityEngine(
        settings(store_uri=uri, collection_interval=3600.0, flush_interval=3600.0), notifiers=[]
    )
    try:
        evo = engine.register_component("evo-1", ComponentType.EVOLUTION_ENGINE)
        fresh = engine.component_snapshots()[0]  # never collected: judged now, once
        assert fresh.component_id == "evo-1" and engine.component_snapshots()[0] is fresh
        engine.collect_once()
        assert engine.component_snapshots()[0] is not fresh
        collected = engine.component_snapshots()
        # Until the next collection every call hands out the very same snapshot objects.
        assert engine.component_snapshots()[0] is collected[0]
        assert collected[0].performance.operation_count == 0
        engine.start()  # collects once more
        for _ in range(4):
            evo.record_latency(0.01, "generation")
            evo.record_success("generation")
        assert engine.component_snapshots()[0].performance.operation_count == 0
        engine.stop()  # the final flush stores the state at the stop, not at the collection
        engine.unregister_component("evo-1")
        assert engine.component_snapshots() == []
    finally:
        engine.close()
    with open_store(uri) as store:
        (snapshot,) = store.load_components()
    stored = snapshot.to_dict()
    assert stored["component_id"] == "evo-1"
    assert stored["performance"]["operation_count"] == 4


def test_flush_writes_what_was_recorded_to_the_store_now(tmp_path: Path) -> None:
    from allele.observability.store import open_store

    memory_only = ObservabilityEngine(settings(), notifiers=[])
    assert memory_only.flush() is None  # no persistence: nothing to write to
    memory_only.close()
    uri = f"sqlite:///{tmp_path / 'flush.db'}"
    engine = ObservabilityEngine(settings(store_uri=uri, flush_interval=3600.0), notifiers=[])
    try:
        engine.start()
        engine.collector.gauge("queue_depth").set(7.0)
        stats = engine.flush()  # long before the flusher's own interval
        assert stats is not None and stats.points_written >= 1
        with open_store(uri) as store:
            assert store.query_series("queue_depth").values.tolist() == [7.0]
    finally:
        engine.close()


def test_stop_keeping_the_store_pauses_and_start_resumes_on_the_same_store(
    tmp_path: Path,
) -> None:
    from allele.observability.store import open_store

    uri = f"sqlite:///{tmp_path / 'pause.db'}"
    engine = ObservabilityEngine(settings(store_uri=uri, flush_interval=3600.0), notifiers=[])
    try:
        engine.start()
        store, flusher = engine._store, engine._flusher
        engine.collector.gauge("queue_depth").set(1.0)
        engine.stop(keep_store=True)
        assert not engine.running and not flusher.running
        assert engine.get_status()["persistence"] == f"paused: {uri}"
        with open_store(uri) as reader:  # the pause wrote everything recorded before it
            assert reader.query_series("queue_depth").values.tolist() == [1.0]
        engine.collector.gauge("queue_depth").set(2.0)  # recorded while paused
        engine.start()
        assert engine._store is store and engine._flusher is flusher  # not reopened
        assert engine.running and flusher.running
        assert engine.get_status()["persistence"] == f"active: {uri}"
        engine.collector.gauge("queue_depth").set(3.0)
        engine.stop()  # a plain stop closes the kept store
        assert engine._store is None and engine._flusher is None
        assert engine.get_status()["persistence"] == "stopped"
        with open_store(uri) as reader:
            assert reader.query_series("queue_depth").values.tolist() == [1.0, 2.0, 3.0]
    finally:
        engine.close()


def test_resuming_after_the_store_uri_changed_opens_the_new_store(tmp_path: Path) -> None:
    from allele.observability.store import open_store

    first = f"sqlite:///{tmp_path / 'first.db'}"
    second = f"sqlite:///{tmp_path / 'second.db'}"
    engine = ObservabilityEngine(settings(store_uri=first, flush_interval=3600.0), notifiers=[])
    try:
        engine.start()
        engine.stop(keep_store=True)
        engine.apply_settings(settings(store_uri=second, flush_interval=3600.0))
        engine.start()
        assert engine.get_status()["persistence"] == f"active: {second}"
        engine.collector.gauge("queue_depth").set(5.0)
        engine.stop()
        with open_store(second) as reader:
            assert reader.query_series("queue_depth").values.tolist() == [5.0]
    finally:
        engine.close()


def test_a_collection_folds_once_and_reads_never_fold() -> None:
    engine = ObservabilityEngine(settings(), clock=ManualClock(), notifiers=[])
    try:
        for i in range(3):
            component = engine.register_component(f"c{i}", ComponentType.KRAKEN_LNN)
            with component.timer("step"):
                pass
            component.heartbeat()
        folds = []
        fold = engine.collector.fold
        engine.collector.fold = lambda: (folds.append(1), fold())[1]  # type: ignore[method-assign]
        engine.collect_once()
        assert len(folds) == 1  # sampling, health of three components and alerts: one fold
        engine.get_component_metrics()
        engine.get_status()
        engine.component_snapshots()
        engine.collector.snapshot()
        assert len(folds) == 1  # reads read the state the last fold left
        engine.tick()
        assert len(folds) == 2
    finally:
        engine.close()


def test_recorders_push_before_the_fold_of_every_tick_and_are_held_weakly() -> None:
    engine = ObservabilityEngine(settings(), clock=ManualClock(), notifiers=[])
    hist = engine.collector.histogram("h")
    pending = [1.0, 2.0]

    class Feeder:
        calls = 0

        def push(self) -> None:
            self.calls += 1
            hist.observe_many(pending)
            pending.clear()

    def broken() -> None:
        raise RuntimeError("recorder bug")

    try:
        feeder = Feeder()
        engine.add_recorder(feeder.push)
        engine.add_recorder(feeder.push)  # a no-op
        engine.add_recorder(broken)
        engine.tick()
        assert engine.collector.summary("h").count == 2  # pushed, then folded by that tick
        assert feeder.calls == 1 and engine.get_status()["background_errors"] == 1
        engine.remove_recorder(broken)
        pending.append(3.0)
        del feeder  # held weakly: a collected monitor's recorder goes with it
        engine.tick()
        assert engine.collector.summary("h").count == 2
        assert engine.get_status()["background_errors"] == 1
    finally:
        engine.close()


def test_alerts_judge_the_health_published_in_the_same_tick() -> None:
    clock = ManualClock()
    engine = ObservabilityEngine(settings(heartbeat_timeout=10.0), clock=clock, notifiers=[])
    try:
        component = engine.register_component("k", ComponentType.KRAKEN_LNN)
        component.heartbeat()
        clock.advance(100)  # the heartbeat is 10x the timeout old
        engine.collect_once()
        [age] = engine.collector.query(
            "allele_component_heartbeat_age_seconds", {"component_id": "k"}
        )
        assert age[1].last == pytest.approx(100.0)  # folded by the collection that published it
    finally:
        engine.close()


def test_beside_a_flusher_tick_listeners_are_called_on_every_tick(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ticks.db'}"
    engine = ObservabilityEngine(
        settings(store_uri=uri, flush_interval=0.2, collection_interval=0.5), notifiers=[]
    )
    calls: list[float] = []
    try:
        engine.start()
        engine.add_tick_listener(lambda: calls.append(time.monotonic()))
        assert wait_for(lambda: len(calls) >= 3, timeout=10.0)
        counter = engine.collector.counter("ticked_total")
        counter.inc(3)
        stats = engine.flush()
        assert stats is not None and stats.failed_writes == 0
    finally:
        engine.close()
    engine.collector.fold()
    assert engine.collector.summary("ticked_total", window_s=3600).last == 3.0


async def test_astart_installs_the_signal_handlers_that_start_cannot_off_the_main_thread(tmp_path):
    """``astart`` runs ``start`` on a worker thread, where Python cannot install signal
    handlers: they are installed from the loop's thread afterwards, and removed at stop."""
    import signal

    from allele.observability.config import ObservabilitySettings
    from allele.observability.engine import ObservabilityEngine

    before = signal.getsignal(signal.SIGTERM)
    settings = ObservabilitySettings(
        store_uri=f"sqlite:///{tmp_path / 'a.db'}", collection_interval=3600.0
    )
    engine = ObservabilityEngine(settings, notifiers=[])
    await engine.astart()
    try:
        assert signal.getsignal(signal.SIGTERM) == engine._flusher._on_signal
    finally:
        await engine.astop()
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_component_that_stops_heartbeating_is_stale_and_so_are_its_series() -> None:
    clock = ManualClock()
    engine = ObservabilityEngine(settings(heartbeat_timeout=10.0), clock=clock, notifiers=[])
    try:
        component = engine.register_component("k", ComponentType.KRAKEN_LNN)
        with component.timer("step"):
            pass
        component.heartbeat()
        engine.collect_once()
        latency = "allele_component_latency_seconds"
        assert not engine.get_component_metrics("k").stale
        assert not engine.collector.snapshot(latency)[0].stale
        clock.advance(31)  # past 3x the heartbeat timeout
        engine.collect_once()
        assert engine.get_component_metrics("k").stale
        [snapshot] = engine.collector.snapshot(latency)
        assert snapshot.stale and snapshot.updated_at is not None  # readers can give its age
        component.heartbeat()  # it reports again: fresh from its next points
        with component.timer("step"):
            pass
        engine.collect_once()
        assert not engine.get_component_metrics("k").stale
        assert not engine.collector.snapshot(latency)[0].stale
    finally:
        engine.close()
