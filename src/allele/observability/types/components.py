"""What the engine knows of a component: its kind, its health and its performance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from allele.observability.types.persisted import Persisted, _now


class ComponentType(StrEnum):
    """The kinds of component the engine watches; each has its own default alert rules."""

    EVOLUTION_ENGINE = "evolution_engine"
    KRAKEN_LNN = "kraken_lnn"
    NLP_AGENT = "nlp_agent"
    LLM_CLIENT = "llm_client"
    GENOME = "genome"
    CMR_MODEL = "cmr_model"
    SYSTEM = "system"


class HealthStatus(StrEnum):
    """A component's health, from its heartbeat age and its error rate."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class PerformanceMetrics(Persisted):
    """A component's performance over a window: latency percentiles (seconds), throughput
    (operations per second), error rate (errors / operations) and resource use."""

    window_s: float = 0.0
    operation_count: int = 0
    error_count: int = 0
    latency_mean_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    latency_max_s: float | None = None
    throughput_per_s: float = 0.0
    error_rate: float = 0.0
    cpu_percent: float | None = None
    memory_bytes: float | None = None
    gpu_memory_bytes: float | None = None


@dataclass(slots=True)
class ComponentMetrics(Persisted):
    """A snapshot of one registered component: identity, health, heartbeat and performance.

    ``stale``: the component stopped reporting (heartbeats expected, none for 3x the timeout)
    when the snapshot was taken; ``idle``: it said it sends no heartbeats until its next run.
    A snapshot read back from a store may come from a process that died since: ``age_s()``
    says how old it is, and ``is_stale(max_age_s)`` whether it is too old to show as current.
    """

    component_id: str
    component_type: ComponentType
    health: HealthStatus
    performance: PerformanceMetrics
    timestamp: datetime = field(default_factory=_now)
    registered_at: datetime | None = None
    last_heartbeat: datetime | None = None
    heartbeat_age_s: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    stale: bool = False
    idle: bool = False

    def age_s(self, now: datetime | None = None) -> float:
        """Seconds from the snapshot's ``timestamp`` to ``now`` (default: the current time)."""
        return max(0.0, ((now or _now()) - self.timestamp).total_seconds())

    def is_stale(self, max_age_s: float, now: datetime | None = None) -> bool:
        """Whether the component was stale when snapshotted, or the snapshot is older than
        ``max_age_s`` (its writer stopped snapshotting: a process that ended or hangs)."""
        return self.stale or self.age_s(now) > max_age_s
