"""CMRPerformanceMonitor: live stats, health, alerts to sinks, diagnostics, profiling, reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from allele.cmr import CMRPerformanceMonitor
from allele.errors import ValidationError

from .conftest import TINY, tiny_model


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingSink:
    def __init__(self) -> None:
        self.alerts: list = []
        self.batches: list = []

    def on_alert(self, alert) -> None:
        self.alerts.append(alert)

    def on_metrics(self, samples, health) -> None:
        self.batches.append((list(samples), health))


GENEROUS = {
    "alert_thresholds": {"high_latency": 1e6, "low_efficiency": 1e-9, "high_error_rate": 1.0}
}


def _monitor(model, config=None, **kw):
    return CMRPerformanceMonitor(model, {"enable_real_time": False, **(config or {})}, **kw)


def test_track_performance_and_live_stats(ids: torch.Tensor) -> None:
    model = tiny_model()
    monitor = _monitor(model, GENEROUS)
    monitor.enable_real_time_monitoring()
    with monitor.track_performance() as block:
        for _ in range(3):
            model(ids)
    assert block["forward_passes"] == 3 and block["duration_s"] > 0
    live = monitor.get_live_stats()
    assert live["forward_passes"] == 3 and live["errors"] == 0
    assert live["throughput"] > 0 and live["avg_latency"] > 0
    assert live["health"]["status"] == "green" and live["health"]["score"] == 1.0
    assert live["performance_stats"]["forward_passes"] == 3


def test_track_performance_without_real_time_keeps_the_tracked_pass(ids: torch.Tensor) -> None:
    model = tiny_model()
    monitor = _monitor(model)
    model(ids)  # not watched
    with monitor.track_performance():
        model(ids)
    assert len(monitor.history) == 1


def test_health_turns_red_and_alerts_reach_the_sinks(ids: torch.Tensor) -> None:
    clock = Clock()
    sink = RecordingSink()
    model = tiny_model()
    monitor = _monitor(
        model,
        {"alert_thresholds": {"high_latency": 1e-9}, "health_check_interval": 5.0},
        alert_config={"alert_channels": [], "alert_cooldown": 60.0},
        sinks=[sink],
        clock=clock,
    )
    monitor.enable_real_time_monitoring()
    model(ids)
    assert sink.alerts == []  # not due yet
    clock.now = 5.0
    model(ids)
    assert [(a.check, a.severity, a.state) for a in sink.alerts] == [
        ("high_latency", "critical", "firing")
    ]
    assert sink.alerts[0].component_id == "cmr_model"
    health = monitor.health()
    assert health.status == "red" and health.system_health == "critical"
    assert health.score is not None and health.score < 1e-3
    # The same pass was due for the metrics push (every second): both passes, the red health.
    [(samples, reported)] = sink.batches
    assert len(samples) == 2 and reported.status == "red"
    monitor.push_metrics()
    assert sink.batches[-1][0] == []  # each pass is handed over once


def test_error_rate_counts_failed_passes(ids: torch.Tensor) -> None:
    model = tiny_model()
    monitor = _monitor(model, {"alert_thresholds": {"high_error_rate": 0.05, "high_latency": 1e6}})
    monitor.enable_real_time_monitoring()
    model(ids)
    with pytest.raises(ValidationError), monitor.track_performance() as block:
        model(torch.zeros(2, TINY.n_positions + 1, dtype=torch.long))
    assert block["error"] == "ValidationError"
    stats = monitor.get_live_stats()
    assert (
        stats["error_rate"] == 0.5
        and stats["health"]["checks"]["high_error_rate"]["status"] == "red"
    )
    assert [e for _, e in monitor.error_log] == ["ValidationError"]


def test_a_broken_sink_never_breaks_the_model(ids: torch.Tensor) -> None:
    def broken(alert) -> None:
        raise RuntimeError("sink bug")

    clock = Clock()
    model = tiny_model()
    monitor = _monitor(
        model,
        {"alert_thresholds": {"high_latency": 1e-9}, "health_check_interval": 0.0},
        alert_config={"alert_channels": []},
        sinks=[broken],
        clock=clock,
    )
    monitor.enable_real_time_monitoring()
    model(ids)
    model(ids)
    assert monitor.errors >= 1 and model.listener_errors == 0


def test_run_diagnostics(ids: torch.Tensor) -> None:
    model = tiny_model(target_layers=[0], intervention_layers=[1, 2], buffer_size=10)
    monitor = _monitor(model)
    monitor.enable_real_time_monitoring()
    for _ in range(3):
        model(ids)
    extra = model.backbone.blocks[2].register_forward_hook(lambda *a: None)
    try:
        d = monitor.run_diagnostics()
    finally:
        extra.remove()
    assert set(d["component_health"]) == {
        "memory_buffer",
        "retrieval_system",
        "reconstruction",
        "hooks",
    }
    assert d["component_health"]["memory_buffer"]["storage_efficiency"] < 1.0
    hooks = d["hook_analysis"]
    assert hooks["layers"][0]["role"] == "capture" and hooks["layers"][1]["role"] == "reweave"
    assert hooks["layers"][1]["calls"] == 3 and hooks["hooks_registered"] == 3
    assert hooks["conflicts"] == [2]
    assert 0 < hooks["hook_time_share"] < 1
    memory = d["memory_analysis"]
    assert memory["total_entries"] == 20 and memory["per_layer"][0]["entries"] == 20
    assert 0 < memory["accessed_fraction"] <= 1


def test_profiling(ids: torch.Tensor) -> None:
    model = tiny_model()
    monitor = _monitor(model)
    with pytest.raises(ValidationError, match="no profile"):
        monitor.get_profile_results()
    monitor.enable_profiling()
    model(ids)
    with monitor.profile_execution():
        model(ids)
    results = monitor.get_profile_results()
    assert results["regions"]["cmr.capture"]["calls"] == 1
    assert results["regions"]["cmr.reweave"]["calls"] == 1
    assert results["top_operations"] and results["bottleneck"]
    assert results["wall_time_s"] > 0 and not model.profiling


def test_json_report_and_csv_exports(ids: torch.Tensor, tmp_path: Path) -> None:
    model = tiny_model()
    monitor = _monitor(model, GENEROUS)
    monitor.enable_real_time_monitoring()
    for _ in range(2):
        model(ids)
    monitor.check_health()
    report = json.loads(monitor.save_report(tmp_path / "report.json").read_text())
    assert report["timestamp"].endswith("Z")
    assert report["system_health"] == "healthy"
    assert set(report["performance_metrics"]) == {"avg_latency", "throughput", "error_rate"}
    assert report["performance_metrics"]["error_rate"] == 0.0
    assert set(report["component_status"]) == {
        "memory_buffer",
        "retrieval_system",
        "reconstruction",
    }
    paths = monitor.export_csv(tmp_path / "csv")
    rows = list(csv.DictReader(paths["performance"].open()))
    assert len(rows) == 2 and int(rows[0]["captured"]) == ids.shape[0] * (ids.shape[1] - 1)
    assert len(list(csv.DictReader(paths["health"].open()))) == 1
    assert len(list(csv.DictReader(paths["resources"].open()))) == 1
    assert paths["errors"].read_text().strip() == "timestamp,error"


def test_bad_configuration() -> None:
    model = tiny_model()
    with pytest.raises(ValidationError, match="unknown monitoring_config"):
        CMRPerformanceMonitor(model, {"interval": 1})
    with pytest.raises(ValidationError, match="high_latency"):
        CMRPerformanceMonitor(model, {"alert_thresholds": {"high_latency": 0}})
    with pytest.raises(ValidationError, match="FullCMRModel"):
        CMRPerformanceMonitor(object())  # type: ignore[arg-type]
