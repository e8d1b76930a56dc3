"""What the dashboard reads: a store on its own, or a live engine (with its store, if any).

Every read returns plain JSON-ready data, so the API layer only routes and validates. A
``StoreSource`` serves what a monitored program wrote (``allele dashboard`` on its own); an
``EngineSource`` serves the running program's own engine (``engine.serve_dashboard()``): its
components, system sample and alerts as they are now, its series from the collector's rings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from allele.errors import ValidationError

# A query answers at most this many points per series: beyond it the step is widened.
MAX_POINTS = 5000


def plain(item: Any) -> dict[str, Any]:
    """A stored or live record as JSON-ready data (typed records have ``to_dict``)."""
    if isinstance(item, Mapping):
        return {k: _jsonable(v) for k, v in item.items()}
    to_dict = getattr(item, "to_dict", None)
    if callable(to_dict):
        return {k: _jsonable(v) for k, v in to_dict().items()}
    raise ValidationError(f"cannot serialise {type(item).__name__} for the dashboard")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class SeriesRef:
    """A series as the API names it: metric name, label pairs, kind."""

    name: str
    labels: tuple[tuple[str, str], ...]
    kind: str

    @property
    def id(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}" if inner else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "labels": dict(self.labels), "kind": self.kind}


def parse_series_id(text: str) -> tuple[str, dict[str, str]]:
    """``name{a="1",b="x"}`` -> (name, labels); a bare name has no labels."""
    text = text.strip()
    if "{" not in text:
        if not text:
            raise ValidationError('series id is empty; expected name or name{label="value"}')
        return text, {}
    if not text.endswith("}"):
        raise ValidationError(f"series id {text!r} must end with '}}'")
    name, _, inner = text[:-1].partition("{")
    labels: dict[str, str] = {}
    for part in _split_labels(inner):
        key, sep, value = part.partition("=")
        if not sep or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise ValidationError(
                f'series id {text!r}: label {part!r} is not of the form key="value"'
            )
        labels[key.strip()] = value[1:-1]
    return name.strip(), labels


def _split_labels(inner: str) -> list[str]:
    parts, current, quoted = [], "", False
    for ch in inner:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            if current.strip():
                parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def encode(body: Any) -> bytes:
    """JSON bytes of ``body``, numpy arrays included (orjson: ~20x the stdlib on floats)."""
    import orjson

    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def downsample(ts: np.ndarray, values: np.ndarray, step: float | None) -> dict[str, Any]:
    """Points averaged over buckets of ``step`` seconds (widened to at most MAX_POINTS)."""
    n = len(ts)
    if n and step is None and n > MAX_POINTS:
        step = float(ts[-1] - ts[0]) / MAX_POINTS or 1.0
    if n and step is not None:
        span = float(ts[-1] - ts[0])
        step = max(step, span / MAX_POINTS) if span > 0 else step
        buckets = np.floor((ts - ts[0]) / step).astype(np.int64)
        edges = np.flatnonzero(np.diff(buckets)) + 1
        starts = np.concatenate(([0], edges))
        sums = np.add.reduceat(values, starts)
        counts = np.diff(np.concatenate((starts, [n])))
        ts = ts[0] + buckets[starts] * step
        values = sums / counts
    # Arrays, encoded by orjson in one pass (NaN and infinities become null).
    return {
        "t": np.ascontiguousarray(ts, dtype=np.float64),
        "v": np.ascontiguousarray(values, dtype=np.float64),
        "step": step,
    }


class StoreSource:
    """Reads a store: series, alerts, components and benchmark runs as they were written."""

    live = False

    def __init__(self, store: Any) -> None:
        self.store = store

    # --- series ---------------------------------------------------------------------------

    def series(self) -> list[SeriesRef]:
        return [SeriesRef(k.name, tuple(k.labels), str(k.kind)) for k in self.store.list_series()]

    def points(
        self, name: str, labels: Mapping[str, str], start: float | None, end: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        result = self.store.query_series(name, labels or None, start, end)
        return np.asarray(result.timestamps, float), np.asarray(result.values, float)

    # --- components, system, alerts ---------------------------------------------------------

    def components(self) -> list[dict[str, Any]]:
        return [plain(c) for c in self.store.load_components()]

    def system(self) -> dict[str, Any]:
        """The newest value of every ``allele_system_*`` and ``allele_process_*`` series."""
        out: dict[str, Any] = {}
        for stats in self.store.latest():
            name = stats.key.name
            if name.startswith(("allele_system_", "allele_process_", "allele_gpu_")):
                out[name] = {"value": stats.last_value, "t": stats.last_ts}
        return out

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        return [plain(a) for a in self.store.load_alerts(state)]

    def active_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a.get("state") != "resolved"]

    def acknowledge(self, alert_id: str, by: str, comment: str | None) -> dict[str, Any]:
        return plain(self.store.acknowledge_alert(alert_id, by, comment))

    def resolve(self, alert_id: str, by: str, comment: str | None) -> dict[str, Any]:
        return plain(self.store.resolve_alert(alert_id, by, comment))

    def live_reads(
        self, series: Sequence[tuple[str, Mapping[str, str], float | None]]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]], list[dict[str, Any]]]:
        """What the event stream reads every second, in one call (one request from the
        dashboard's child process): the points of each ``(name, labels, since)`` from
        ``since`` on, the components and the active alerts."""
        points = [self.points(name, labels, since, None) for name, labels, since in series]
        return points, self.components(), self.active_alerts()

    def close(self) -> None:
        """Nothing to release: the store belongs to whoever opened it."""


class EngineSource(StoreSource):
    """Reads a live engine: components, system and alerts now; series from its rings."""

    live = True

    def __init__(self, engine: Any) -> None:
        super().__init__(getattr(engine, "_store", None))
        self.engine = engine

    def series(self) -> list[SeriesRef]:
        keys = self.engine.collector.series_keys()
        return [SeriesRef(k.name, tuple(k.labels), str(k.kind)) for k in keys]

    def points(
        self, name: str, labels: Mapping[str, str], start: float | None, end: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        matching = [
            k
            for k in self.engine.collector.series_keys(name)
            if set(labels.items()) <= set(k.labels)
        ]
        if not matching:
            return np.empty(0), np.empty(0)
        parts = [self.engine.collector.points(k.name, dict(k.labels), k.kind) for k in matching]
        ts = np.concatenate([np.asarray(p[0], float) for p in parts])
        values = np.concatenate([np.asarray(p[1], float) for p in parts])
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        keep = np.ones(len(ts), dtype=bool)
        if start is not None:
            keep &= ts >= start
        if end is not None:
            keep &= ts < end
        return ts[keep], values[keep]

    def components(self) -> list[dict[str, Any]]:
        return [plain(c) for c in self.engine.component_snapshots()]

    def system(self) -> dict[str, Any]:
        sample = plain(self.engine.get_system_metrics())
        return {k: {"value": v} for k, v in sample.items() if isinstance(v, int | float)}

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        everything: dict[str, Any] = {a.alert_id: a for a in self.engine.get_alert_history()}
        everything.update({a.alert_id: a for a in self.engine.get_active_alerts()})
        items: Sequence[Any] = list(everything.values())
        if state == "active":
            items = [a for a in items if str(a.state) != "resolved"]
        elif state is not None:
            items = [a for a in items if str(a.state) == state]
        return [plain(a) for a in items]

    def active_alerts(self) -> list[dict[str, Any]]:
        return [plain(a) for a in self.engine.get_active_alerts()]

    def acknowledge(self, alert_id: str, by: str, comment: str | None) -> dict[str, Any]:
        return plain(self.engine.acknowledge_alert(alert_id, by, comment))

    def resolve(self, alert_id: str, by: str, comment: str | None) -> dict[str, Any]:
        return plain(self.engine.resolve_alert(alert_id, by, comment))
