"""Staleness: when the last values of a process (or a component) stop being current.

A process that has died leaves its last values in the store for ever; read back, they look
current unless their age says otherwise. Readers of the store (the exposition, ``allele
monitor``) judge it here, from the newest point each writer left and the component snapshots'
times: a live engine writes its system gauges every collection interval and its component
snapshots as often, so a writer whose newest point is older than ``stale_after_s`` has stopped.

A series belongs to the writer named by its ``instance`` label (``ALLELE_INSTANCE``); series
without one are judged together. The live collector judges its own series (a ``stale`` flag of
its snapshots, where it has one); these functions are for readers that only have the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

INSTANCE_LABEL = "instance"
#: Prometheus's own lookback: a value older than this is no longer shown by a query.
DEFAULT_STALE_AFTER_S = 300.0


def instance_of(labels: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    """The writer a series belongs to: its ``instance`` label ("" without one)."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    for name, value in pairs:
        if name == INSTANCE_LABEL:
            return str(value)
    return ""


def last_seen(series: Iterable[tuple[Iterable[tuple[str, str]], float]]) -> dict[str, float]:
    """The newest point time per writer, from ``(labels, last point time)`` pairs."""
    seen: dict[str, float] = {}
    for labels, ts in series:
        who = instance_of(labels)
        if ts > seen.get(who, float("-inf")):
            seen[who] = ts
    return seen


def is_stale(last_time: float | None, now: float, stale_after_s: float) -> bool:
    """Whether something last heard of at ``last_time`` (None: never) is stale at ``now``."""
    return last_time is None or now - last_time > stale_after_s


def stale_after_for(settings: Any) -> float:
    """How old a writer's newest data may be before it counts as stopped, for writers using
    ``settings``: three collection plus flush intervals, at least a minute."""
    return max(60.0, 3.0 * (settings.collection_interval + settings.flush_interval))
