"""A CMR model's health: the three checks' results, the report, and how ratios map to a status.

Each check's ratio (value / threshold; threshold / value for efficiency) gives the status:
``green`` when it holds, ``yellow`` under the ``error`` severity factor, ``red`` beyond; a
report is as bad as its worst check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUS_WORDS = {"green": "healthy", "yellow": "warning", "red": "critical", "unknown": "unknown"}


@dataclass
class CheckResult:
    """One health check: its measured value (None: nothing measured), threshold and ratio."""

    name: str
    value: float | None
    threshold: float
    ratio: float | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "threshold": self.threshold,
            "ratio": self.ratio,
            "status": self.status,
        }


@dataclass
class HealthReport:
    """The health of the model now: status (green / yellow / red / unknown), score, checks."""

    status: str
    score: float | None
    checks: dict[str, CheckResult]
    components: dict[str, str]
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def system_health(self) -> str:
        """The status as the report's word (healthy / warning / critical / unknown)."""
        return STATUS_WORDS[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "system_health": self.system_health,
            "score": self.score,
            "checks": {name: c.to_dict() for name, c in self.checks.items()},
            "component_status": dict(self.components),
            "timestamp": self.timestamp.isoformat(),
        }


def ratio_status(ratio: float | None, error_factor: float) -> str:
    if ratio is None:
        return "unknown"
    if ratio <= 1.0:
        return "green"
    return "yellow" if ratio < error_factor else "red"


def worst(statuses: Sequence[str]) -> str:
    order = ("unknown", "green", "yellow", "red")
    known = [s for s in statuses if s != "unknown"]
    return max(known, key=order.index) if known else "unknown"
