"""The optimization engine's settings: the design documents' fields, checked when made."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from allele.errors import ConfigurationError


@dataclass
class OptimizationEngineConfig:
    """What the engine recommends and how sure it must be.

    ``min_expected_improvement`` is in percent; ``min_confidence_threshold`` in [0, 1].
    ``target_false_alert_rate`` is the share of healthy samples an alert threshold may exceed;
    ``overhead_budget_percent`` the monitoring overhead (share of wall time) worth tuning for.
    """

    # ML-based optimization
    enable_ml_based: bool = True
    min_confidence_threshold: float = 0.7
    min_expected_improvement: float = 5.0  # percentage
    batch_optimization_size: int = 10

    # Rule-based optimization
    rule_file_path: Path | None = None

    # Analysis settings
    analysis_window_hours: int = 24
    prediction_horizon_hours: int = 6

    # Beyond the design documents: the targets the learned advice aims at.
    target_false_alert_rate: float = 0.01
    overhead_budget_percent: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.enable_ml_based, bool):
            problems.append(f"enable_ml_based must be true or false, got {self.enable_ml_based!r}")
        if not _real_in(self.min_confidence_threshold, 0.0, 1.0):
            problems.append(
                "min_confidence_threshold must be a number in [0, 1], "
                f"got {self.min_confidence_threshold!r}"
            )
        if not _real_in(self.min_expected_improvement, 0.0, 100.0):
            problems.append(
                "min_expected_improvement must be a percentage in [0, 100], "
                f"got {self.min_expected_improvement!r}"
            )
        for name, low, high in (
            ("batch_optimization_size", 1, 10_000),
            ("analysis_window_hours", 1, 24 * 366),
            ("prediction_horizon_hours", 1, 24 * 366),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if not _real_in(self.target_false_alert_rate, 1e-6, 0.5):
            problems.append(
                "target_false_alert_rate must be a fraction in [1e-06, 0.5], "
                f"got {self.target_false_alert_rate!r}"
            )
        if not _real_in(self.overhead_budget_percent, 0.01, 100.0):
            problems.append(
                "overhead_budget_percent must be a percentage in [0.01, 100], "
                f"got {self.overhead_budget_percent!r}"
            )
        if self.rule_file_path is not None:
            self.rule_file_path = Path(self.rule_file_path)
        if problems:
            raise ConfigurationError("OptimizationEngineConfig: " + "; ".join(problems))


def _real_in(value: object, low: float, high: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )
