"""The vocabulary of series: metric kinds, a series' identity, the batches that cross to the
store, name / label / value checks and the one definition of a window's statistics."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

import numpy as np

from allele.errors import ValidationError


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


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What a producer that checked a batch knows of its values: their sum, min and max."""

    sum: float
    min: float
    max: float


@dataclass(slots=True)
class SeriesBatch:
    """Points of one series recorded since the previous drain (epoch seconds UTC, float64).

    ``stats``, when given, vouches for the batch: every timestamp and value is finite, the
    points are in time order and ``stats`` holds their sum, min and max. ``MetricsCollector``
    drains such batches (its fold has checked them), and a store then writes them without
    checking them again. Without ``stats`` the store checks and orders the points itself.
    """

    key: SeriesKey
    timestamps: np.ndarray
    values: np.ndarray
    stats: BatchStats | None = None


# --- names and values -------------------------------------------------------------------------

# ``\Z``, not ``$``: ``$`` also matches before a trailing newline, which would let
# "requests_total\n" through into the exposition format.
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

#: Label names the exposition format gives a meaning of its own (summary quantiles, histogram
#: buckets): a user label of that name would duplicate the reserved one on a sample line.
RESERVED_LABELS = frozenset({"quantile", "le"})


def validate_metric_name(name: object) -> str:
    """Return ``name`` if it is a Prometheus-compatible metric name, else raise ValidationError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(f"invalid metric name {name!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    return name


def normalize_labels(labels: Mapping[str, object] | None) -> tuple[tuple[str, str], ...]:
    """Return labels as sorted ``(name, value)`` pairs, validating names ([a-zA-Z_][a-zA-Z0-9_]*,
    not starting with ``__``) and values (turned into strings that UTF-8 can encode: a lone
    surrogate such as ``"\\ud800"`` is refused, as no store or exposition could write it)."""
    if not labels:
        return ()
    pairs = []
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_RE.match(key) or key.startswith("__"):
            raise ValidationError(
                f"invalid label name {key!r}: must match [a-zA-Z_][a-zA-Z0-9_]* "
                "and not start with '__'"
            )
        if value is None:
            raise ValidationError(f"label {key!r} has no value (None); give a string")
        text = str(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(
                f"label {key!r} has value {text!r}, which is not valid Unicode text "
                f"({exc.reason} at position {exc.start}); give a UTF-8 encodable string"
            ) from None
        pairs.append((key, text))
    return tuple(sorted(pairs))


def check_user_labels(labels: tuple[tuple[str, str], ...], reserved: frozenset[str]) -> None:
    """Refuse label names that the exposition format or the collector sets itself."""
    taken = sorted(name for name, _ in labels if name in reserved)
    if taken:
        raise ValidationError(
            f"label name(s) {taken} are reserved (set by Allele or by the exposition format: "
            f"{sorted(reserved)}); rename the label"
        )


def value_problem(value: object) -> str | None:
    """Return why ``value`` cannot be a metric value ("nan", "inf", "not_a_number"), or None."""
    if not isinstance(value, numbers.Real):
        return "not_a_number"
    as_float = float(value)
    if math.isnan(as_float):
        return "nan"
    if math.isinf(as_float):
        return "inf"
    return None


class ValueStatistics(TypedDict):
    """The statistics of a window of values (see ``value_statistics``)."""

    sum: float
    min: float
    max: float
    mean: float
    p50: float
    p95: float
    p99: float


def value_statistics(values: np.ndarray) -> ValueStatistics:
    """sum, min, max, mean and p50/p95/p99 (numpy's linear interpolation) of a non-empty array.

    The one definition of a window's statistics, shared by the in-memory collector and the store.
    """
    p50, p95, p99 = np.percentile(values, [50.0, 95.0, 99.0])
    return {
        "sum": float(values.sum()),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
    }
