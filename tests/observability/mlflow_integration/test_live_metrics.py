"""The engine's series and alerts logged on a suite's run while it runs (real MLflow server)."""

from __future__ import annotations

from typing import Any

from allele.observability.benchmarking.experiment_logger import ExperimentLogger
from allele.observability.benchmarking.experiment_tracking import SuiteTracker
from allele.observability.clock import ManualClock
from allele.observability.config import ObservabilitySettings
from allele.observability.engine import ObservabilityEngine
from allele.observability.mlflow_integration.client import open_client
from allele.observability.types import AlertRule


def test_engine_series_and_alerts_become_metrics_and_tags_of_the_run(
    config: Any, suite_run: Any
) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    engine = ObservabilityEngine(ObservabilitySettings(store_uri="none"), clock=clock, notifiers=[])
    engine.alerts.add_rule(
        AlertRule(
            name="queue_full",
            metric="queue_depth",
            operator="gt",
            threshold=50.0,
            aggregation="max",
            window_s=60,
            cooldown_s=0,
        )
    )
    depth = engine.collector.gauge("queue_depth", {"worker": "a"})
    latency = engine.collector.histogram("step_seconds")
    done = engine.collector.counter("steps_total")
    run = suite_run(name="live", cells=2)
    tracker = SuiteTracker(config=config, experiment_logger=ExperimentLogger(config), engine=engine)
    tracker.suite_started(run)
    sent: list[tuple[float, float]] = []
    for i in range(5):
        clock.advance(1.0)
        value = 10.0 * (i + 1) + 5
        depth.set(value)
        sent.append((clock.time(), value))
        for j in range(10):
            latency.observe(0.01 * (j + 1))
        done.inc(3)
        engine.tick()
        engine.alerts.evaluate()
    for cell in run.cells:
        tracker.cell_finished(run, cell)
    tracker.suite_finished(run)
    tracker.close()

    client = open_client(config)
    run_id = tracker.logger.run_id(f"suite:{run.suite_id}")
    assert run_id is not None
    history = sorted(
        client.get_metric_history(run_id, "queue_depth/worker_a"), key=lambda m: m.step
    )
    # Every point with its own timestamp (ms), in order.
    assert [(m.timestamp, m.value) for m in history] == [(int(t * 1000), v) for t, v in sent]
    p95 = client.get_metric_history(run_id, "step_seconds/p95")
    assert len(p95) == 5 and all(abs(m.value - 0.0955) < 1e-9 for m in p95)
    counts = client.get_metric_history(run_id, "step_seconds/count")
    assert [m.value for m in sorted(counts, key=lambda m: m.step)] == [10.0] * 5
    totals = sorted(client.get_metric_history(run_id, "steps_total"), key=lambda m: m.step)
    assert [m.value for m in totals] == [3.0, 6.0, 9.0, 12.0, 15.0]
    # The alert fired when the depth passed 50 (55 at the 5th tick) and is tagged on the run.
    alert = client.get_metric_history(run_id, "alert/queue_full")
    assert [m.value for m in alert] == [1.0]
    assert alert[0].timestamp == int(sent[4][0] * 1000)
    tags = client.get_run(run_id).data.tags
    assert '"rule": "queue_full"' in tags["allele.alert.1"]
    assert engine.alerts.notifiers == []  # detached at the end of the suite
