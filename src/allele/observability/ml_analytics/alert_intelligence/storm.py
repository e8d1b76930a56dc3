"""Synthetic incident storms with known answers, for evaluating alert correlation.

A storm runs over ``STORM_TOPOLOGY``, twelve components in two stacks of agents, LLM clients,
reservoirs and their infrastructure, sharing an embedder. An *incident* starts at one component
(its root, with one *cause metric*) and spreads to the components that depend on it, hop by
hop: each dependency edge carries it with probability ``spread_p``, each hop adds a delay, and
each component's detector adds its own detection lag (seconds to minutes). With probability
``late_root_p`` the root's own detector is the slow one, so that dependents are detected first.
Every affected (component, metric) then yields an anomaly at most every ``interval_s`` (each
detection pass catches it with probability ``detect_p``) until the incident ends; a stream two
incidents affect at once is reported once per pass, for the incident that reached it first. With
probability ``overlap_p`` an incident starts while the previous one is still spreading, at a
root unrelated to the roots of the incidents still active (neither depends on the other, nor
the same: two failures on one dependency chain at once are one cascade to any observer; they
may share dependents).
Isolated noise anomalies fall in between.

``generate_storm(seed)`` returns the anomalies in time order, each with its true incident
(noise anomalies are incidents of their own), and the incidents with their root
``"component:metric"``. Each anomaly's ``context`` holds only its sequence number ``seq``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from allele.observability.clock import utc_datetime
from allele.observability.ml_analytics.alert_intelligence.topology import Topology
from allele.observability.ml_analytics.types import AnomalyResult, AnomalyType
from allele.observability.types import AlertSeverity, ComponentType

#: component -> the components it depends on.
STORM_TOPOLOGY: dict[str, list[str]] = {
    "gpu-a": [],
    "llm-a": ["gpu-a"],
    "db-a": [],
    "kraken-a": ["db-a"],
    "embedder": [],
    "agent-a": ["llm-a", "kraken-a", "embedder"],
    "gateway-a": ["agent-a"],
    "gpu-b": [],
    "llm-b": ["gpu-b"],
    "kraken-b": [],
    "agent-b": ["llm-b", "kraken-b", "embedder"],
    "gateway-b": ["agent-b"],
}

_KIND = {
    "gpu": (ComponentType.SYSTEM, ["gpu_memory_used"], []),
    "db": (ComponentType.SYSTEM, ["query_latency_ms"], []),
    "embedder": (ComponentType.LLM_CLIENT, ["latency_ms", "error_rate"], ["latency_ms"]),
    "llm": (ComponentType.LLM_CLIENT, ["latency_ms", "error_rate"], ["latency_ms"]),
    "kraken": (ComponentType.KRAKEN_LNN, ["reservoir_error"], ["latency_ms"]),
    "agent": (ComponentType.NLP_AGENT, ["error_rate"], ["error_rate", "latency_ms"]),
    "gateway": (ComponentType.NLP_AGENT, [], ["latency_p95_ms", "error_rate"]),
}

_TYPE = {
    "gpu_memory_used": AnomalyType.RESOURCE_SPIKE,
    "query_latency_ms": AnomalyType.LATENCY_SPIKE,
    "latency_ms": AnomalyType.LATENCY_SPIKE,
    "latency_p95_ms": AnomalyType.LATENCY_SPIKE,
    "error_rate": AnomalyType.ERROR_RATE_SPIKE,
    "reservoir_error": AnomalyType.PERFORMANCE_DEGRADATION,
}


def _kind(component: str) -> tuple[ComponentType, list[str], list[str]]:
    return _KIND[component.split("-")[0]]


@dataclass
class Incident:
    incident_id: int
    root: str
    cause_metric: str
    start: float
    end: float
    affected: dict[tuple[str, str], float] = field(default_factory=dict)  # -> detected at

    @property
    def root_cause(self) -> str:
        return f"{self.root}:{self.cause_metric}"


@dataclass
class Storm:
    anomalies: list[AnomalyResult]
    truth: list[int]  # incident id per anomaly (noise: an id of its own, negative)
    incidents: list[Incident]
    topology: dict[str, list[str]]

    @property
    def first_alert(self) -> dict[int, float]:
        """Epoch seconds of each incident's first anomaly."""
        out: dict[int, float] = {}
        for anomaly, incident in zip(self.anomalies, self.truth, strict=True):
            t = anomaly.timestamp.timestamp()
            if incident >= 0 and (incident not in out or t < out[incident]):
                out[incident] = t
        return out


