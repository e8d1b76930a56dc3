"""Which of the eight anomaly types a detection is: the metric's meaning and the anomaly's shape.

The meaning comes from the metric's name (memory, cpu, latency, errors, throughput, quality, other
resources); the shape from the recent rows against the baseline before them:

- ``direction``: up or down from what was expected;
- ``spike``: only the last few rows deviate (they were normal just before);
- ``shift``: the recent rows sit at a new level, all on one side of the old baseline;
- ``trend``: the recent rows climb (or fall) steadily: a strong rank correlation with time and a
  rise of several baseline deviations across them.

Then, for example: a memory series that trends up is a memory leak, one that spikes is a resource
spike; a rate that drops is a throughput drop; a quality score that falls is a performance
degradation; anything the rules do not name is an unusual pattern.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from allele.observability.ml_analytics.types import AnomalyType

# Meaning of a metric from words in its name; the first match wins, so the specific come first.
_MEANINGS: tuple[tuple[str, str], ...] = (
    ("error", r"error|fail|exception|fault|5xx|reject"),
    ("latency", r"latency|response_time|duration|delay|wait|p9[59]|p50|elapsed|rtt"),
    ("memory", r"memory|mem_|_mem|rss|heap|ram|swap"),
    ("cpu", r"cpu|processing_time|load_avg|loadavg"),
    ("throughput", r"throughput|per_s|_rate|qps|tps|rps|requests|ops|count|tokens_per"),
    ("quality", r"fitness|accuracy|quality|success|score|reward|f1|precision|recall"),
    ("resource", r"disk|network|net_|gpu|io_|bytes|bandwidth|connections|threads|fd"),
)


def metric_meaning(metric_name: str) -> str:
    """``error``, ``latency``, ``memory``, ``cpu``, ``throughput``, ``quality``, ``resource``
    or ``other``, from the words of the name."""
    name = metric_name.lower()
    for meaning, pattern in _MEANINGS:
        if re.search(pattern, name):
            return meaning
    return "other"


@dataclass(frozen=True)
class Shape:
    """How the recent rows departed from the baseline before them."""

    direction: int  # +1 up, -1 down, 0 none
    spike: bool
    shift: bool
    trend: bool
    magnitude: float  # deviation of the newest row, in baseline deviations


def anomaly_shape(
    values: Sequence[float], *, recent: int = 12, baseline: int = 48, trend_span: int = 60
) -> Shape:
    """The shape of the anomaly at the end of ``values`` (the newest row last).

    ``recent`` rows are judged against the ``baseline`` rows before them; a trend is looked
    for over the last ``trend_span`` rows. The noise scale comes from row-to-row changes, which
    a trend does not inflate.
    """
    x = np.asarray(values, dtype=np.float64)
    recent = max(3, min(recent, len(x) // 3))
    base = x[-(recent + baseline) : -recent]
    new = x[-recent:]
    if len(base) < 3:
        return Shape(0, False, False, False, 0.0)
    centre = float(np.median(base))
    steps = np.abs(np.diff(base))
    noise = float(np.median(steps)) * 1.4826 / np.sqrt(2)
    noise = max(noise, 1e-9 + 1e-6 * abs(centre))
    dev = (new - centre) / noise
    magnitude = float(dev[-1])
    direction = 1 if magnitude > 0 else (-1 if magnitude < 0 else 0)
    outside = np.abs(dev) > 4.0
    same_side = np.sign(dev) == direction
    # Spike: the newest row is out, most of the recent rows before it were in.
    spike = bool(outside[-1]) and float(np.mean(outside[:-2])) < 0.3
    shift = (not spike) and float(np.mean(outside & same_side)) >= 0.7
    # Trend: a rank correlation with time over the span, and a rise of many noise units.
    span = x[-trend_span:]
    ranks = np.argsort(np.argsort(span))
    t = np.arange(len(span))
    corr = float(np.corrcoef(ranks, t)[0, 1]) if np.std(ranks) > 0 else 0.0
    k = max(3, len(span) // 6)
    rise = (float(np.mean(span[-k:])) - float(np.mean(span[:k]))) / noise
    trend = abs(corr) > 0.8 and abs(rise) > 5.0 and np.sign(rise) == direction
    return Shape(direction, spike, shift, bool(trend), magnitude)


def classify_anomaly(metric_name: str, values: Sequence[float]) -> AnomalyType:
    """The anomaly type of a detection at the end of ``values`` on the metric ``metric_name``."""
    meaning = metric_meaning(metric_name)
    shape = anomaly_shape(values)
    up, down = shape.direction > 0, shape.direction < 0
    if meaning == "memory":
        if up and shape.trend:
            return AnomalyType.MEMORY_LEAK
        if up:
            return AnomalyType.RESOURCE_SPIKE
    elif meaning == "cpu" and up:
        return AnomalyType.CPU_OVERLOAD
    elif meaning == "latency" and up:
        # A latency that creeps up is a slow degradation; one that jumps, a spike.
        return (
            AnomalyType.PERFORMANCE_DEGRADATION
            if shape.trend and not shape.spike
            else AnomalyType.LATENCY_SPIKE
        )
    elif meaning == "error" and up:
        return AnomalyType.ERROR_RATE_SPIKE
    elif meaning == "throughput" and down:
        return AnomalyType.THROUGHPUT_DROP
    elif meaning == "quality" and down:
        return AnomalyType.PERFORMANCE_DEGRADATION
    elif meaning == "resource" and up:
        return AnomalyType.RESOURCE_SPIKE
    return AnomalyType.UNUSUAL_PATTERN


_RECOMMENDATIONS: dict[AnomalyType, tuple[str, ...]] = {
    AnomalyType.MEMORY_LEAK: (
        "Compare heap snapshots taken some minutes apart to find the objects that accumulate",
        "Check caches and buffers for missing size limits or eviction",
    ),
    AnomalyType.RESOURCE_SPIKE: (
        "Look for a burst of work or a batch job starting at this time",
        "Check the resource's limits and headroom",
    ),
    AnomalyType.CPU_OVERLOAD: (
        "Profile the busiest code path; reduce concurrency or scale out",
        "Check for a hot loop or retries amplifying load",
    ),
    AnomalyType.LATENCY_SPIKE: (
        "Check downstream dependencies (provider, database) for slow responses",
        "Inspect queueing: concurrency limits, connection pools, rate limits",
    ),
    AnomalyType.ERROR_RATE_SPIKE: (
        "Read the newest error messages and group them by cause",
        "Check recent deployments and provider status; consider a rollback",
    ),
    AnomalyType.THROUGHPUT_DROP: (
        "Check for stalled workers, exhausted pools or upstream back-pressure",
        "Compare the input rate with the processing rate",
    ),
    AnomalyType.PERFORMANCE_DEGRADATION: (
        "Compare the configuration and inputs with the last good period",
        "Re-run the benchmark suite on the current version to confirm the regression",
    ),
    AnomalyType.UNUSUAL_PATTERN: ("Review the series around this time for a change in workload",),
}


def recommendations_for(anomaly_type: AnomalyType) -> list[str]:
    """What to look at first for an anomaly of this type."""
    return list(_RECOMMENDATIONS[anomaly_type])
