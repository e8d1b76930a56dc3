"""Fixtures for the store tests: real SQLite files, the real PostgreSQL, and a tiny point source."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from allele.observability.store import Store, open_store
from allele.observability.types import MetricType, SeriesBatch, SeriesKey


class FakeCollector:
    """A fake of MetricsCollector's drain contract: records points, hands each over once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[SeriesKey, tuple[list[float], list[float]]] = {}

    def record(self, key: SeriesKey, ts: float, value: float) -> None:
        with self._lock:
            stamps, values = self._points.setdefault(key, ([], []))
            stamps.append(ts)
            values.append(value)

    def drain(self) -> list[SeriesBatch]:
        with self._lock:
            taken, self._points = self._points, {}
        return [
            SeriesBatch(key, np.array(ts, dtype=np.float64), np.array(vs, dtype=np.float64))
            for key, (ts, vs) in taken.items()
        ]


def key(name: str = "latency_s", kind: MetricType = MetricType.TIMER, **labels: str) -> SeriesKey:
    """A SeriesKey with sorted labels."""
    return SeriesKey(name, tuple(sorted(labels.items())), kind)


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'obs.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> Iterator[Store]:
    """An empty migrated store on a SQLite file, then on the real PostgreSQL."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'obs.db'}"
    else:
        uri = request.getfixturevalue("postgres_url")
    opened = open_store(uri)
    yield opened
    opened.close()
