"""``AlertIntelligenceConfig``: the design documents' settings of alert intelligence."""

from __future__ import annotations

from dataclasses import dataclass, field

from allele.errors import ConfigurationError

ALGORITHMS = ("dbscan", "kmeans", "hierarchical", "simple")

#: What ``priority_factors`` may weigh (each factor is scaled to [0, 1]; see ``priority``).
PRIORITY_FACTORS = (
    "severity",
    "anomaly_score",
    "confidence",
    "alert_count",
    "component_count",
    "duration",
)
DEFAULT_PRIORITY_FACTORS = {
    "severity": 0.4,
    "anomaly_score": 0.2,
    "alert_count": 0.2,
    "component_count": 0.2,
}


@dataclass
class AlertIntelligenceConfig:
    """How anomalies are deduplicated, clustered, ranked and escalated.

    ``clustering_eps`` is the neighbourhood radius on the alert distance (which lies in
    [0, 1]); ``clustering_min_samples`` the neighbourhood size that makes a dense core (dbscan).
    ``similarity_threshold`` is how alike (in [0, 1]) two alerts of one component must be to be
    duplicates, within ``deduplication_window_minutes``. Clusters stay open for new alerts for
    ``correlation_window_minutes`` after their last alert. An unacknowledged cluster is escalated
    ``escalation_time_minutes`` after its first alert. ``priority_factors`` weigh the factors
    named in ``PRIORITY_FACTORS`` (empty: ``DEFAULT_PRIORITY_FACTORS``).
    """

    # Clustering settings
    clustering_algorithm: str = "dbscan"  # dbscan, kmeans, hierarchical, simple
    clustering_eps: float = 0.5
    clustering_min_samples: int = 3
    similarity_threshold: float = 0.8

    # Correlation settings
    correlation_window_minutes: int = 60
    deduplication_window_minutes: int = 30
    auto_acknowledge_duplicates: bool = True

    # Alert management
    max_root_cause_candidates: int = 5
    escalation_time_minutes: int = 60
    priority_factors: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.clustering_algorithm not in ALGORITHMS:
            raise ConfigurationError(
                f"clustering_algorithm {self.clustering_algorithm!r} is unknown; allowed: "
                f"{', '.join(ALGORITHMS)}"
            )
        _number(self, "clustering_eps", low=0.0, high=1.0, open_low=True)
        _number(self, "similarity_threshold", low=0.0, high=1.0)
        for name in (
            "clustering_min_samples",
            "correlation_window_minutes",
            "deduplication_window_minutes",
            "max_root_cause_candidates",
            "escalation_time_minutes",
        ):
            value = getattr(self, name)
            low = 0 if name == "deduplication_window_minutes" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigurationError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.auto_acknowledge_duplicates, bool):
            raise ConfigurationError(
                f"auto_acknowledge_duplicates must be true or false, got "
                f"{self.auto_acknowledge_duplicates!r}"
            )
        if not isinstance(self.priority_factors, dict):
            raise ConfigurationError(
                "priority_factors must be a dict of factor -> weight, got "
                f"{self.priority_factors!r}"
            )
        for name, weight in self.priority_factors.items():
            if name not in PRIORITY_FACTORS:
                raise ConfigurationError(
                    f"priority factor {name!r} is unknown; allowed: {', '.join(PRIORITY_FACTORS)}"
                )
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ConfigurationError(
                    f"priority factor {name!r} needs a weight >= 0, got {weight!r}"
                )
        if self.priority_factors and not any(self.priority_factors.values()):
            raise ConfigurationError("priority_factors must give some factor a weight > 0")

    def factors(self) -> dict[str, float]:
        """The priority weights in force (the defaults when none are given)."""
        return dict(self.priority_factors or DEFAULT_PRIORITY_FACTORS)


def _number(
    config: AlertIntelligenceConfig, name: str, *, low: float, high: float, open_low: bool = False
) -> None:
    value = getattr(config, name)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and (value < low or value > high or (open_low and value == low)):
        ok = False
    if not ok:
        bracket = "(" if open_low else "["
        raise ConfigurationError(
            f"{name} must be a number in {bracket}{low}, {high}], got {value!r}"
        )
