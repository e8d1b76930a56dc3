"""Forecasts and detections of one series for the dashboard, from ``ml_analytics``.

Both run on the series' history as the source holds it; they need the analytics modules and
say so (``AnalyticsUnavailable``) when those cannot be imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from allele.errors import AlleleError


class AnalyticsUnavailable(AlleleError):
    """The analytics modules this view needs cannot be imported."""


def forecast_series(
    ts: np.ndarray, values: np.ndarray, horizon: int, level: float
) -> dict[str, Any]:
    """The forecast of the series' next ``horizon`` points, at its median spacing."""
    try:
        from allele.observability.ml_analytics import forecast
    except (ImportError, AttributeError) as exc:
        raise AnalyticsUnavailable(f"forecasting is not available: {exc}") from exc
    if len(values) < 10:
        raise AnalyticsUnavailable(
            f"a forecast needs at least 10 points of history; the series has {len(values)}"
        )
    result = forecast(values, horizon, level=level)
    spacing = float(np.median(np.diff(ts)))
    future = ts[-1] + spacing * np.arange(1, horizon + 1)
    return {
        "t": future.tolist(),
        "mean": np.asarray(result.mean, float).tolist(),
        "lower": np.asarray(result.lower, float).tolist(),
        "upper": np.asarray(result.upper, float).tolist(),
        "level": level,
    }