def generate_storm(
    seed: int,
    *,
    incidents: int = 30,
    noise: int = 40,
    overlap_p: float = 0.4,
    late_root_p: float = 0.25,
    spread_p: float = 0.85,
    detect_p: float = 0.6,
    interval_s: float = 10.0,
    start: float = 1_800_000_000.0,
) -> Storm:
    """A storm of ``incidents`` incidents and ``noise`` isolated anomalies (see the module
    docstring); the same seed gives the same storm."""
    rng = random.Random(seed)
    topo = Topology(STORM_TOPOLOGY)
    roots = [c for c in STORM_TOPOLOGY if any(c in deps for deps in STORM_TOPOLOGY.values())]
    dependents: dict[str, list[str]] = {c: [] for c in STORM_TOPOLOGY}
    for c, deps in STORM_TOPOLOGY.items():
        for d in deps:
            dependents[d].append(c)
    made: list[Incident] = []
    t = start
    for i in range(incidents):
        previous = made[-1] if made else None
        if previous is not None and rng.random() < overlap_p:
            t0 = previous.start + rng.uniform(30, 180)
            active = [m.root for m in made if m.end + 600 > t0]
            candidates = [
                r
                for r in roots
                if all(
                    r != a and not topo.is_upstream(r, a) and not topo.is_upstream(a, r)
                    for a in active
                )
            ]
            if not candidates:  # nothing unrelated is left: this one starts later
                candidates, t0 = roots, t + rng.uniform(25, 50) * 60
            root = rng.choice(candidates)
        else:
            root = rng.choice(roots)
            t0 = t + (rng.uniform(25, 50) * 60 if previous is not None else 60)
        t = max(t, t0)
        _, causes, _ = _kind(root)
        incident = Incident(i, root, rng.choice(causes), t0, t0 + rng.uniform(6, 15) * 60)
        late = rng.random() < late_root_p
        incident.affected[(root, incident.cause_metric)] = t0 + (
            rng.uniform(90, 200) if late else rng.uniform(0, 40)
        )
        frontier = [(root, t0)]
        reached = {root}
        while frontier:
            comp, at = frontier.pop(0)
            for dep in dependents[comp]:
                if dep in reached or rng.random() > spread_p:
                    continue
                reached.add(dep)
                hop_at = at + rng.uniform(5, 40)
                frontier.append((dep, hop_at))
                _, _, symptoms = _kind(dep)
                for metric in rng.sample(symptoms, k=rng.randint(1, len(symptoms))):
                    incident.affected[(dep, metric)] = hop_at + rng.uniform(5, 90)
        made.append(incident)
    # A detector sees one stream per (component, metric) and reports it at most once per pass:
    # while several incidents affect one stream, it belongs to the one that reached it first.
    spans: dict[tuple[str, str], list[tuple[float, float, Incident]]] = {}
    for incident in made:
        for key, detected in incident.affected.items():
            spans.setdefault(key, []).append((_grid(detected, interval_s), incident.end, incident))
    events: list[tuple[float, str, str, int, AlertSeverity]] = []
    for (comp, metric), stream in spans.items():
        stream.sort(key=lambda span: span[0])
        owner_until = -1.0
        for begin, end, incident in stream:
            severity = AlertSeverity.ERROR if comp == incident.root else AlertSeverity.WARNING
            tick = max(begin, owner_until)
            first = tick == begin
            while tick < end:
                if first or rng.random() < detect_p:
                    events.append((tick, comp, metric, incident.incident_id, severity))
                first = False
                tick += interval_s
            owner_until = max(owner_until, tick)
    span_end = max(i.end for i in made) if made else start + 3600
    components = list(STORM_TOPOLOGY)
    for k in range(noise):
        comp = rng.choice(components)
        _, causes, symptoms = _kind(comp)
        metric = rng.choice(causes + symptoms)
        at = _grid(rng.uniform(start, span_end), interval_s)
        events.append((at, comp, metric, -1 - k, AlertSeverity.WARNING))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    anomalies, truth = [], []
    for seq, (at, comp, metric, incident_id, severity) in enumerate(events):
        component_type, _, _ = _kind(comp)
        expected = 1.0
        actual = expected * rng.uniform(2.0, 6.0)
        anomalies.append(
            AnomalyResult(
                timestamp=utc_datetime(0) + timedelta(seconds=at),
                component_type=component_type,
                component_id=comp,
                metric_name=metric,
                anomaly_type=_TYPE[metric],
                anomaly_score=rng.uniform(0.6, 1.0),
                confidence=rng.uniform(0.6, 0.95),
                severity=severity,
                actual_value=actual,
                expected_value=expected,
                deviation=actual - expected,
                threshold=1.5,
                context={"seq": seq},
            )
        )
        truth.append(incident_id)
    return Storm(anomalies, truth, made, STORM_TOPOLOGY)


def _grid(t: float, interval_s: float) -> float:
    """The first detection pass at or after ``t`` (detectors run every ``interval_s``)."""
    return float(-(-t // interval_s) * interval_s)
