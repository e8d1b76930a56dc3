"""Observable workloads: the evolution engine, the Kraken reservoir and the NLP agent, each
recording what it really did into the observability engine.

>>> from allele.evolution import EvolutionConfig
>>> from allele.fitness import TargetPersonality
>>> await setup_observability_monitoring()                                 # doctest: +SKIP
>>> engine = create_observable_evolution_engine(EvolutionConfig(seed=1))   # doctest: +SKIP
>>> result = engine.run(TargetPersonality({"empathy": 0.9}))               # doctest: +SKIP
>>> engine.monitor.component_id                                            # doctest: +SKIP
'evolution_engine-3f9a1c'
>>> await teardown_observability_monitoring()                              # doctest: +SKIP

Two ways in:

* ``ObservableEvolutionEngine``, ``ObservableKrakenLNN`` and ``ObservableNLPAgent`` are
  subclasses of the workloads: usable wherever the original is, with a ``monitor`` attribute.
* ``observe(component)`` attaches a monitor to an existing workload object (an
  ``EvolutionEngine``, ``KrakenLNN`` or ``NLPAgent``) and returns the monitor; ``detach()``
  stops the recording and unregisters the component.

One module per monitor: ``base`` (what every monitor shares), ``evolution``, ``kraken``,
``agent``, and ``observe`` (``observe()``, the ``create_observable_*`` factories and
``setup_/teardown_observability_monitoring``). Monitors that keep raw records on the
workload's thread push them into their handles on the engine's tick
(``ObservabilityEngine.add_recorder``); the core never calls into this package otherwise.

Monitoring never breaks the workload: an exception raised while recording is caught, counted
in ``monitor.errors`` (and in ``allele_monitoring_errors_total``) and logged, never re-raised.
Exceptions of the workload itself are recorded as errors and propagate unchanged.
"""

from __future__ import annotations

from allele.observability.integration.agent import AgentMonitor, ObservableNLPAgent
from allele.observability.integration.base import ComponentMonitor
from allele.observability.integration.evolution import EvolutionMonitor, ObservableEvolutionEngine
from allele.observability.integration.kraken import KrakenMonitor, ObservableKrakenLNN
from allele.observability.integration.observe import (
    create_observable_evolution_engine,
    create_observable_kraken_lnn,
    create_observable_nlp_agent,
    observe,
    setup_observability_monitoring,
    teardown_observability_monitoring,
)
from allele.observability.metric_names import (
    AGENT_TOKENS,
    AGENT_TOKENS_PER_SECOND,
    AGENT_TTFT,
    EVOLUTION_BEST,
    EVOLUTION_DIVERSITY,
    EVOLUTION_EVALUATIONS,
    EVOLUTION_GENERATION,
    EVOLUTION_MEAN,
    EVOLUTION_WORST,
    KRAKEN_ACTIVATION_MAX_ABS,
    KRAKEN_ACTIVATION_MEAN,
    KRAKEN_ACTIVATION_STD,
    KRAKEN_CONSOLIDATIONS,
    KRAKEN_MEMORY_CAPACITY,
    KRAKEN_MEMORY_SIZE,
    KRAKEN_SEQUENCES,
    KRAKEN_STEPS,
    MONITORING_ERRORS_METRIC,
)

__all__ = [
    "AGENT_TOKENS",
    "AGENT_TOKENS_PER_SECOND",
    "AGENT_TTFT",
    "EVOLUTION_BEST",
    "EVOLUTION_DIVERSITY",
    "EVOLUTION_EVALUATIONS",
    "EVOLUTION_GENERATION",
    "EVOLUTION_MEAN",
    "EVOLUTION_WORST",
    "KRAKEN_ACTIVATION_MAX_ABS",
    "KRAKEN_ACTIVATION_MEAN",
    "KRAKEN_ACTIVATION_STD",
    "KRAKEN_CONSOLIDATIONS",
    "KRAKEN_MEMORY_CAPACITY",
    "KRAKEN_MEMORY_SIZE",
    "KRAKEN_SEQUENCES",
    "KRAKEN_STEPS",
    "MONITORING_ERRORS_METRIC",
    "AgentMonitor",
    "ComponentMonitor",
    "EvolutionMonitor",
    "KrakenMonitor",
    "ObservableEvolutionEngine",
    "ObservableKrakenLNN",
    "ObservableNLPAgent",
    "create_observable_evolution_engine",
    "create_observable_kraken_lnn",
    "create_observable_nlp_agent",
    "observe",
    "setup_observability_monitoring",
    "teardown_observability_monitoring",
]
