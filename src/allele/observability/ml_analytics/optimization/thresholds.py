"""Alert thresholds from each series' observed distribution and a target false-alert rate.

A threshold that the healthy history exceeds more often than the target rate pages people for
nothing; the advice is the quantile of the observed values at ``1 - target`` (or ``target`` for
an alert on low values). How sure it is comes from a binomial test of the observed exceedance
rate against the target, on the *effective* number of samples (neighbouring samples of a
monitored series are correlated: ``n * (1 - rho) / (1 + rho)`` with rho the lag-1
autocorrelation), so a short or sticky history does not look like strong evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from allele.observability.ml_analytics.optimization.history import MetricSeries


@dataclass
class ThresholdAdvice:
    """A recommended threshold beside the current one."""

    series: MetricSeries
    above: bool  # the alert fires on values above the threshold
    current: float
    recommended: float
    current_rate: float  # share of the window's samples beyond the current threshold
    target_rate: float
    effective_samples: float
    confidence: float

    @property
    def expected_improvement(self) -> float:
        """Percent fewer false alerts at the recommended threshold."""
        if self.current_rate <= 0:
            return 0.0
        return 100.0 * max(0.0, 1.0 - self.target_rate / self.current_rate)


def effective_samples(values: np.ndarray) -> float:
    """``n`` shrunk by the lag-1 autocorrelation (at least 1)."""
    n = len(values)
    if n < 3 or float(np.std(values)) == 0.0:
        return float(n)
    rho = float(np.corrcoef(values[:-1], values[1:])[0, 1])
    rho = min(max(rho, 0.0), 0.99) if math.isfinite(rho) else 0.0
    return max(1.0, n * (1.0 - rho) / (1.0 + rho))


def advise_threshold(
    series: MetricSeries, current: float, target_rate: float, above: bool = True
) -> ThresholdAdvice | None:
    """Advice for one series' threshold, or None when it already meets the target."""
    values = series.values
    if len(values) < 20:
        return None
    beyond = values > current if above else values < current
    rate = float(np.mean(beyond))
    if rate <= target_rate:
        return None
    n_eff = effective_samples(values)
    k = rate * n_eff
    # P(at least k exceedances of n_eff if the true rate were the target): small = confident.
    p_value = float(binom.sf(math.ceil(k) - 1, math.floor(n_eff), target_rate))
    q = 1.0 - target_rate if above else target_rate
    recommended = float(np.quantile(values, q))
    return ThresholdAdvice(
        series=series,
        above=above,
        current=float(current),
        recommended=recommended,
        current_rate=rate,
        target_rate=target_rate,
        effective_samples=n_eff,
        confidence=1.0 - p_value,
    )
