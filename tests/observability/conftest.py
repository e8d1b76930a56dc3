"""What several observability tests share: a store written by a real engine that watched a real
evolution run and a real Kraken network."""

from __future__ import annotations

from collections.abc import Sequence

from allele.evolution import EvolutionConfig
from allele.fitness import TargetPersonality
from allele.observability.collector import LATENCY_METRIC
from allele.observability.config import ObservabilitySettings
from allele.observability.engine import ObservabilityEngine
from allele.observability.integration import ObservableEvolutionEngine, ObservableKrakenLNN
from allele.observability.types import AlertRule

#: Fires as soon as one generation has been timed (a warning).
GENERATION_SEEN = AlertRule(
    name="evolution_generation_seen",
    metric=LATENCY_METRIC,
    operator="gt",
    threshold=0.0,
    aggregation="max",
    window_s=600,
    labels={"component_type": "evolution_engine", "operation": "generation"},
    severity="warning",
)


def record_workloads(
    uri: str, suffix: str, rules: Sequence[AlertRule] = (GENERATION_SEEN,)
) -> None:
    """Run an observed evolution (``evo-<suffix>``) and Kraken network (``kr-<suffix>``) on an
    engine persisting to ``uri`` with ``rules``, judge the rules once, and stop: the store then
    holds their components, series and alerts."""
    settings = ObservabilitySettings(store_uri=uri, collection_interval=3600, flush_interval=3600)
    obs = ObservabilityEngine(settings, notifiers=[])
    for rule in rules:
        obs.alerts.add_rule(rule)
    obs.start()
    try:
        evo = ObservableEvolutionEngine(
            EvolutionConfig(population_size=10, generations=3, seed=1),
            engine=obs,
            component_id=f"evo-{suffix}",
        )
        evo.run(TargetPersonality({"empathy": 0.5}))
        kraken = ObservableKrakenLNN(
            reservoir_size=10, seed=1, engine=obs, component_id=f"kr-{suffix}"
        )
        kraken.process_sequence([0.1, 0.2, 0.3])
        obs.tick()  # fold what was recorded, then judge it
        obs.alerts.evaluate()
    finally:
        obs.stop()  # flushes points, alert changes and component snapshots
        obs.close()
