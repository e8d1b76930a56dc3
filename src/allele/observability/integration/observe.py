"""``observe(component)`` and the documented entry points: ``create_observable_*`` and
``setup_/teardown_observability_monitoring``."""

from __future__ import annotations

import os
from typing import Any

from allele.agent import AgentConfig, NLPAgent
from allele.errors import ValidationError
from allele.evolution import Callback, EvolutionConfig, EvolutionEngine
from allele.genome import ConversationalGenome
from allele.kraken import KrakenLNN
from allele.observability.engine import ObservabilityEngine, get_observability_engine
from allele.observability.integration.agent import AgentMonitor, ObservableNLPAgent, agent_metadata
from allele.observability.integration.base import MONITOR_ATTR, ComponentMonitor
from allele.observability.integration.evolution import EvolutionMonitor, ObservableEvolutionEngine
from allele.observability.integration.kraken import (
    KrakenMonitor,
    ObservableKrakenLNN,
    kraken_metadata,
)

# -- observe() and the factories -----------------------------------------------------------------
_OBSERVABLE = "EvolutionEngine, KrakenLNN, NLPAgent"


def observe(
    component: object,
    *,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
) -> ComponentMonitor:
    """Attach the right monitor to ``component`` and return it.

    ``EvolutionEngine`` -> ``EvolutionMonitor``, ``KrakenLNN`` -> ``KrakenMonitor``,
    ``NLPAgent`` -> ``AgentMonitor``. An ``Observable*`` object already has one: its
    ``monitor`` is returned. Anything else raises ``ValidationError`` naming its type.
    """
    if isinstance(component, ObservableEvolutionEngine | ObservableKrakenLNN | ObservableNLPAgent):
        return component.monitor
    existing = getattr(component, MONITOR_ATTR, None)
    if isinstance(existing, ComponentMonitor) and existing.attached:
        return existing  # observing twice would count everything twice
    monitor: ComponentMonitor
    if isinstance(component, EvolutionEngine):
        monitor = EvolutionMonitor(
            component_id=component_id, engine=engine, metadata=component.config.to_dict()
        ).attach(component)
    elif isinstance(component, KrakenLNN):
        monitor = KrakenMonitor(
            component_id=component_id, engine=engine, metadata=kraken_metadata(component)
        ).attach(component)
    elif isinstance(component, NLPAgent):
        monitor = AgentMonitor(
            component_id=component_id,
            engine=engine,
            metadata=agent_metadata(component),
        ).attach(component)
    else:
        kind = type(component)
        raise ValidationError(
            f"cannot observe a {kind.__module__}.{kind.__qualname__}; observable components: "
            f"{_OBSERVABLE}"
        )
    setattr(component, MONITOR_ATTR, monitor)
    return monitor


def create_observable_evolution_engine(
    config: EvolutionConfig | None = None,
    *,
    callback: Callback | None = None,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
) -> ObservableEvolutionEngine:
    """An ``ObservableEvolutionEngine`` for ``config`` (default settings when None)."""
    return ObservableEvolutionEngine(
        config, callback=callback, component_id=component_id, engine=engine
    )


def create_observable_kraken_lnn(
    *args: Any,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
    state_interval_s: float = 1.0,
    **kwargs: Any,
) -> ObservableKrakenLNN:
    """An ``ObservableKrakenLNN``; the arguments are ``KrakenLNN``'s (reservoir_size, ...)."""
    return ObservableKrakenLNN(
        *args,
        component_id=component_id,
        engine=engine,
        state_interval_s=state_interval_s,
        **kwargs,
    )


def create_observable_nlp_agent(
    genome: ConversationalGenome,
    config: AgentConfig,
    *,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
    **kwargs: Any,
) -> ObservableNLPAgent:
    """An ``ObservableNLPAgent`` for ``genome`` and ``config`` (``kwargs`` go to ``NLPAgent``:
    ``transport``, ``provider``, ``sleep``)."""
    return ObservableNLPAgent(genome, config, component_id=component_id, engine=engine, **kwargs)


# -- setup and teardown --------------------------------------------------------------------------
async def setup_observability_monitoring(
    engine: ObservabilityEngine | None = None,
) -> ObservabilityEngine:
    """Start the observability engine (default: the process-wide one) and return it.

    Background sampling, alert evaluation and, when a store is configured
    (``ALLELE_STORE_URI``), persistence start here; starting a running engine does nothing.
    With ``ALLELE_ANOMALY_SERIES`` set, live anomaly detection watches those series
    (``ml_analytics.anomaly.live``).
    """
    target = engine if engine is not None else get_observability_engine()
    started = await target.astart()
    # Live anomaly detection over the series $ALLELE_ANOMALY_SERIES names (off when unset),
    # attached from here so that the core never loads ml_analytics.
    if os.environ.get("ALLELE_ANOMALY_SERIES", "").strip():
        from allele.observability.ml_analytics.anomaly.live import attach_live_detection

        attach_live_detection(target)
    return started


async def teardown_observability_monitoring(engine: ObservabilityEngine | None = None) -> None:
    """Stop the observability engine (default: the process-wide one), flushing what it holds
    to the store. Recording into it stays possible; it is simply no longer sampled."""
    target = engine if engine is not None else get_observability_engine()
    await target.astop()
