"""The CMR model in the observability engine: ObservableCMRModel, its alerts through the alert
manager (component type cmr_model) and its health in ``allele monitor``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the CMR model needs the torch extra")

from typer.testing import CliRunner  # noqa: E402

from allele.cli import app  # noqa: E402
from allele.cmr import FullCMRModel, GPTConfig  # noqa: E402
from allele.observability.clock import ManualClock  # noqa: E402
from allele.observability.config import ObservabilitySettings  # noqa: E402
from allele.observability.engine import ObservabilityEngine  # noqa: E402
from allele.observability.integration.cmr import (  # noqa: E402
    CMR_ALERT,
    CMR_HEALTH_SCORE,
    ObservableCMRModel,
    observe_cmr,
)
from allele.observability.types import AlertState, ComponentType, HealthStatus  # noqa: E402

TINY = GPTConfig(vocab_size=40, n_positions=32, d_model=16, n_layers=2, n_heads=2)
CMR = {"target_layers": [0], "intervention_layers": [1], "buffer_size": 32}
# Every pass is "slow" (critical at once), health and metrics are due on every pass.
EAGER = {
    "alert_thresholds": {"high_latency": 1e-9},
    "health_check_interval": 0.0,
    "metric_collection_interval": 0.0,
}


@pytest.fixture
def engine(tmp_path):
    uri = f"sqlite:///{tmp_path / 'cmr.db'}"
    settings = ObservabilitySettings(store_uri=uri, collection_interval=3600, flush_interval=3600)
    obs = ObservabilityEngine(settings, notifiers=[])
    obs.start()
    yield obs
    obs.stop()
    obs.close()


def _ids(b: int = 2) -> torch.Tensor:
    return torch.randint(0, 40, (b, 10), generator=torch.Generator().manual_seed(0))


def test_observable_model_records_into_the_engine_and_alerts_through_it(engine) -> None:
    torch.manual_seed(0)
    model = ObservableCMRModel(
        TINY,
        CMR,
        component_id="cmr-test",
        engine=engine,
        monitoring_config=EAGER,
        alert_config={"alert_channels": []},
    )
    assert isinstance(model, FullCMRModel)
    with torch.no_grad():
        for _ in range(3):
            model(_ids())
    engine.tick()  # reads show what the engine's last tick folded
    snapshot = engine.get_component_metrics("cmr-test")
    assert snapshot.component_type is ComponentType.CMR_MODEL
    assert snapshot.performance.operation_count == 3
    assert snapshot.health is HealthStatus.HEALTHY  # no failed pass, a fresh heartbeat
    score = engine.collector.query(CMR_HEALTH_SCORE, {"component_id": "cmr-test"}, 3600)
    assert score and score[0][1].last is not None and score[0][1].last < 1e-3
    changed = engine.alerts.evaluate()
    firing = [a for a in changed if a.state is AlertState.FIRING]
    assert [a.rule_name for a in firing] == ["cmr_model_high_latency_critical"]
    assert firing[0].labels["component_id"] == "cmr-test"
    assert firing[0].metric == CMR_ALERT
    assert model.monitor.policy.active() == {"high_latency": "critical"}


def test_resolution_reaches_the_engine() -> None:
    clock = ManualClock()
    engine = ObservabilityEngine(ObservabilitySettings(store_uri=""), clock=clock, notifiers=[])
    model = FullCMRModel(TINY, CMR)
    monitor = observe_cmr(
        model,
        component_id="cmr-resolve",
        engine=engine,
        monitoring_config=EAGER,
        alert_config={"alert_channels": []},
    )
    with torch.no_grad():
        model(_ids())
    engine.tick()
    engine.alerts.evaluate()
    assert engine.get_active_alerts(component_id="cmr-resolve")
    clock.advance(3.0)
    engine.tick()  # the tick listener keeps the firing alert's gauge fresh
    engine.alerts.evaluate()
    assert engine.get_active_alerts(component_id="cmr-resolve")
    monitor.thresholds["high_latency"] = 1e6  # the model is now fast enough
    with torch.no_grad():
        model(_ids())
    clock.advance(10.0)  # past the rule's 5 s window
    engine.tick()
    engine.alerts.evaluate()
    assert engine.get_active_alerts(component_id="cmr-resolve") == []
    assert [a.rule_name for a in engine.get_alert_history()] == ["cmr_model_high_latency_critical"]


def test_allele_monitor_shows_the_cmr_component(engine) -> None:
    model = ObservableCMRModel(
        TINY,
        CMR,
        component_id="cmr-cli",
        engine=engine,
        monitoring_config=EAGER,
        alert_config={"alert_channels": []},
    )
    with torch.no_grad():
        model(_ids())
    uri = engine.settings.store_uri
    engine.stop()  # flushes the component snapshots and series
    result = CliRunner().invoke(app, ["monitor", "--once", "--store", uri], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "cmr-cli" in result.output and "cmr_model" in result.output
    assert "allele_cmr_health_score" in result.output or "healthy" in result.output
