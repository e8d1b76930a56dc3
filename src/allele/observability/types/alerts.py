"""Alert rules and alerts: severity, lifecycle, comparison and window aggregation."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import TypeVar

from allele.errors import ValidationError
from allele.observability.types.components import ComponentType
from allele.observability.types.persisted import Persisted, _now, _require_utc
from allele.observability.types.series import normalize_labels, validate_metric_name, value_problem


class AlertSeverity(StrEnum):
    """How urgent an alert is, in increasing order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class AlertState(StrEnum):
    """Where an alert is in its life: pending (condition true, ``for`` not yet elapsed),
    firing, recovering (condition cleared, still firing for the rule's ``keep_firing_for_s``,
    as Grafana 12 calls it), or resolved (condition cleared, or resolved by hand)."""

    PENDING = "pending"
    FIRING = "firing"
    RECOVERING = "recovering"
    RESOLVED = "resolved"


class Operator(StrEnum):
    """Comparison of an aggregated value with a rule's threshold."""

    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    NE = "ne"

    def compare(self, value: float, threshold: float) -> bool:
        """Return whether ``value <op> threshold`` holds."""
        return _COMPARE[self](value, threshold)


_COMPARE: dict[Operator, Callable[[float, float], bool]] = {
    Operator.GT: operator.gt,
    Operator.GTE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LTE: operator.le,
    Operator.EQ: operator.eq,
    Operator.NE: operator.ne,
}


class Aggregation(StrEnum):
    """How a rule (or a reader) reduces a window of points to one number.

    ``rate`` is the increase per second over the window (for counters; for other kinds, the
    number of points per second); ``last`` is the newest point.
    """

    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    MEAN = "mean"
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    RATE = "rate"
    LAST = "last"


@dataclass(slots=True)
class AlertRule(Persisted):
    """A condition over an aggregation window that raises an alert.

    For every series named ``metric`` whose labels include ``labels``, the points of the last
    ``window_s`` seconds are reduced with ``aggregation`` (any but ``last``); with at least
    ``min_samples`` points, the rule holds when ``value <operator> threshold``. It must hold
    for ``for_s`` seconds (pending) before the alert fires; after an alert ends, the same rule
    and series cannot fire again for ``cooldown_s`` seconds. ``component_type`` restricts the
    rule to components of that type (matched on the ``component_type`` label). A firing alert
    whose condition clears keeps firing (state ``recovering``) for ``keep_firing_for_s`` seconds
    before it resolves, as Prometheus's ``keep_firing_for``: a flapping signal stays one alert.
    """

    name: str
    metric: str
    operator: Operator
    threshold: float
    aggregation: Aggregation = Aggregation.MEAN
    window_s: float = 60.0
    min_samples: int = 1
    for_s: float = 0.0
    cooldown_s: float = 300.0
    severity: AlertSeverity = AlertSeverity.WARNING
    labels: dict[str, str] = field(default_factory=dict)
    component_type: ComponentType | None = None
    description: str = ""
    keep_firing_for_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValidationError(f"alert rule needs a non-empty name, got {self.name!r}")
        validate_metric_name(self.metric)
        self.operator = _enum(Operator, self.operator, "operator")
        self.aggregation = _enum(Aggregation, self.aggregation, "aggregation")
        if self.aggregation is Aggregation.LAST:
            # One raw point flaps on noise; a rule must judge the whole window.
            raise ValidationError(
                f"alert rule {self.name!r}: aggregation 'last' judges a single raw sample; "
                "use a window aggregate (count, sum, min, max, mean, p50, p95, p99, rate)"
            )
        self.severity = _enum(AlertSeverity, self.severity, "severity")
        if self.component_type is not None:
            self.component_type = _enum(ComponentType, self.component_type, "component_type")
        if value_problem(self.threshold) is not None:
            raise ValidationError(
                f"alert rule {self.name!r}: threshold must be a finite number, "
                f"got {self.threshold!r}"
            )
        self.threshold = float(self.threshold)
        for attr in ("window_s", "for_s", "cooldown_s", "keep_firing_for_s"):
            value = getattr(self, attr)
            if value_problem(value) is not None or value < 0:
                raise ValidationError(
                    f"alert rule {self.name!r}: {attr} must be a finite number >= 0, got {value!r}"
                )
        if self.window_s <= 0:
            raise ValidationError(
                f"alert rule {self.name!r}: window_s must be > 0 (rules never judge a single "
                f"raw sample), got {self.window_s!r}"
            )
        if not isinstance(self.min_samples, int) or self.min_samples < 1:
            raise ValidationError(
                f"alert rule {self.name!r}: min_samples must be an integer >= 1, "
                f"got {self.min_samples!r}"
            )
        self.labels = dict(normalize_labels(self.labels))

    def matches(self, labels: tuple[tuple[str, str], ...]) -> bool:
        """Return whether a series with ``labels`` falls under this rule."""
        present = dict(labels)
        if any(present.get(k) != v for k, v in self.labels.items()):
            return False
        return self.component_type is None or present.get("component_type") in (
            None,
            self.component_type.value,
        )


def _enum(kind: type[_E], value: object, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ValidationError(f"unknown {what} {value!r}; allowed: {allowed}") from None


_E = TypeVar("_E", bound=Enum)


@dataclass(slots=True)
class Alert(Persisted):
    """One alert instance: a rule that held for one series, with its lifecycle and handling.

    ``labels`` are the series' labels (they include ``component_id`` for component metrics).
    ``started_at`` is when the condition first held, ``fired_at`` when it fired (None if it
    cleared while pending), ``resolved_at`` when it ended. Acknowledgement and manual resolution
    record who, when and a comment.
    """

    alert_id: str
    rule_name: str
    metric: str
    severity: AlertSeverity
    state: AlertState
    value: float
    threshold: float
    operator: Operator
    aggregation: Aggregation
    labels: dict[str, str] = field(default_factory=dict)
    message: str = ""
    started_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_comment: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledgement_comment: str | None = None

    def __post_init__(self) -> None:
        self.severity = AlertSeverity(self.severity)
        self.state = AlertState(self.state)
        self.operator = Operator(self.operator)
        self.aggregation = Aggregation(self.aggregation)
        for name in ("started_at", "updated_at", "fired_at", "resolved_at", "acknowledged_at"):
            _require_utc("Alert", name, getattr(self, name))

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def active(self) -> bool:
        """Pending or firing (not yet resolved)."""
        return self.state is not AlertState.RESOLVED

    @property
    def component_id(self) -> str | None:
        return self.labels.get("component_id")
