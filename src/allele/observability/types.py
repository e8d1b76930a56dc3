"""The vocabulary of observability: metric kinds, series and the batches that cross to the store."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class MetricType(StrEnum):
    """How a metric's values combine."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    TIMER = "timer"
    DISTRIBUTION = "distribution"


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Identity of one time series: metric name, sorted label pairs and kind."""

    name: str
    labels: tuple[tuple[str, str], ...]
    kind: MetricType


@dataclass(slots=True)
class SeriesBatch:
    """Points of one series recorded since the previous drain (epoch seconds UTC, float64)."""

    key: SeriesKey
    timestamps: np.ndarray
    values: np.ndarray
