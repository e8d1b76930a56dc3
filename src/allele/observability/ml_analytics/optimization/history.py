"""The metrics history the engine reads, grouped into one time-ordered series per metric."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from allele.errors import ValidationError
from allele.observability.ml_analytics.types import MLMetric
from allele.observability.types import ComponentType


@dataclass
class MetricSeries:
    """One metric of one component: epoch seconds and values, oldest first."""

    component: str  # the key of ``metrics_history`` the points came under
    component_id: str
    component_type: ComponentType
    metric_name: str
    times: np.ndarray
    values: np.ndarray

    @property
    def spacing(self) -> float:
        """The median time between points, in seconds (NaN below two points)."""
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else float("nan")

    def statistic(self, name: str) -> float:
        """``mean``, ``median``, ``min``, ``max``, ``last`` or a percentile ``p95``..."""
        v = self.values
        if name == "last":
            return float(v[-1])
        if name in ("mean", "median", "min", "max"):
            return float(getattr(np, name)(v))
        if name.startswith("p") and name[1:].replace(".", "", 1).isdigit():
            q = float(name[1:])
            if 0 <= q <= 100:
                return float(np.percentile(v, q))
        raise ValidationError(
            f"unknown statistic {name!r}; allowed: mean, median, min, max, last, p0..p100"
        )


def group_series(
    metrics_history: Mapping[str, Iterable[MLMetric]], window_hours: float
) -> list[MetricSeries]:
    """Every (component, metric) series of ``metrics_history``, cut to the last ``window_hours``.

    Non-finite values are left out; the window ends at each series' newest point.
    """
    if not isinstance(metrics_history, Mapping):
        raise ValidationError(
            "metrics_history must map a component to its MLMetric observations, "
            f"got {type(metrics_history).__name__}"
        )
    grouped: dict[tuple[str, str, str], list[MLMetric]] = {}
    for component, metrics in metrics_history.items():
        for m in metrics:
            if not isinstance(m, MLMetric):
                raise ValidationError(
                    f"metrics_history[{component!r}] holds {type(m).__name__}, not MLMetric"
                )
            grouped.setdefault((str(component), m.component_id, m.metric_name), []).append(m)
    series = []
    for (component, component_id, name), metrics in grouped.items():
        times = np.array([m.timestamp.timestamp() for m in metrics], dtype=float)
        values = np.array([m.value for m in metrics], dtype=float)
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        keep = np.isfinite(values) & (times >= times[-1] - window_hours * 3600.0)
        if not keep.any():
            continue
        series.append(
            MetricSeries(
                component,
                component_id,
                ComponentType(metrics[0].component_type),
                name,
                times[keep],
                values[keep],
            )
        )
    return series
