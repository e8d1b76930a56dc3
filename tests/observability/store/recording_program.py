"""A monitored program for the durability tests: records points while a Flusher stores them.

Usage: python recording_program.py URI MODE INTERVAL_S
  continuous  record point i (value i, timestamp now) every millisecond until killed
  fixed       record 5000 points, print READY, then idle until a signal arrives
  exit        record 5000 points and return normally (atexit must flush them)
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from allele.observability.store import open_store
from allele.observability.store.flusher import Flusher
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

KEY = SeriesKey("progress", (("program", "recording"),), MetricType.COUNTER)


class RecordingSource:
    """A fake of MetricsCollector's drain contract (the collector itself is tested elsewhere)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ts: list[float] = []
        self._values: list[float] = []

    def record(self, value: float) -> None:
        with self._lock:
            self._ts.append(time.time())
            self._values.append(value)

    def drain(self) -> list[SeriesBatch]:
        with self._lock:
            ts, values, self._ts, self._values = self._ts, self._values, [], []
        return [SeriesBatch(KEY, np.array(ts), np.array(values))] if ts else []


def main() -> None:
    uri, mode, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
    source = RecordingSource()
    Flusher(open_store(uri), source, interval_s=interval).start()
    if mode == "continuous":
        print("READY", flush=True)
        i = 0
        while True:
            source.record(float(i))
            i += 1
            time.sleep(0.001)
    for i in range(5000):
        source.record(float(i))
    if mode == "fixed":
        print("READY", flush=True)
        while True:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
