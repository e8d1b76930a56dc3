"""The design documents' usage examples ("Basic Monitoring Setup", "Performance Monitoring" in
1-implementation-status.md) run as written, with ``allele.`` as the import path."""

from __future__ import annotations

import psutil
import pytest

from allele.evolution import EvolutionConfig, EvolutionEngine
from allele.fitness import TargetPersonality
from allele.observability.config import reset_settings
from allele.observability.engine import reset_observability_engine
from allele.observability.store import open_store
from allele.observability.types import AlertState, SystemMetrics


@pytest.fixture
def store_uri(tmp_path, monkeypatch):
    """The process-wide engine and settings, fresh, persisting to a temporary SQLite store."""
    uri = f"sqlite:///{tmp_path / 'spec.db'}"
    monkeypatch.setenv("ALLELE_STORE_URI", uri)
    monkeypatch.setenv("ALLELE_CONSOLE_ALERTS", "false")
    reset_observability_engine()
    reset_settings()
    yield uri
    reset_observability_engine()
    reset_settings()


async def test_basic_monitoring_setup(store_uri):
    config = EvolutionConfig(population_size=30, generations=8, seed=5)

    # -- the example, as written --------------------------------------------------------
    from allele.observability.integration import setup_observability_monitoring

    # Start comprehensive monitoring
    await setup_observability_monitoring()

    # Create observable components
    from allele.observability.integration import create_observable_evolution_engine

    engine = create_observable_evolution_engine(config)
    # -----------------------------------------------------------------------------------

    from allele.observability.engine import get_observability_engine
    from allele.observability.integration import teardown_observability_monitoring

    global_engine = get_observability_engine()
    assert global_engine.running
    assert isinstance(engine, EvolutionEngine)
    result = engine.run(TargetPersonality({"empathy": 0.8, "creativity": 0.3}))
    component_id = engine.monitor.component_id
    global_engine.tick()  # reads see the last tick's fold (the background one is <= 1 s away)
    assert global_engine.get_component_metrics(component_id).performance.operation_count == 10

    await teardown_observability_monitoring()
    assert not global_engine.running
    with open_store(store_uri) as store:
        best = store.query_series(
            "allele_evolution_best_fitness", {"component_id": component_id}
        ).values
        (component,) = [
            c.to_dict() for c in store.load_components() if c.component_id == component_id
        ]
    assert best.tolist() == [s.best_fitness for s in result.history]
    assert component["component_type"] == "evolution_engine"


async def test_setup_twice_keeps_one_running_engine(store_uri):
    from allele.observability.integration import (
        setup_observability_monitoring,
        teardown_observability_monitoring,
    )

    first = await setup_observability_monitoring()
    second = await setup_observability_monitoring()
    assert first is second and first.running
    await teardown_observability_monitoring()
    assert not first.running


async def test_performance_monitoring(store_uri):
    from allele.observability.integration import (
        setup_observability_monitoring,
        teardown_observability_monitoring,
    )

    await setup_observability_monitoring()
    try:
        # -- the example, as written ----------------------------------------------------
        from allele.observability.engine import get_observability_engine

        engine = get_observability_engine()
        metrics = engine.get_system_metrics()
        alerts = engine.get_active_alerts()
        # -------------------------------------------------------------------------------
    finally:
        await teardown_observability_monitoring()

    assert isinstance(metrics, SystemMetrics)
    assert metrics.cpu_count == (psutil.cpu_count() or 1)
    assert metrics.memory_total_bytes == psutil.virtual_memory().total
    assert 0 < metrics.process_rss_bytes < metrics.memory_total_bytes
    assert 0.0 <= metrics.memory_percent <= 100.0
    # A quiet machine has nothing firing; whatever is listed is firing, most severe first.
    assert all(a.state is AlertState.FIRING for a in alerts)
