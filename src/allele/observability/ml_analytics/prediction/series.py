"""Metric observations (``MLMetric``) gathered into one time-ordered series per metric.

A series is keyed by (component type, component id, metric name); its spacing is the median gap
between samples, which turns a horizon in minutes into a number of steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from allele.errors import ValidationError
from allele.observability.ml_analytics.types import MLMetric
from allele.observability.types import ComponentType

SeriesKey = tuple[ComponentType, str, str]  # (component type, component id, metric name)


@dataclass(frozen=True)
class MetricSeries:
    """One metric's samples in time order; ``times`` are POSIX seconds."""

    component_type: ComponentType
    component_id: str
    metric_name: str
    times: NDArray[np.float64]
    values: NDArray[np.float64]

    @property
    def spacing_seconds(self) -> float:
        """The median gap between consecutive samples (1 s when there is a single sample)."""
        gaps = np.diff(self.times)
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if len(gaps) else 1.0

    def steps(self, minutes: float) -> int:
        """How many samples ahead ``minutes`` is (at least one)."""
        return max(1, round(minutes * 60.0 / self.spacing_seconds))

    def time_after(self, steps: float) -> datetime:
        """The time ``steps`` samples after the last one."""
        last = datetime.fromtimestamp(float(self.times[-1]), tz=UTC)
        return last + timedelta(seconds=steps * self.spacing_seconds)


def group_metrics(
    data: Iterable[MLMetric] | Mapping[object, Iterable[MLMetric]], max_history: int
) -> dict[SeriesKey, MetricSeries]:
    """One series per metric from ``data``: ``MLMetric`` objects, or a mapping of groups of them
    (``{"evolution_engine": [...]}``), keeping the latest ``max_history`` samples of each."""
    groups = data.values() if isinstance(data, Mapping) else [data]
    points: dict[SeriesKey, list[tuple[float, float]]] = {}
    for group in groups:
        for metric in group:
            if not isinstance(metric, MLMetric):
                raise ValidationError(
                    f"time series data must hold MLMetric objects, got {type(metric).__name__}"
                )
            key = (ComponentType(metric.component_type), metric.component_id, metric.metric_name)
            points.setdefault(key, []).append((metric.timestamp.timestamp(), float(metric.value)))
    out = {}
    for key, pairs in points.items():
        pairs.sort()
        times, values = (
            np.asarray(column, dtype=np.float64) for column in zip(*pairs, strict=True)
        )
        out[key] = MetricSeries(*key, times[-max_history:], values[-max_history:])
    return out


def find_series(
    series: Mapping[SeriesKey, MetricSeries],
    component_type: ComponentType | str,
    metric_name: str,
    component_id: str | None = None,
) -> MetricSeries:
    """The one trained series matching the arguments, or a ValidationError naming the choices."""
    kind = ComponentType(component_type)
    matches = [
        s
        for (k, cid, name), s in series.items()
        if k == kind and name == metric_name and (component_id is None or cid == component_id)
    ]
    if len(matches) == 1:
        return matches[0]
    known = sorted(f"{k.value}/{cid}/{name}" for k, cid, name in series)
    if not matches:
        raise ValidationError(
            f"no trained series for {kind.value}/{component_id or '*'}/{metric_name}; "
            f"trained: {', '.join(known) or 'none (call train first)'}"
        )
    ids = sorted(s.component_id for s in matches)
    raise ValidationError(
        f"{kind.value}/{metric_name} has several components ({', '.join(ids)}): pass component_id"
    )
